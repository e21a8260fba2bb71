"""bench_console_cpu: what an open console costs, idle and at 2,000 events/s.

The real console process (``payops console`` on a profile of its own: an
exchange, a watched queue and Redis keys under a unique prefix, never the
demo's names) runs under ``QT_QPA_PLATFORM=offscreen`` with its window shown
on the live page. After it settles, the CPU time of the GUI process and of its
children (the live flow's process; multiprocessing's helper) is read from
``/proc`` over two windows of ``--seconds`` (default 30):

- **no traffic**: nothing is published;
- **loaded**: a separate publisher process sends ``--rate`` (default 2,000)
  demo status events a second into the console's exchange, paced in 10 ms
  batches; the window starts after a few seconds of ramp-up.

The reference, measured over the same windows: a bare ``QApplication`` on the
same qasync event loop, with nothing to do (what any Qt + asyncio process costs
on this machine at that moment). Figures are percent of one core (CPU seconds
over wall seconds); targets: at most 3 % idle and 20 % loaded (GUI and child
together). CPU time is still meaningful when the machine is loaded by other
work; wall-clock time is not, so nothing here is timed but CPU.

    python -m tests.benchmarks console_cpu --seconds 30 --rate 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.common import process_stat
from tests.benchmarks.results import record_figures

DEFAULT_AMQP_URL = os.environ.get("PAYOPS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
BENCH_REDIS_URL = os.environ.get("PAYOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TARGET_IDLE_PCT = 3.0
TARGET_LOADED_PCT = 20.0
SETTLE_S = 10.0
RAMP_S = 4.0
_STATUSES = ("requested", "authorized", "captured", "captured", "declined", "failed")


# -- CPU time from /proc -------------------------------------------------------------


def session_cpu(leader: int) -> dict[int, float]:
    """CPU seconds of every process in the session led by ``leader`` (started with
    ``start_new_session``), by pid; dead children no longer count."""
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = process_stat(int(entry))
            if stat is not None and stat[1] == leader:
                cpu[int(entry)] = stat[2]
    return cpu


@dataclass
class Usage:
    """Percent of one core over a window: the GUI process, its children, both."""

    gui: float
    children: float

    @property
    def total(self) -> float:
        return self.gui + self.children


def measure(
    leaders: list[int], seconds: float, publisher: subprocess.Popen[bytes] | None = None
) -> list[Usage]:
    """CPU of each session over ``seconds`` of wall time (processes alive throughout);
    the publisher, if any, is asked to log its count at both ends."""
    if publisher is not None:
        publisher.send_signal(signal.SIGUSR1)
    before = [session_cpu(leader) for leader in leaders]
    started = time.monotonic()
    time.sleep(seconds)
    after = [session_cpu(leader) for leader in leaders]
    wall = time.monotonic() - started
    if publisher is not None:
        publisher.send_signal(signal.SIGUSR1)
    usages = []
    for leader, b, a in zip(leaders, before, after, strict=True):
        delta = {pid: a[pid] - b.get(pid, 0.0) for pid in a}
        gui = delta.pop(leader, 0.0)
        usages.append(Usage(100 * gui / wall, 100 * sum(delta.values()) / wall))
    return usages


# -- the processes -------------------------------------------------------------------


def write_config(directory: Path, amqp_url: str, tag: str) -> tuple[Path, str, str]:
    """A profile of the benchmark's own names; returns (file, exchange, watched queue)."""
    exchange, queue = f"bench.cpu.{tag}.events", f"bench.cpu.{tag}.work"
    config = directory / "payops.toml"
    config.write_text(
        "[profiles.bench]\n"
        f'amqp_url = "{amqp_url}"\n'
        f'redis_url = "{BENCH_REDIS_URL}"\n'
        f'redis_prefix = "bench-cpu-{tag}"\n'
        f'tap_exchanges = ["{exchange}"]\n'
        f'watch_queues = ["{queue}"]\n'
        "allow_volatile_store = true\n",
        encoding="utf-8",
    )
    return config, exchange, queue


def declare(amqp_url: str, exchange: str, queue: str) -> None:
    """The exchange and a watched work queue (bounded: nobody consumes it)."""
    import pika

    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        channel = connection.channel()
        channel.exchange_declare(exchange, "topic")
        channel.queue_declare(queue, arguments={"x-max-length": 1000})
        channel.queue_bind(queue, exchange, "#")


def delete(amqp_url: str, exchange: str, queue: str) -> None:
    import pika

    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)


def drop_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(BENCH_REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process in a session of its own (so its children can be found and ended)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for_line(
    log: Path, needle: str, process: subprocess.Popen[bytes], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if needle in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    raise TimeoutError(f"no {needle!r} after {timeout_s:.0f} s:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGINT (the console closes the orderly way), then SIGKILL the session."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def published_rate(log: str) -> float:
    """Events/s between the publisher's first two "at T sent N" lines (the window)."""
    marks = [line.split() for line in log.splitlines() if line.startswith("at ")]
    (_, t0, _, n0), (_, t1, _, n1) = marks[:2]
    return (int(n1) - int(n0)) / (float(t1) - float(t0))


# -- the publisher and the reference (their own processes) ---------------------------


def publish_paced(amqp_url: str, exchange: str, rate: float) -> None:
    """Publish ``rate`` demo events a second in 10 ms batches until SIGTERM; print the count."""
    import orjson
    import pika

    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    def on_usr1(*_: object) -> None:
        print(f"at {time.monotonic():.3f} sent {sent}", flush=True)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_usr1)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    properties = pika.BasicProperties(content_type="application/json", delivery_mode=1)
    sent, started = 0, time.monotonic()
    print("publishing", flush=True)
    while not stopping:
        due = int((time.monotonic() - started) * rate)
        now_ms = int(time.time() * 1000)
        while sent < due:
            status = _STATUSES[sent % len(_STATUSES)]
            body = orjson.dumps(
                {
                    "payment_id": f"pay_{sent:016x}",
                    "merchant": "Acme Books",
                    "amount": "42.50",
                    "currency": "EUR",
                    "status": status,
                    "created_at": now_ms,
                }
            )
            channel.basic_publish(exchange, f"payment.{status}", body, properties)
            sent += 1
        connection.process_data_events(time_limit=0)
        time.sleep(0.01)
    connection.close()
    elapsed = time.monotonic() - started
    print(f"sent {sent} in {elapsed:.1f} s", flush=True)


def idle_qt_loop() -> None:
    """The reference: a bare QApplication on the qasync loop, with nothing to do."""
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    assert app is not None
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())

    async def forever() -> None:
        print("idle loop running", flush=True)
        while True:
            await asyncio.sleep(3600)

    qasync.run(forever())


# -- the run ---------------------------------------------------------------------------


def run(amqp_url: str, seconds: float, rate: float) -> None:
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        config, exchange, queue = write_config(state, amqp_url, tag)
        declare(amqp_url, exchange, queue)
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PAYOPS_STATE_DIR": str(state)}
        env.pop("PAYOPS_PROFILE", None)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            console = spawn(
                [sys.executable, "-m", "app", "console", "--config", str(config)],
                env,
                state / "console.log",
            )
            processes.append(console)
            reference = spawn(
                [sys.executable, "-m", "tests.benchmarks.bench_console_cpu", "--idle-qt"],
                env,
                state / "reference.log",
            )
            processes.append(reference)
            wait_for_line(state / "console.log", f"consuming {exchange}", console, 60)
            wait_for_line(state / "reference.log", "idle loop running", reference, 60)
            print(f"console up; settling {SETTLE_S:.0f} s ...", flush=True)
            time.sleep(SETTLE_S)

            print(f"measuring {seconds:.0f} s with no traffic ...", flush=True)
            idle, idle_ref = measure([console.pid, reference.pid], seconds)

            publisher = spawn(
                [
                    sys.executable,
                    "-m",
                    "tests.benchmarks.bench_console_cpu",
                    "--publish",
                    exchange,
                    "--rate",
                    str(rate),
                    "--amqp-url",
                    amqp_url,
                ],
                env,
                state / "publisher.log",
            )
            processes.append(publisher)
            wait_for_line(state / "publisher.log", "publishing", publisher, 30)
            time.sleep(RAMP_S)
            print(f"measuring {seconds:.0f} s at {rate:,.0f} events/s ...", flush=True)
            loaded, loaded_ref = measure([console.pid, reference.pid], seconds, publisher)
            publisher.send_signal(signal.SIGTERM)
            publisher.wait(timeout=30)
            published = published_rate((state / "publisher.log").read_text())
        finally:
            for process in reversed(processes):
                stop(process)
            delete(amqp_url, exchange, queue)
            drop_redis_keys(f"bench-cpu-{tag}")

    def row(what: str, usage: Usage, reference: Usage, target: float) -> str:
        return (
            f"  {what:<22} {usage.gui:>6.1f} {usage.children:>7.1f} {usage.total:>7.1f}"
            f"   {reference.total:>9.1f}   {usage.total / target:>5.2f}  (target <= {target:.0f} %)"
        )

    print()
    print(f"bench_console_cpu  {seconds:.0f} s windows, live page shown, offscreen")
    print(
        f"  {'% of one core':<22} {'GUI':>6} {'child':>7} {'total':>7}   {'reference':>9}   ratio"
    )
    print(row("no traffic", idle, idle_ref, TARGET_IDLE_PCT))
    print(row(f"{rate:,.0f} events/s", loaded, loaded_ref, TARGET_LOADED_PCT))
    print(f"  published during the loaded window: {published:,.0f} events/s")
    record_figures(
        "console_cpu",
        {
            "idle_pct": idle.total,
            "idle_reference_pct": idle_ref.total,
            "loaded_pct": loaded.total,
            "loaded_reference_pct": loaded_ref.total,
            "published_per_s": published,
        },
    )
    print("  reference: a bare QApplication on the same qasync loop, same windows;")
    print("  ratio: console total / target (<= 1 meets it)")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with --publish / --idle-qt, one of its helper processes)."""
    parser = argparse.ArgumentParser(prog="bench_console_cpu", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--publish", metavar="EXCHANGE", help=argparse.SUPPRESS)
    parser.add_argument("--idle-qt", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publish:
        publish_paced(args.amqp_url, args.publish, args.rate)
    elif args.idle_qt:
        idle_qt_loop()
    else:
        run(args.amqp_url, args.seconds, args.rate)


if __name__ == "__main__":
    main()
