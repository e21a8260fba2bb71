"""bench_table: the failed-payments table with N parked entries (default 1,000,000).

Parks N small, realistic dead letters straight into Redis through
``ParkingStore.park_many`` (worker processes, not RabbitMQ: this benchmark is
about the table), then, in one process with a real offscreen
``FailedPaymentsView``, measures:

- first rows: ``store.page`` + ``EntryIndex.add`` + the view showing them;
- the full load: ``store.iter_summaries`` into the index in the console's
  steps (batches sized by ``LoadPace``), the view refreshing (throttled) while it runs,
  and the longest GUI step: how late a 2 ms sleep on the loop woke up (as in
  the console, a batch's decode, its add and the Qt events due - the view's
  refresh, its repaint - are a step each; the Qt events due run in one
  ``processEvents`` here, conservatively), the longest Qt events, and the
  longest call of each part of a step (the model's refresh, the group panel's
  tally and list, the columns' fit, ``index.add``);
- search (text), filter (state + reason + amount range + sort), text + filters
  + sort, sort by a header, group-by latencies, and select-all's longest GUI
  step, through the view in its default grouping (by cause)
  (query, model reset, counts, group panel, repaint) and in the index alone;
- resident memory (VmRSS) after the full load.

Each figure is printed next to its target with the ratio figure/target (at
most 1 meets it). The keys live under a unique prefix in a Redis database of
their own (``--redis-url``, default db 14, so the tests' SCANs in db 15 do not
walk a million keys) and are deleted afterwards.

    python -m tests.benchmarks table --n 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.config import FieldPaths
from services.workbench.codec import MessageRecord
from services.workbench.load_pace import LoadPace, let_waiting_run
from services.workbench.store import ParkingStore, ParkItem
from tests.benchmarks.common import MERCHANTS
from tests.benchmarks.gui_steps import CallTimes, StepLog, event_type_name, receiver_name
from tests.benchmarks.results import record_figures

DEFAULT_REDIS_URL = os.environ.get("PAYOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DLQ = "payments.dlq"
FIRST_PAGE = 200
PARK_BATCH = 2000

TARGET_FIRST_ROWS_S = 1.0
TARGET_INTERACTIVE_S = 0.300
TARGET_RSS_BYTES = 1 << 30
TARGET_STEP_S = 0.100  # issue 12: no GUI step longer


class LoopLag:
    """The longest the event loop was kept from running a short sleep: the longest step
    of what shares the loop (the console runs Qt and asyncio on one)."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.longest_s = 0.0
        self.longest_cpu_s = 0.0  # the loop thread's CPU between two ticks: its own part

    async def watch(self) -> None:
        while True:
            started, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(self.interval_s)
            late = time.perf_counter() - started - self.interval_s
            self.longest_s = max(self.longest_s, late)
            self.longest_cpu_s = max(self.longest_cpu_s, time.thread_time() - cpu)


QUEUES = (
    ("payments.authorize", "payment.authorize"),
    ("payments.capture", "payment.capture"),
    ("payments.refund", "payment.refund"),
    ("payments.settle", "payment.settle"),
)
REASONS = ("rejected",) * 11 + ("expired",) * 5 + ("delivery_limit",) * 3 + ("maxlen",)


# --------------------------------------------------------------------------- parking


def dead_letter(rng: random.Random, now_ms: int, span_ms: int) -> MessageRecord:
    """One dead letter as RabbitMQ delivers it from a DLQ: JSON body, x-death history."""
    died_ms = now_ms - rng.randrange(span_ms)
    queue, routing_key = rng.choice(QUEUES)
    reason = rng.choice(REASONS)
    merchant = rng.choice(MERCHANTS) if rng.random() < 0.7 else f"Shop {rng.randrange(5000):04d}"
    if rng.random() < 0.01:
        body = b"\x00\x01not json\xff"
    else:
        body = orjson.dumps(
            {
                "payment_id": f"pay_{rng.getrandbits(56):014x}",
                "merchant": merchant,
                "amount": f"{rng.lognormvariate(3.8, 1.2):.2f}",
                "currency": rng.choice(("EUR", "EUR", "USD", "GBP")),
                "status": "failed",
            }
        )
    died = datetime.datetime.fromtimestamp(died_ms / 1000, datetime.UTC)
    return MessageRecord(
        body=body,
        properties={
            "content_type": "application/json",
            "delivery_mode": 2,
            "message_id": str(uuid.UUID(int=rng.getrandbits(128))),
        },
        headers={
            "x-death": [
                {
                    "count": rng.choice((1, 1, 1, 2, 3)),
                    "reason": reason,
                    "queue": queue,
                    "time": died,
                    "exchange": "payments",
                    "routing-keys": [routing_key],
                }
            ],
            "x-first-death-queue": queue,
            "x-first-death-reason": reason,
            "x-first-death-exchange": "payments",
        },
        exchange="payments.dlx",
        routing_key=routing_key,
    )


async def _park_range(redis_url: str, prefix: str, count: int, seed: int) -> int:
    client = aioredis.from_url(redis_url, retry=Retry(NoBackoff(), 0))  # as the product's
    try:
        store = ParkingStore(client, prefix)
        rng = random.Random(seed)
        now_ms = int(time.time() * 1000)
        fields = FieldPaths()
        parked = 0
        while parked < count:
            size = min(PARK_BATCH, count - parked)
            items = [ParkItem(dead_letter(rng, now_ms, 86_400_000)) for _ in range(size)]
            results = await store.park_many(DLQ, items, fields)
            # Not ``created``: an item that park_many's own retry finds parked by its
            # first attempt (a script cache flushed mid-batch) reads created=False, and
            # counting only created ones parked a replacement for each (1,001,500).
            parked += sum(r.parked_by_this_item for r in results)
        return parked
    finally:
        await client.aclose()


def park_worker(redis_url: str, prefix: str, count: int, seed: int) -> int:
    """Park ``count`` dead letters (runs in a worker process)."""
    return asyncio.run(_park_range(redis_url, prefix, count, seed))


async def park(redis_url: str, prefix: str, n: int, workers: int) -> float:
    """Park ``n`` entries with ``workers`` processes; returns seconds."""
    started = time.perf_counter()
    shares = [n // workers + (1 if k < n % workers else 0) for k in range(workers)]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        done = await asyncio.gather(
            *(
                loop.run_in_executor(pool, park_worker, redis_url, prefix, share, 1000 + k)
                for k, share in enumerate(shares)
                if share
            )
        )
    if sum(done) != n:
        raise RuntimeError(f"parked {sum(done)} of {n}")
    return time.perf_counter() - started


# --------------------------------------------------------------------------- measuring


def rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident memory from /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Figure:
    name: str
    value: float
    unit: str  # "s", "ms", "MiB"
    target: float | None = None  # same unit
    note: str = ""

    def render(self) -> str:
        number = f"{self.value:,.0f}" if self.unit in ("ms", "MiB") else f"{self.value:,.3f}"
        shown = f"{number} {self.unit}"
        if self.target is None:
            target = ratio = "—"
            verdict = ""
        else:
            tnumber = f"{self.target:,.0f}" if self.unit in ("ms", "MiB") else f"{self.target:g}"
            target = f"< {tnumber} {self.unit}"
            ratio = f"{self.value / self.target:.2f}"
            verdict = "ok" if self.value < self.target else "MISSED"
        note = f"  {self.note}" if self.note else ""
        return f"  {self.name:<42} {shown:>12}   {target:>12}   {ratio:>5}  {verdict}{note}"


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the run


async def run(args: argparse.Namespace) -> list[Figure]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from app.gc_policy import freeze_start_up
    from services.workbench.index import EntryIndex
    from services.workbench.model import EntryState
    from services.workbench.query import Query
    from widgets.common.theme import apply_theme
    from widgets.workbench.browser import FailedPaymentsView
    from widgets.workbench.table_model import COLUMN_NAMES

    class TimedApplication(QApplication):
        """Times each event Qt hands out (outermost only): a GUI step of the console."""

        def __init__(self, argv: list[str]) -> None:
            super().__init__(argv)
            self.depth = 0
            self.longest_event_s = 0.0
            self.longest_event_cpu_s = 0.0
            self.steps = StepLog()

        def notify(self, receiver: Any, event: Any) -> bool:
            if self.depth:
                return bool(super().notify(receiver, event))
            self.depth += 1
            kind = event_type_name(event.type())
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return bool(super().notify(receiver, event))
            finally:
                self.depth -= 1
                wall_s, cpu_s = time.perf_counter() - started, time.thread_time() - cpu
                self.longest_event_s = max(self.longest_event_s, wall_s)
                self.longest_event_cpu_s = max(self.longest_event_cpu_s, cpu_s)
                self.steps.add_event(cpu_s, wall_s, lambda: f"{kind} to {receiver_name(receiver)}")

    app = QApplication.instance() or TimedApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    apply_theme(app)
    figures: list[Figure] = []
    prefix = args.reuse or f"bench-table-{uuid.uuid4().hex[:8]}"
    client = aioredis.from_url(args.redis_url)
    store = ParkingStore(client, prefix)
    print(
        f"bench_table: {args.n:,} parked entries under {prefix!r} in {args.redis_url},"
        f" parked by {args.workers} processes",
        flush=True,
    )
    try:
        if args.reuse:  # a set-up parked by an earlier run with --keep
            args.n = await store.count(DLQ)
            print(f"  reusing {args.n:,} entries parked under {prefix!r}", flush=True)
        else:
            park_s = await park(args.redis_url, prefix, args.n, args.workers)
            figures.append(
                Figure("set-up: park_many", park_s, "s", note=f"{args.n / park_s:,.0f} entries/s")
            )
            print(f"  parked in {park_s:.1f} s", flush=True)
        gc.collect()
        rss_before = rss_bytes()

        view = FailedPaymentsView(EntryIndex())
        view.resize(1280, 800)
        view.show()
        app.processEvents()
        grouped_by = view.group_panel.by
        freeze_start_up()  # as the console does once its window is built
        print(f"  the view groups by {grouped_by!r} (its default)", flush=True)

        def settle() -> None:
            """Let Qt handle what is pending, painting included (offscreen)."""
            app.processEvents()

        # -- first rows: page + add + the view showing them
        started = time.perf_counter()
        index = EntryIndex()
        first = await store.page(DLQ, 0, FIRST_PAGE)
        index.add(first)
        view.set_index(index)
        settle()
        first_rows_s = time.perf_counter() - started
        assert view.model.rowCount() == len(first) > 0
        assert view.model.data(view.model.index(0, 1))
        figures.append(
            Figure("first rows (page + index + view)", first_rows_s, "s", TARGET_FIRST_ROWS_S)
        )

        # -- the full load, refreshing the view (throttled) as it goes; a watcher on the
        # loop sees every step: decoding a batch, adding it, the view's refresh when due
        lag = LoopLag()
        watching = asyncio.ensure_future(lag.watch())
        await asyncio.sleep(0)
        started = time.perf_counter()
        total = await store.count(DLQ)
        index.reserve(total)  # the columns are not copied on the way
        longest_add_s = longest_view_s = 0.0
        adding_s = viewing_s = 0.0
        timed_app = app if isinstance(app, TimedApplication) else None
        if timed_app is not None:
            timed_app.longest_event_s = timed_app.longest_event_cpu_s = 0.0
            timed_app.steps.reset()
        # What each part of a step costs at most: the model's refresh, the group panel, the
        # columns' fit, the index's add (wrapped on their instances for the load only).
        parts = CallTimes()
        parts.watch(index, "add", "index.add (a batch)")
        parts.watch(view.model, "refresh", "model refresh (merge + Qt's insert)")
        parts.watch(view, "_run", "view refresh (model, view state, counts)")
        parts.watch(view._tally, "update", "group tally (the added rows)")
        parts.watch(view.group_panel, "show_groups", "group panel's list")
        parts.watch(view.table, "_grow_to_content", "columns fitted to new rows")
        # The console's steps (app/controllers/workbench.py): a batch read and decoded, its
        # rows added after a yield to the loop, then the Qt events due (the view's refresh,
        # its repaint, the groups). The Qt events due run in one processEvents here (on the
        # console's qasync loop each is a step of its own): conservative.
        decode_cpu = add_cpu = 0.0
        pace = LoadPace() if not args.batch else None  # the console's (see --batch)
        sizes: list[int] = []
        last_cpu = time.thread_time()
        async for batch in store.iter_summaries(DLQ, batch=args.batch, pace=pace):
            # the CPU of this thread since the last step (awaiting Redis costs none)
            decode_cpu = max(decode_cpu, time.thread_time() - last_cpu)
            await let_waiting_run()  # as the console: the add is a step of its own
            cpu, step = time.thread_time(), time.perf_counter()
            index.add(batch)
            added = time.perf_counter()
            sizes.append(len(batch))
            if pace is not None:
                pace.took("add", len(batch), added - step)
            view.set_loading(len(index), total)
            view.request_refresh()
            add_cpu = max(add_cpu, time.thread_time() - cpu)
            await let_waiting_run()  # as the console: Qt's events are steps of their own
            events = time.perf_counter()
            app.processEvents()
            last_cpu = time.thread_time()
            done = time.perf_counter()
            await let_waiting_run()
            longest_add_s = max(longest_add_s, added - step)
            longest_view_s = max(longest_view_s, done - events)
            adding_s += added - step
            viewing_s += done - events
        view.refresh()  # as the console ends its load: the groups follow in their own step
        view.set_loading(total, total)
        await asyncio.sleep(0)
        settle()
        await asyncio.sleep(0.01)
        settle()
        await asyncio.sleep(0.01)
        watching.cancel()
        parts.close()
        load_s = time.perf_counter() - started
        # Exactly N (see _park_range for the 1,001,500 of a run on the shared machine).
        assert len(index) == total == args.n, (len(index), total)
        figures.append(
            Figure(
                "full load (iter_summaries + index + view)",
                load_s,
                "s",
                note=(
                    f"{total / load_s:,.0f} rows/s; index.add {adding_s:.1f} s, view"
                    f" {viewing_s:.1f} s, the rest reading Redis"
                ),
            )
        )
        if timed_app is not None:
            print("\n".join(timed_app.steps.report() + parts.report()), flush=True)
            event_s, event_cpu_s = timed_app.longest_event_s, timed_app.longest_event_cpu_s
            longest = max(event_s, decode_cpu, add_cpu)
            figures.append(
                Figure(
                    "longest GUI step during the load (by step)",
                    longest * 1000,
                    "ms",
                    TARGET_STEP_S * 1000,
                    note=(
                        f"a Qt event {event_s * 1000:.0f} ms wall; the most own CPU"
                        f" {event_cpu_s * 1000:.0f} ms ({timed_app.steps.longest().what});"
                        f" read + decode of a batch {decode_cpu * 1000:.0f} ms"
                        f" of CPU, its add {add_cpu * 1000:.0f} ms"
                    ),
                )
            )
        figures.append(
            Figure(
                "longest GUI step during the load",
                lag.longest_s * 1000,
                "ms",
                TARGET_STEP_S * 1000,
                note=(
                    f"its own CPU {lag.longest_cpu_s * 1000:.0f} ms (the rest: waiting for a"
                    " core); loop lag: decode, add, the Qt events due: a step each;"
                    f" batches of {min(sizes, default=0):,}-{max(sizes, default=0):,} rows"
                    f" (median {statistics.median(sizes or [0]):,.0f}),"
                    f" grouped by {grouped_by}; longest add {longest_add_s * 1000:.0f} ms,"
                    f" Qt events' step {longest_view_s * 1000:.0f} ms"
                ),
            )
        )

        gc.collect()
        rss = rss_bytes()
        figures.append(
            Figure(
                "resident memory after the full load",
                rss / 2**20,
                "MiB",
                TARGET_RSS_BYTES / 2**20,
                note=(
                    f"index {index.nbytes / 2**20:,.0f} MiB;"
                    f" {(rss - rss_before) / 2**20:+,.0f} MiB over the process before"
                    f" the view; peak {rss_bytes('VmHWM') / 2**20:,.0f} MiB"
                ),
            )
        )

        rng = random.Random(5)
        samples = [index.row(rng.randrange(len(index))) for _ in range(12)]
        payment_ids = [s.payment_id for s in samples if s.payment_id][:3]

        def view_ms(queries: list[Query]) -> tuple[float, int]:
            """Median ms of showing each query in the view (all distinct: no cache)."""
            times = []
            for query in queries:
                times.append(timed(lambda q=query: (view.set_query(q), settle())))
            return statistics.median(times) * 1000, view.model.rowCount()

        def index_ms(queries: list[Query]) -> float:
            return statistics.median(timed(lambda q=q: index.query(q)) for q in queries) * 1000

        ms, shown = view_ms([Query(text=p[4:16]) for p in payment_ids])
        alone = index_ms([Query(text=p) for p in payment_ids])
        figures.append(
            Figure(
                "search: a payment id (view)",
                ms,
                "ms",
                TARGET_INTERACTIVE_S * 1000,
                note=f"{shown} row; index alone {alone:.0f} ms",
            )
        )
        ms, shown = view_ms([Query(text=m.split()[0].lower()) for m in MERCHANTS[:3]])
        alone = index_ms([Query(text=m.split()[0]) for m in MERCHANTS[3:6]])
        figures.append(
            Figure(
                "search: a merchant word (view)",
                ms,
                "ms",
                TARGET_INTERACTIVE_S * 1000,
                note=f"{shown:,} rows; index alone {alone:.0f} ms",
            )
        )
        hex_word = [Query(text=f"pay_{d}") for d in ("3f", "a0", "7c")]
        ms, shown = view_ms(hex_word)
        figures.append(
            Figure(
                "search: a common id prefix (view)",
                ms,
                "ms",
                TARGET_INTERACTIVE_S * 1000,
                note=f"{shown:,} rows",
            )
        )

        def filter_queries(high_amounts: tuple[float, ...]) -> list[Query]:
            return [
                Query(
                    states=frozenset({EntryState.PARKED}),
                    reasons=frozenset({"rejected", "expired"}),
                    amount_min=10.0,
                    amount_max=high,
                    sort_key="amount",
                )
                for high in high_amounts
            ]

        ms, shown = view_ms(filter_queries((500.0, 501.0, 502.0)))
        alone = index_ms(filter_queries((600.0, 601.0, 602.0)))
        figures.append(
            Figure(
                "filter: state + reason + amount, sort amount",
                ms,
                "ms",
                TARGET_INTERACTIVE_S * 1000,
                note=f"{shown:,} rows; index alone {alone:.0f} ms",
            )
        )
        combined = [
            Query(
                text=word,
                states=frozenset({EntryState.PARKED}),
                queues=frozenset({"payments.capture", "payments.settle"}),
                amount_min=1.0,
                sort_key="merchant",
                descending=False,
            )
            for word in ("acme", "globex", "hooli")
        ]
        ms, shown = view_ms(combined)
        figures.append(
            Figure(
                "text + filters + sort merchant",
                ms,
                "ms",
                TARGET_INTERACTIVE_S * 1000,
                note=f"{shown:,} rows",
            )
        )

        view.set_query(Query())
        settle()
        for title, column, note in (
            ("routing key", "routing_key", "first sort by it: argsort of every row"),
            ("amount", "amount", "its order kept from the filter above"),
        ):
            position = COLUMN_NAMES.index(column)
            sort_s = timed(
                lambda p=position: (
                    view.table.sortByColumn(p, Qt.SortOrder.AscendingOrder),
                    settle(),
                )
            )
            figures.append(
                Figure(
                    f"sort {len(index):,} rows by {title} (header)",
                    sort_s * 1000,
                    "ms",
                    TARGET_INTERACTIVE_S * 1000,
                    note=note,
                )
            )
        for by in ("merchant", "origin_queue", "state"):
            group_s = timed(lambda by=by: (view.group_panel.set_by(by), settle()))
            figures.append(
                Figure(
                    f"group by {by} (view)",
                    group_s * 1000,
                    "ms",
                    TARGET_INTERACTIVE_S * 1000,
                    note=f"{view.group_panel.list.topLevelItemCount():,} listed",
                )
            )
        view.group_panel.set_by(grouped_by)  # back to the default view for select-all
        settle()
        emitted: list[int] = []
        view.selection_changed.connect(lambda ids: emitted.append(len(ids)))
        steps: list[float] = []
        cpu_steps: list[float] = []

        def step(action: Callable[[], Any]) -> None:
            cpu = time.thread_time()
            steps.append(timed(action))
            cpu_steps.append(time.thread_time() - cpu)

        def select_all() -> None:
            step(view.table.selectAll)
            while not emitted:  # the ids go out from a zero-delay timer
                step(app.processEvents)
            step(settle)

        select_s = timed(select_all)
        assert emitted == [len(index)], emitted
        figures.append(
            Figure(
                f"select all {len(index):,}: longest GUI step",
                max(steps) * 1000,
                "ms",
                TARGET_STEP_S * 1000,
                note=(
                    f"its own CPU {max(cpu_steps) * 1000:.0f} ms; grouped by {grouped_by};"
                    f" all {len(steps)} steps {select_s * 1000:.0f} ms"
                ),
            )
        )
        view.close()
        return figures
    finally:
        if not (args.keep or args.reuse):
            deleted = await store.delete_all(DLQ)
            print(f"  cleaned up {deleted:,} keys", flush=True)
        await client.aclose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench table", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entries to park")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="rows per iter_summaries batch (default: sized as the console sizes them, LoadPace)",
    )
    parser.add_argument(
        "--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="parkers"
    )
    parser.add_argument("--keep", action="store_true", help="leave the parked entries in Redis")
    parser.add_argument(
        "--reuse",
        metavar="PREFIX",
        help="measure the entries a run with --keep left under PREFIX (no parking; keeps them)",
    )
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    figures = await run(args)
    record_figures("table", {f"{figure.name} [{figure.unit}]": figure.value for figure in figures})
    print(f"\n  {'figure':<42} {'value':>12}   {'target':>12}   ratio")
    for figure in figures:
        print(figure.render())
    missed = [f.name for f in figures if f.target is not None and f.value >= f.target]
    print(f"\n  {'all targets met' if not missed else 'missed: ' + ', '.join(missed)}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
