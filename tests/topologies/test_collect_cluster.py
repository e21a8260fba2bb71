"""``payops collect`` on a three-node RabbitMQ cluster through ``amqp_urls``: its tap
connects to the first node; when that node is killed the collector moves to another,
declares its tap queue again there and goes on counting what is published."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.cli import exit_codes
from services.config import load_profile
from services.flow.history import HistoryStore
from tests.helpers.dlq_flow import drop_keys
from tests.helpers.live_console import publish_with_pika
from tests.helpers.paths import REPO_ROOT
from tests.helpers.private_servers import PrivateRabbit, PrivateRabbitCluster

pytestmark = [pytest.mark.integration, pytest.mark.topologies, pytest.mark.faults]

WAVE = 100


def _tap_queues(cluster: PrivateRabbitCluster) -> dict[str, str]:
    """The tap queues there are now and the node each lives on."""
    found: dict[str, str] = {}
    for node in cluster.nodes:
        if node.is_running():
            rows = json.loads(node.ctl("list_queues", "--local", "name", "--formatter", "json"))
            found.update(
                (row["name"], node.nodename)
                for row in rows
                if row["name"].startswith("payops.tap.")
            )
    return found


def _counted(config: Path, since: int) -> int:
    """The ``authorized`` events the collector has recorded in the history since ``since``."""

    async def read() -> int:
        profile = load_profile(config)
        redis = aioredis.Redis.from_url(profile.redis_url)
        try:
            rows = await HistoryStore.for_profile(redis, profile).read_rows(
                since, int(time.time()) + 1
            )
        finally:
            await redis.aclose()
        return sum(row.status_counts.get("authorized", 0) for row in rows)

    return asyncio.run(read())


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s: {what}"
        time.sleep(0.2)


def test_collect_moves_its_tap_to_another_node_when_its_node_dies(
    cluster: PrivateRabbitCluster,
    redis_url: str,
    write_config: Callable[..., Path],
    unique_prefix: str,
    tmp_path: Path,
) -> None:
    prefix = unique_prefix.rstrip(".")
    config = write_config(
        amqp_urls=cluster.urls,
        redis_url=redis_url,
        tap_exchanges=["amq.topic"],
        redis_prefix=prefix,
    )
    since = int(time.time())
    out_path = tmp_path / "collect.out"
    with out_path.open("w") as out, (tmp_path / "collect.err").open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "collect", "--config", str(config)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    printed = out_path.read_text
    other: PrivateRabbit = cluster.nodes[1]
    try:
        _wait(lambda: "history: writing (lease held)" in printed(), 90, "the collector to record")
        _wait(lambda: len(_tap_queues(cluster)) == 1, 60, "its tap queue")
        ((first_tap, first_node),) = _tap_queues(cluster).items()
        assert first_node == cluster.nodes[0].nodename  # the first of amqp_urls
        publish_with_pika(other.url, "amq.topic", {"authorized": WAVE})
        _wait(lambda: _counted(config, since) >= WAVE, 60, "the first wave counted")

        cluster.nodes[0].kill()
        _wait(lambda: "RabbitMQ reconnecting" in printed(), 60, "the loss to be said")
        moved: dict[str, str] = {}

        def tap_moved() -> bool:
            moved.clear()
            moved.update(_tap_queues(cluster))
            return any(name != first_tap for name in moved)

        _wait(tap_moved, 90, "a tap queue on another node")
        assert set(moved.values()) <= {n.nodename for n in cluster.nodes[1:]}, moved
        time.sleep(1)  # bound to amq.topic with it
        publish_with_pika(other.url, "amq.topic", {"authorized": WAVE})
        _wait(lambda: _counted(config, since) >= 2 * WAVE, 60, "the second wave counted")
        assert _counted(config, since) == 2 * WAVE
        assert printed().count("RabbitMQ connected") >= 2, printed()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == exit_codes.OK
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        drop_keys([redis_url], prefix)
