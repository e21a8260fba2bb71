"""``payops collect`` as an operator runs it: a headless process writing history and alerts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pika
import pytest
import redis.asyncio as aioredis

from app.cli import exit_codes
from services.flow.history import HistoryStore
from tests.helpers.paths import REPO_ROOT
from tests.helpers.tcp_proxy import free_port

pytestmark = pytest.mark.integration


class Collector:
    """One ``python -m app collect`` process and the lines it prints."""

    def __init__(self, config: Path, log: Path, *extra: str) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "collect", "--config", str(config), *extra],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout_s: float = 60.0) -> str:
        """The first line (from now on, or already printed) that contains ``text``."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout_s} s; printed: {self.lines}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout_s)
        with contextlib.suppress(AssertionError):
            self.wait_for("\0never\0", 2)  # collect the last lines
        return code

    def leftovers(self) -> str:
        """Processes of its group still running (multiprocessing's tracker leaves last)."""
        found = "?"
        for _ in range(50):
            found = subprocess.run(
                ["pgrep", "-a", "-g", str(self.process.pid)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            if not found:
                break
            time.sleep(0.1)
        return found

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


def write_config(path: Path, amqp_url: str, redis_url: str, exchange: str, prefix: str) -> Path:
    path.write_text(
        f'[profiles.t]\namqp_url = "{amqp_url}"\nredis_url = "{redis_url}"\n'
        f'tap_exchanges = ["{exchange}"]\nredis_prefix = "{prefix}"\n'
        "alert_defaults = false\n\n"
        "[[profiles.t.alerts]]\n"
        'kind = "failure_rate"\nthreshold_pct = 20\nwindow_s = 5\nmin_events = 10\n'
        "resolve_after_s = 2\n",
        encoding="utf-8",
    )
    return path


class Publisher:
    def __init__(self, amqp_url: str, exchange: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, "topic")
        self.channel.confirm_delivery()
        self.exchange = exchange

    def publish(self, counts: dict[str, int]) -> None:
        now_ms = time.time() * 1000
        for status, n in counts.items():
            for i in range(n):
                body = orjson.dumps({"payment_id": f"p{i}", "status": status, "created_at": now_ms})
                self.channel.basic_publish(self.exchange, f"payment.{status}", body)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.exchange_delete(self.exchange)
        self.connection.close()


def stored(redis_url: str, prefix: str, since: int) -> dict[str, int]:
    async def read() -> dict[str, int]:
        client = aioredis.from_url(redis_url)
        try:
            rows = await HistoryStore(client, prefix).read_rows(since, int(time.time()) + 2)
        finally:
            await client.aclose()
        totals: Counter[str] = Counter()
        for row in rows:
            totals.update(row.status_counts)
        return dict(totals)

    return asyncio.run(read())


def redis_command(redis_url: str, *command: str) -> object:
    async def run() -> object:
        client = aioredis.from_url(redis_url)
        try:
            return await client.execute_command(*command)
        finally:
            await client.aclose()

    return asyncio.run(run())


def wait_until(predicate: object, timeout_s: float = 30.0, what: str = "the condition") -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def test_collect_writes_history_hands_over_and_exits_0_on_sigterm(
    tmp_path: Path, amqp_url: str, redis_url: str, unique_prefix: str
) -> None:
    exchange = f"{unique_prefix}events"
    prefix = unique_prefix.rstrip(".")
    since = int(time.time()) - 5
    config = write_config(tmp_path / "payops.toml", amqp_url, redis_url, exchange, prefix)
    publisher = Publisher(amqp_url, exchange)
    first = Collector(config, tmp_path / "first.log")
    second: Collector | None = None
    try:
        first.wait_for("RabbitMQ connected")
        first.wait_for("history: writing (lease held)")

        # Warm-up events until one shows in the history: from then on the
        # collector's tap counts whole seconds.
        wait_until(
            lambda: (
                publisher.publish({"warmup": 1}) or "warmup" in stored(redis_url, prefix, since)
            ),
            60,
            "the first recorded second",
        )
        publisher.publish({"failed": 40, "captured": 20})
        wait_until(lambda: stored(redis_url, prefix, since).get("captured", 0) >= 20, 30)
        first.wait_for("alert FIRING critical failure_rate: failure rate")
        totals = stored(redis_url, prefix, since)
        assert (totals["failed"], totals["captured"]) == (40, 20)

        # A second collector stands by while the first writes ...
        second = Collector(config, tmp_path / "second.log")
        holder = redis_command(redis_url, "GET", f"{prefix}:history:lease")
        assert isinstance(holder, bytes)
        second.wait_for(f"history: standby, {holder.decode()} writes")

        # ... and takes over when it stops.
        assert first.stop() == exit_codes.OK
        assert first.leftovers() == "", "a child process outlived the collector"
        assert first.lines[-1].endswith("stopped")
        second.wait_for("history: writing (lease held)", 30)
        publisher.publish({"captured": 15})
        wait_until(lambda: stored(redis_url, prefix, since).get("captured", 0) >= 35, 30)
        totals = stored(redis_url, prefix, since)
        assert (totals["failed"], totals["captured"]) == (40, 35)

        assert second.stop(signal.SIGINT) == exit_codes.OK
        assert second.leftovers() == "", "a child process outlived the collector"
        # Stopped, it let go of the lease at once.
        assert redis_command(redis_url, "GET", f"{prefix}:history:lease") is None
    finally:
        first.kill()
        if second is not None:
            second.kill()
        publisher.close()
        keys = redis_command(redis_url, "KEYS", f"{prefix}:*")
        assert isinstance(keys, list)
        if keys:
            redis_command(redis_url, "DEL", *(k.decode() for k in keys))


def test_collect_keeps_running_while_rabbitmq_and_redis_are_down(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "payops.toml",
        f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        f"redis://127.0.0.1:{free_port()}/15",
        "amq.topic",
        "payops-test-down",
    )
    collector = Collector(config, tmp_path / "collect.log", "--duration", "4")
    try:
        collector.wait_for("RabbitMQ failed: connection refused")
        collector.wait_for("history: unavailable: Redis: connection refused")
        assert collector.process.wait(timeout=60) == exit_codes.OK
        collector.wait_for("stopped", 5)
    finally:
        collector.kill()


def test_report_lines_carry_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime
    import io

    from app.cli.collect import CollectReport
    from tests.helpers.zones import local_zone

    out = io.StringIO()
    at = datetime.datetime(2026, 12, 3, 13, 5, 31, tzinfo=datetime.UTC).timestamp()
    with local_zone(monkeypatch, "Europe/Berlin"):
        CollectReport(out).line("recorder: writing", at=at)
    assert out.getvalue() == "2026-12-03 14:05:31 CET recorder: writing\n"
