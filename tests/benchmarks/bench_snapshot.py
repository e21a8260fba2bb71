"""bench_snapshot: the incident snapshot of a 24 h range with N failed payments (default 100,000).

Set-up (timed, not part of the ratio): under a unique prefix in the benchmark
database (``--redis-url``, default db 14) the benchmark seeds

- the per-second flow history of the range (86,400 rows for 24 h: five
  statuses, four queue depths, latency p50/p95/p99, failure reasons; the
  dead letters of each second are the entries parked in it) through
  ``HistoryStore.write_seconds``;
- N failed payments parked across the range in one dead-letter queue through
  ``ParkingStore.park_many`` (worker processes): JSON bodies of 600-1,000
  bytes with a card number and CVV, 2 % plain-text bodies with a card number,
  0.5 % binary bodies; x-death headers as RabbitMQ writes them;
- 300 audit records (``ParkingStore.append_audit``, naming parked entries) and
  200 alert events (``AlertLog``).

The range ends at the next whole minute after the start, so the audit
records - written first, their stream ids on Redis's clock - fall inside it.

Then, each in a fresh process of its own (so that one's memory does not hide
the other's), the reference, the snapshot and the reference again (the ratio is
against the mean of the two references, as ``bench_requeue``'s shovel, so that a
machine whose speed drifts during the run weighs on both sides alike):

- **reference**: a plain dump of the same data - HMGET of the history
  buckets, ZRANGE of the DLQ index and pipelined HGETALL of every entry,
  XRANGE of the audit and alert streams - each record a JSON line in one
  file: no masking, no report, no zip;
- **snapshot**: ``write_snapshot`` of the range with the real chart renderer
  (offscreen ``QApplication``).

Both read ``--batch`` entries per round trip (default: ``SnapshotRequest``'s).
For each: wall time and the peak growth of resident memory over the process
before the run (``VmHWM`` reset through ``/proc/self/clear_refs`` and
``/proc/self/statm`` sampled every 50 ms). Printed: the time ratio
snapshot / reference (lower is better), entries/s, and the memory ratio
snapshot peak RSS growth / bytes of the parked bodies, and the part of the
growth that comes with the failed payments (the failed-payments stage's peak
over the stages before it) / bytes of the bodies - well below 1 when the
writer streams (target <= 0.25). The bundle is checked: as many rows in
failed_payments.csv as entries parked, as many in throughput.csv as seconds
in the range. The keys under the prefix are deleted afterwards, also on
error.

    python -m tests.benchmarks snapshot --n 100000 --hours 24
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import shutil
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
import redis.asyncio as aioredis

from services.flow.history import BUCKET_S
from services.snapshot.entries import default_workers
from tests.benchmarks.results import record_figures
from tests.benchmarks.snapshot_data import (
    ALERT_INCIDENTS,
    AUDIT_RECORDS,
    DEFAULT_REDIS_URL,
    DLQ,
    Plan,
    cleanup,
    seed,
)
from tests.benchmarks.snapshot_measure import LoopLag, PhaseResult, ProcessCpu, RssSampler

TARGET_MEMORY_RATIO = 0.25
REFERENCE_FILE = "reference.jsonl"
"""The plain dump's output, in the work directory."""
TARGET_TIME_RATIO = 3.0
TARGET_LAG_MS = 100.0
MIB = 1 << 20
T = TypeVar("T")


# --------------------------------------------------------------------------- the phases


async def _dump(plan: Plan) -> PhaseResult:
    """The reference: every record of the range as a JSON line, nothing else."""
    client = aioredis.from_url(plan.redis_url)
    await client.ping()
    out = Path(plan.workdir) / REFERENCE_FILE
    base = f"{plan.prefix}:{{{DLQ}}}"
    from_ms, to_ms = plan.from_s * 1000, plan.to_s * 1000
    sampler = RssSampler()
    sampler.start()
    cpu = ProcessCpu()
    cpu.start()
    started = time.perf_counter()
    entries = entry_bytes = 0
    with out.open("wb") as f:
        second = plan.from_s
        while second < plan.to_s:
            bucket = second - second % BUCKET_S
            end = min(bucket + BUCKET_S, plan.to_s)
            fields = [str(s) for s in range(second, end)]
            values = await client.hmget(f"{plan.prefix}:history:h:{bucket}", fields)
            f.write(
                b"".join(
                    orjson.dumps({"second": int(s), "row": orjson.Fragment(v)}) + b"\n"
                    for s, v in zip(fields, values, strict=True)
                    if v is not None
                )
            )
            second = end
        for stream in (f"{base}:audit", f"{plan.prefix}:alerts"):
            low = "-"
            while True:
                reply = cast(
                    list[tuple[bytes, dict[bytes, bytes]]],
                    await client.xrange(stream, min=low, max="+", count=plan.batch),
                )
                f.write(
                    b"".join(
                        orjson.dumps(
                            {
                                "id": i.decode(),
                                **{k.decode(): v.decode("utf-8", "replace") for k, v in d.items()},
                            }
                        )
                        + b"\n"
                        for i, d in reply
                    )
                )
                if len(reply) < plan.batch:
                    break
                low = "(" + reply[-1][0].decode()
        start = 0
        while True:
            rows = cast(
                list[tuple[bytes, float]],
                await client.zrange(f"{base}:idx", start, start + plan.batch - 1, withscores=True),
            )
            if not rows:
                break
            start += len(rows)
            ids = [member for member, score in rows if from_ms <= score < to_ms]
            async with client.pipeline(transaction=False) as pipe:
                for entry_id in ids:
                    pipe.hgetall(base.encode() + b":e:" + entry_id)
                hashes = cast(list[dict[bytes, bytes]], await pipe.execute())
            lines = []
            for entry_id, raw in zip(ids, hashes, strict=True):
                entry_bytes += sum(len(v) for v in raw.values())
                document = {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}
                lines.append(orjson.dumps({"entry_id": entry_id.decode(), **document}) + b"\n")
            f.write(b"".join(lines))
            entries += len(lines)
    wall_s = time.perf_counter() - started
    cpu_s = cpu.stop()
    sampler.stop()
    await client.aclose()
    return PhaseResult(
        wall_s,
        sampler.baseline,
        sampler.growth,
        sampler.hwm_reset,
        out.stat().st_size,
        entries,
        entry_bytes,
        cpu_s=cpu_s,
    )


def reference_phase(plan: Plan) -> PhaseResult:
    """Run the reference dump (in a fresh process)."""
    return asyncio.run(_dump(plan))


async def _snapshot(plan: Plan, render: Callable[..., Any]) -> PhaseResult:
    from services.snapshot.job import write_snapshot
    from services.snapshot.model import SnapshotProgress, SnapshotRequest

    client = aioredis.from_url(plan.redis_url)
    await client.ping()
    out = Path(plan.workdir) / "snapshot.zip"
    request = SnapshotRequest(
        plan.profile(), plan.from_s, plan.to_s, out, overwrite=True, batch=plan.batch
    )
    sampler = RssSampler()
    cpu = ProcessCpu()

    def progress(p: SnapshotProgress) -> None:
        if p.stage != sampler.stage:
            cpu.mark(p.stage)
        sampler.enter(p.stage)

    sampler.start()
    lag = LoopLag(sampler)
    watching = asyncio.ensure_future(lag.watch())
    await asyncio.sleep(0)  # the watch runs from here: a step at the export's very start counts
    cpu.start()
    cpu.mark("start")
    started = time.perf_counter()
    result = await write_snapshot(
        request, client, render_charts=render, progress=progress, workers=plan.export_workers
    )
    wall_s = time.perf_counter() - started
    cpu.mark("end")
    cpu_stages = cpu.per_stage()
    cpu_s = cpu.stop()
    watching.cancel()
    sampler.enter("end")
    sampler.stop()
    await client.aclose()
    names = [s for s in sampler.stage_started if s not in ("start", "end")]
    stages = []  # (stage, seconds, peak RSS growth); throughput.csv is written in "flow history"
    for name, after in zip(names, [*names[1:], "end"], strict=True):
        seconds = sampler.stage_started[after] - sampler.stage_started[name]
        stages.append((name, seconds, sampler.stage_peaks.get(name, 0) - sampler.baseline))
    return PhaseResult(
        wall_s,
        sampler.baseline,
        sampler.growth,
        sampler.hwm_reset,
        result.size,
        result.counts.failed_payments,
        stages=stages,
        sha256=result.sha256,
        max_lag_s=lag.longest_s,
        lag_stage=lag.stage,
        lag_per_stage=lag.per_stage,
        max_step_cpu_s=lag.longest_cpu_s,
        cpu_s=cpu_s,
        cpu_stages=cpu_stages,
    )


def snapshot_phase(plan: Plan) -> PhaseResult:
    """Run write_snapshot with the console's chart renderer (in a fresh process): the
    charts drawn in a child process of their own, as the console draws them."""
    from widgets.snapshot.chart_process import ChartProcess

    return asyncio.run(_snapshot(plan, ChartProcess()))


async def in_fresh_process(phase: Callable[[Plan], T], plan: Plan) -> T:
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return await loop.run_in_executor(pool, phase, plan)


def csv_rows(bundle: zipfile.ZipFile, name: str) -> int:
    """Data rows of a CSV member (streamed; the header not counted)."""
    with bundle.open(name) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        return sum(1 for _ in csv.reader(text)) - 1


# --------------------------------------------------------------------------- the run


def mib(n: float) -> str:
    return f"{n / MIB:,.1f} MiB"


async def run(args: argparse.Namespace) -> dict[str, float]:
    to_s = (int(time.time()) // 60 + 1) * 60
    plan = Plan(
        redis_url=args.redis_url,
        prefix=f"bench-snapshot-{uuid.uuid4().hex[:8]}",
        from_s=to_s - round(args.hours * 3600),
        to_s=to_s,
        n=args.n,
        batch=args.batch,
        workdir=tempfile.mkdtemp(prefix="bench-snapshot-"),
        export_workers=args.export_workers,
    )
    print(
        f"bench_snapshot: {plan.n:,} failed payments over {args.hours:g} h ({plan.seconds:,} s)"
        f" under {plan.prefix!r} in {plan.redis_url}",
        flush=True,
    )
    try:
        started = time.perf_counter()
        seeded = await seed(plan, args.workers)
        seed_s = time.perf_counter() - started
        share = seeded.share
        print(
            f"set-up:    seeded in {seed_s:.1f} s (not in the ratio): {plan.seconds:,} history"
            f" rows {seeded.history_s:.1f} s; {plan.n:,} entries {seeded.entries_s:.1f} s"
            f" ({plan.n / seeded.entries_s:,.0f}/s, {args.workers} processes);"
            f" {AUDIT_RECORDS} audit records + {2 * ALERT_INCIDENTS} alert events"
            f" {seeded.other_s:.1f} s",
            flush=True,
        )
        print(
            f"           parked bodies {mib(share.body_bytes)} (mean"
            f" {share.body_bytes / plan.n:,.0f} B; {share.text_bodies:,} text,"
            f" {share.binary_bodies:,} binary)",
            flush=True,
        )

        reference = await in_fresh_process(reference_phase, plan)
        (Path(plan.workdir) / REFERENCE_FILE).unlink()  # the run after writes a new file too
        print(
            f"reference: plain dump (HMGET history, ZRANGE + pipelined HGETALL, XRANGE)"
            f" {reference.entries:,} entries in {reference.wall_s:.2f} s"
            f" = {reference.entries / reference.wall_s:,.0f} entries/s;"
            f" peak RSS {mib(reference.rss_growth)} over {mib(reference.rss_baseline)};"
            f" {mib(reference.out_bytes)} JSONL",
            flush=True,
        )
        print(f"           entry hashes read: {mib(reference.entry_bytes)} (every field)")

        snapshot = await in_fresh_process(snapshot_phase, plan)
        after = await in_fresh_process(reference_phase, plan)
        reference_s = (reference.wall_s + after.wall_s) / 2
        print(
            f"snapshot:  write_snapshot with charts ({plan.export_workers} masking workers),"
            f" {snapshot.entries:,} entries in"
            f" {snapshot.wall_s:.2f} s = {snapshot.entries / snapshot.wall_s:,.0f} entries/s;"
            f" peak RSS {mib(snapshot.rss_growth)} over {mib(snapshot.rss_baseline)};"
            f" zip {mib(snapshot.out_bytes)}",
            flush=True,
        )
        stage_text = ", ".join(
            f"{name} {seconds:.1f} s (peak {growth / MIB:+,.1f} MiB)"
            for name, seconds, growth in snapshot.stages
        )
        print(f"           stages: {stage_text}")
        print(
            f"reference: again after the snapshot, {after.wall_s:.2f} s; the ratio is against"
            f" their mean, {reference_s:.2f} s",
            flush=True,
        )
        if not (snapshot.hwm_reset and reference.hwm_reset):
            print("           (VmHWM could not be reset: peaks from 50 ms samples only)")

        cpu_ref = (sum(reference.cpu_s.values()) + sum(after.cpu_s.values())) / 2
        cpu_snap = sum(snapshot.cpu_s.values())
        print(
            f"CPU:       reference {cpu_ref:.1f} s (the mean of the two),"
            f" snapshot {cpu_snap:.1f} s in all"
            f" (ratio {cpu_snap / max(cpu_ref, 1e-9):.2f}; load average"
            f" {' '.join(f'{x:.1f}' for x in os.getloadavg())}): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in snapshot.cpu_s.items()),
            flush=True,
        )
        print(
            "           CPU per stage, all processes (this one): "
            + ", ".join(f"{k} {a:.1f} s ({b:.1f} s)" for k, a, b in snapshot.cpu_stages),
            flush=True,
        )
        time_ratio = snapshot.wall_s / reference_s
        memory_ratio = snapshot.rss_growth / share.body_bytes
        verdict = "meets" if time_ratio <= TARGET_TIME_RATIO else "MISSES"
        print(
            f"ratio:     time snapshot / reference {time_ratio:.2f} (lower is better;"
            f" throughput {1 / time_ratio:.2f} of the reference's; target <="
            f" {TARGET_TIME_RATIO:g}) - {verdict} the target"
        )
        lag_ms = snapshot.max_lag_s * 1000
        verdict = "meets" if lag_ms <= TARGET_LAG_MS else "MISSES"
        print(
            f"GUI:       longest loop step during the export {lag_ms:.0f} ms (in"
            f" {snapshot.lag_stage!r}; the console runs the writer on its GUI loop, charts"
            f" drawn in a child process; target <= {TARGET_LAG_MS:g} ms) - {verdict} the target"
        )
        print(
            f"           of which this process's own CPU: at most"
            f" {getattr(snapshot, 'max_step_cpu_s', 0.0) * 1000:.0f} ms between two ticks (the"
            " rest: waiting for a core on a shared machine)"
        )
        print(
            "           longest step per stage: "
            + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in snapshot.lag_per_stage.items())
        )
        print(
            f"memory:    snapshot peak RSS growth / parked bodies = {mib(snapshot.rss_growth)}"
            f" / {mib(share.body_bytes)} = {memory_ratio:.2f}"
            f" (reference {reference.rss_growth / share.body_bytes:.2f}); mostly fixed costs:"
            " the range's per-second series and the first Qt chart render"
        )
        # What grows with N: the failed-payments stage's peak over the stage before it.
        before, entries_peak = 0, 0
        for name, _, growth in snapshot.stages:
            if name == "failed payments":
                entries_peak = growth
                break
            before = growth
        per_n = max(0, entries_peak - before)
        verdict = "meets" if per_n / share.body_bytes <= TARGET_MEMORY_RATIO else "MISSES"
        print(
            f"           growth while the {plan.n:,} failed payments stream:"
            f" {mib(per_n)} = {per_n / share.body_bytes:.2f} of the bodies"
            f" (target <= {TARGET_MEMORY_RATIO}) - {verdict} the target"
        )

        with zipfile.ZipFile(Path(plan.workdir) / "snapshot.zip") as bundle:
            payments = csv_rows(bundle, "failed_payments.csv")
            seconds = csv_rows(bundle, "throughput.csv")
        checks = [
            ("failed_payments.csv", payments, plan.n),
            ("throughput.csv", seconds, plan.seconds),
        ]
        print(
            "bundle:    "
            + "; ".join(
                f"{name} {got:,} rows (expected {want:,}) {'OK' if got == want else 'MISMATCH'}"
                for name, got, want in checks
            )
        )
        return {
            "seed_s": seed_s,
            "reference_s": reference_s,
            "reference_before_s": reference.wall_s,
            "reference_after_s": after.wall_s,
            "snapshot_s": snapshot.wall_s,
            "time_ratio": time_ratio,
            "reference_cpu_s": cpu_ref,
            "snapshot_cpu_s": cpu_snap,
            "max_loop_lag_ms": lag_ms,
            "max_step_cpu_ms": getattr(snapshot, "max_step_cpu_s", 0.0) * 1000,
            "memory_ratio": memory_ratio,
        }
    finally:
        deleted = await cleanup(plan.redis_url, plan.prefix)
        shutil.rmtree(plan.workdir, ignore_errors=True)
        print(f"cleanup:   deleted {deleted:,} keys under {plan.prefix!r}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench snapshot", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="failed payments (default 100,000)")
    parser.add_argument("--hours", type=float, default=24.0, help="the range (default 24 h)")
    parser.add_argument(
        "--batch",
        type=int,
        default=100,
        help="entries per round trip (default 100, as the console)",
    )
    parser.add_argument(
        "--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="parkers"
    )
    parser.add_argument(
        "--export-workers",
        type=int,
        default=default_workers(),
        help="worker processes masking the failed payments (default: the console's; 0: none)",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    if not 0 < args.hours <= 168:
        parser.error("--hours must be in (0, 168]")
    if args.n < 1 or args.batch < 1:
        parser.error("--n and --batch must be positive")
    return args


async def main(argv: list[str] | None = None) -> None:
    record_figures("snapshot", await run(parse_args(argv)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
