"""``payops collect`` over mutual TLS: its flow child process taps RabbitMQ through
``amqps://`` and its recorder holds the history lease in Redis through ``rediss://``."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import exit_codes
from tests.helpers.certs import Certificates
from tests.helpers.dlq_flow import drop_keys
from tests.helpers.paths import REPO_ROOT
from tests.helpers.private_servers import PrivateRabbit, PrivateRedis

pytestmark = [pytest.mark.integration, pytest.mark.topologies]


def _lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The process's stdout, line by line (None at its end), read on a thread."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for_all(lines: queue.Queue[str | None], wanted: set[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while wanted and (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        wanted = {text for text in wanted if text not in line}
    assert not wanted, f"never printed {sorted(wanted)}; printed: {seen}"


def test_collect_taps_and_records_over_mutual_tls(
    tls_rabbit: PrivateRabbit,
    tls_redis: PrivateRedis,
    certs: Certificates,
    write_config: Callable[..., Path],
    unique_prefix: str,
    tmp_path: Path,
) -> None:
    prefix = unique_prefix.rstrip(".")
    config = write_config(
        amqp_url=tls_rabbit.tls_url,
        redis_url=tls_redis.tls_url,
        tls_ca=str(certs.ca),
        tls_cert=str(certs.client_cert),
        tls_key=str(certs.client_key),
        tap_exchanges=["amq.topic"],
        redis_prefix=prefix,
    )
    with (tmp_path / "collect.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "collect", "--config", str(config)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
    try:
        lines = _lines_of(process)
        _wait_for_all(lines, {"RabbitMQ connected", "history: writing (lease held)"}, 60)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == exit_codes.OK
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        drop_keys([tls_redis.url], prefix)
