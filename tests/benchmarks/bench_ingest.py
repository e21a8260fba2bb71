"""bench_ingest: the real console ingesting N payment events against the fastest Python consumer.

One publish of N (default 200,000) demo status events into a topic exchange
fills three queues with the same N messages:

- **references**: two plain queues bound with ``#``, each drained in a
  separate process doing the same logical work as the console (parse the JSON
  body, count its status): pika's ``SelectConnection`` (no-ack ``basic_consume``,
  the fastest Python consumer measured here) and an idiomatic aio-pika consumer
  (``queue.consume(callback, no_ack=True)``) on a standard asyncio loop. The
  ratio is against the faster of the two in the same run.
- **console**: the console's own tap queue. The real main window
  (offscreen) and its live controller run on the qasync loop, the tap in the
  live flow's own process; the tap is held back (``hold_consume``) until the
  publish is done, then drains the queue while the frame timer keeps
  rendering. The count is what the console process sees (the child's
  updates arrive up to 15 times a second).

Both are timed from the start of consuming until the N-th message was
counted. The console's event-loop lag (how late a 5 ms sleeper wakes) is
sampled throughout. Target: ratio console/fastest reference >= 0.7, lag p99 <= 33 ms.

It runs twice: with the per-payment record on (the profile's default: every
event has a payment id, each a payment of its own, the recorder writes them to
Redis while it holds the history lease, in the same process as the tap) and
off (``payment_events = false``), and prints both ratios (``--record on|off``
runs one of them).

    python -m tests.benchmarks ingest --n 200000
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TypeVar

import aio_pika
import orjson
import redis.asyncio as aioredis

from tests.benchmarks.results import record_figures

DEFAULT_AMQP_URL = os.environ.get("PAYOPS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
TARGET_RATIO = 0.7
TARGET_LAG_P99_MS = 33.0
_T = TypeVar("_T")


async def reference_drain(amqp_url: str, queue_name: str, n: int) -> dict[str, float]:
    """Drain ``n`` messages with a plain aio-pika consumer; returns its rate."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        counts: Counter[str] = Counter()
        done = asyncio.Event()
        seen = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            counts[orjson.loads(message.body).get("status", "unknown")] += 1
            seen += 1
            if seen >= n:
                done.set()

        started = time.perf_counter()
        await queue.consume(on_message, no_ack=True)
        await asyncio.wait_for(done.wait(), timeout=max(120.0, n / 500))
        elapsed = time.perf_counter() - started
        return {"rate": n / elapsed, "seconds": elapsed, "counted": float(sum(counts.values()))}
    finally:
        await connection.close()


def pika_reference_drain(amqp_url: str, queue_name: str, n: int) -> dict[str, float]:
    """Drain ``n`` messages with pika's ``SelectConnection`` (no-ack); returns its rate."""
    import pika
    import pika.channel
    import pika.spec
    from pika.adapters.select_connection import SelectConnection

    counts: Counter[str] = Counter()
    seen = 0
    started = 0.0
    finished = 0.0

    def on_message(
        channel: pika.channel.Channel,
        _method: pika.spec.Basic.Deliver,
        _properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        nonlocal seen, finished
        counts[orjson.loads(body).get("status", "unknown")] += 1
        seen += 1
        if seen == n:
            finished = time.perf_counter()
            channel.connection.close()

    def on_channel(channel: pika.channel.Channel) -> None:
        nonlocal started
        channel.basic_qos(prefetch_count=0)
        started = time.perf_counter()
        channel.basic_consume(queue_name, on_message, auto_ack=True)

    def on_open(connection: SelectConnection) -> None:
        connection.channel(on_open_callback=on_channel)

    connection = SelectConnection(
        pika.URLParameters(amqp_url),
        on_open_callback=on_open,
        on_close_callback=lambda connection, _reason: connection.ioloop.stop(),
    )
    connection.ioloop.start()
    if seen < n:
        raise RuntimeError(f"pika reference counted {seen:,} of {n:,}")
    elapsed = finished - started
    return {"rate": n / elapsed, "seconds": elapsed, "counted": float(sum(counts.values()))}


BENCH_REDIS_URL = os.environ.get("PAYOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


async def drop_keys(redis_url: str, prefix: str) -> None:
    """Delete the benchmark's keys (its flow history and alert log)."""
    client = aioredis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def run_plain(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to the end on a plain asyncio loop (in the calling thread)."""
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(coroutine)


def run_reference_process(
    amqp_url: str, queue_name: str, n: int, kind: str = "aio-pika"
) -> dict[str, float]:
    """A reference (``aio-pika`` on a plain asyncio loop, or ``pika``) in its own process."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.bench_ingest",
            "--reference" if kind == "aio-pika" else "--pika-reference",
            queue_name,
            "--n",
            str(n),
            "--amqp-url",
            amqp_url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=max(300, n / 200),
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """One run: the rates, the ratio and the console's loop lag."""

    payment_events: bool
    reference_rate: float  # the fastest reference of the run
    console_rate: float
    lag_p99_ms: float
    payments_recorded: int
    child_cpu_us: float  # the live-flow child's CPU per event while it drained the tap

    @property
    def ratio(self) -> float:
        return self.console_rate / self.reference_rate


async def console_run(
    amqp_url: str, n: int, state_dir: Path, *, payment_events: bool = True
) -> IngestResult:
    """Start the console, fill its tap and the reference queues, measure all three."""
    from app.console import ConsoleSession
    from app.ui_state import UiState
    from services.config import TapBinding, load_profile
    from tests.benchmarks.common import LoopLagProbe, process_stat, publish_events, wait_until

    tag = uuid.uuid4().hex[:8]
    exchange, ref_queue = f"bench.ingest.{tag}.events", f"bench.ingest.{tag}.reference"
    pika_queue = f"bench.ingest.{tag}.reference-pika"
    setup = await aio_pika.connect(amqp_url)
    channel = await setup.channel()
    await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    for name in (ref_queue, pika_queue):
        queue = await channel.declare_queue(name, arguments={"x-max-length": n * 2})
        await queue.bind(exchange, "#")

    profile = dataclasses.replace(
        load_profile(env={}),
        name="bench",
        amqp_url=amqp_url,
        # Its own history and alert log, away from the demo's (the recorder runs, as it
        # does in every console).
        redis_url=BENCH_REDIS_URL,
        redis_prefix=f"bench-ingest-{tag}",
        tap_exchanges=(TapBinding(exchange),),
        watch_queues=(ref_queue,),
        dead_letter_queues=(),
        tap_max_length=n * 2,
        # The tap has no consumer while the events are published and the reference
        # runs (about a minute for N = 200,000): it must not expire meanwhile.
        tap_expires_s=3600,
        payment_events=payment_events,
    )
    session = ConsoleSession(profile, UiState(state_dir / "bench.ini"), hold_consume=True)
    session.window.resize(1280, 800)
    runner = asyncio.ensure_future(session.run())
    try:
        tap = session.live.flow.tap
        await wait_until(tap.bound.is_set, 30, "the console's tap queue")
        print(f"publishing {n:,} events ...", flush=True)
        # On a plain asyncio loop in a worker thread: the publisher is not what is measured.
        publish_s = await asyncio.to_thread(run_plain, publish_events(amqp_url, exchange, n))
        print(f"  published in {publish_s:.1f} s ({n / publish_s:,.0f}/s)", flush=True)

        print("reference: pika SelectConnection consumer (separate process) ...", flush=True)
        pika_reference = await asyncio.to_thread(
            run_reference_process, amqp_url, pika_queue, n, "pika"
        )
        print("reference: plain aio-pika consumer (separate process) ...", flush=True)
        reference = await asyncio.to_thread(run_reference_process, amqp_url, ref_queue, n)

        print("console: real main window, tap below aio-pika's wrapper ...", flush=True)
        aggregator = session.live.aggregator
        probe = LoopLagProbe()
        probe.start()
        child = session.live.flow.process.process
        assert child is not None and child.pid is not None
        child_pid = child.pid

        def child_cpu_s() -> float:
            stat = process_stat(child_pid)
            return stat[2] if stat is not None else float("nan")

        child_cpu0 = child_cpu_s()
        started = time.perf_counter()
        session.live.flow.release_consume()
        await wait_until(
            lambda: sum(aggregator.totals_by_status().values()) >= n,
            max(120.0, n / 500),
            f"the console to count {n:,} events",
        )
        console_s = time.perf_counter() - started
        child_cpu_us = (child_cpu_s() - child_cpu0) / n * 1e6
        await asyncio.sleep(0.5)  # a few more frames, so lag covers rendering too
        await probe.stop()
        counted = sum(aggregator.totals_by_status().values())
        recorded = await count_payment_keys(BENCH_REDIS_URL, profile.redis_prefix)
    finally:
        session.window.close()
        await asyncio.wait_for(runner, 30)
        await channel.queue_delete(ref_queue)
        await channel.queue_delete(pika_queue)
        await setup.close()
        await drop_keys(BENCH_REDIS_URL, profile.redis_prefix)

    console_rate = n / console_s
    fastest = max(reference["rate"], pika_reference["rate"])
    ratio = console_rate / fastest
    p50, p99 = probe.percentile_ms(50), probe.percentile_ms(99)
    print()
    print(f"bench_ingest  N={n:,}  per-payment record {'on' if payment_events else 'off'}")
    print(
        f"  reference (pika SelectConn.)   {pika_reference['rate']:>10,.0f} msg/s"
        f"  ({pika_reference['seconds']:.2f} s)"
    )
    print(
        f"  reference (aio-pika consumer)  {reference['rate']:>10,.0f} msg/s"
        f"  ({reference['seconds']:.2f} s)"
    )
    print(
        f"  console (tap + main window)    {console_rate:>10,.0f} msg/s"
        f"  ({console_s:.2f} s, counted {counted:,})"
    )
    print(f"  ratio console/fastest ref.     {ratio:>10.2f}   (target >= {TARGET_RATIO})")
    print(f"  ratio console/aio-pika         {console_rate / reference['rate']:>10.2f}")
    print(
        f"  console loop lag p50 / p99     {p50:>7.1f} / {p99:.1f} ms"
        f"   (target p99 <= {TARGET_LAG_P99_MS:.0f} ms)"
    )
    print(f"  payments in the record         {recorded:>10,} (when the count was reached)")
    print(
        f"  live-flow child CPU per event  {child_cpu_us:>10.1f} us"
        f"   (load {os.getloadavg()[0]:.1f})"
    )
    return IngestResult(payment_events, fastest, console_rate, p99, recorded, child_cpu_us)


async def count_payment_keys(redis_url: str, prefix: str) -> int:
    """How many payments the record holds (keys ``prefix:payment:*``)."""
    client = aioredis.from_url(redis_url)
    try:
        return sum([1 async for _ in client.scan_iter(match=f"{prefix}:payment:*", count=5000)])
    finally:
        await client.aclose()


RESULT_TAG = "bench_ingest-result "


def run_variant(amqp_url: str, n: int, record: str) -> IngestResult:
    """One run (record ``on`` or ``off``) in a process of its own (a fresh Qt application);
    its report is passed through, its result read from its last line."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.bench_ingest",
            "--n",
            str(n),
            "--amqp-url",
            amqp_url,
            "--record",
            record,
        ],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        timeout=max(900, n / 100),
    )
    lines = result.stdout.splitlines()
    print("\n".join(line for line in lines if not line.startswith(RESULT_TAG)), flush=True)
    tagged = [line for line in lines if line.startswith(RESULT_TAG)]
    return IngestResult(**json.loads(tagged[-1][len(RESULT_TAG) :]))


def print_ratios(n: int, results: list[IngestResult]) -> None:
    """The ratios with the per-payment record on and off, side by side."""
    print()
    print(f"bench_ingest  N={n:,}  ratio console/fastest reference (target >= {TARGET_RATIO})")
    for result in results:
        label = "on " if result.payment_events else "off"
        print(
            f"  per-payment record {label}   ratio {result.ratio:5.2f}"
            f"   lag p99 {result.lag_p99_ms:6.1f} ms"
            f"   child CPU {result.child_cpu_us:5.1f} us/event"
            f"   ({result.payments_recorded:,} payments recorded)"
        )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with --reference, only the reference drain)."""
    parser = argparse.ArgumentParser(prog="bench_ingest", description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--reference", metavar="QUEUE", help=argparse.SUPPRESS)
    parser.add_argument("--pika-reference", metavar="QUEUE", help=argparse.SUPPRESS)
    parser.add_argument(
        "--record",
        choices=("both", "on", "off"),
        default="both",
        help="the per-payment record on, off, or a run with each, one after the other (default)",
    )
    args = parser.parse_args(argv)
    if args.pika_reference:
        print(json.dumps(pika_reference_drain(args.amqp_url, args.pika_reference, args.n)))
        return
    if args.reference:
        print(json.dumps(asyncio.run(reference_drain(args.amqp_url, args.reference, args.n))))
        return
    if args.record == "both":
        results = [run_variant(args.amqp_url, args.n, record) for record in ("on", "off")]
        print_ratios(args.n, results)
        record_figures(
            "ingest",
            {
                f"{'on' if r.payment_events else 'off'}_{name}": value
                for r in results
                for name, value in (
                    ("ratio", r.ratio),
                    ("lag_p99_ms", r.lag_p99_ms),
                    ("child_cpu_us", r.child_cpu_us),
                )
            },
        )
        return

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    from widgets.common.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    with TemporaryDirectory() as state:
        result = qasync.run(
            console_run(args.amqp_url, args.n, Path(state), payment_events=args.record == "on")
        )
    print(RESULT_TAG + json.dumps(dataclasses.asdict(result)), flush=True)


if __name__ == "__main__":
    main()
