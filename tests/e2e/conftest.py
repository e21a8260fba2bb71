"""The end-to-end kit: the demo flow under a prefix of its own on the shared broker and
Redis, an incident that dead-letters payments, and a folder for each step's screenshot.

Nothing here uses the demo's own names (``payments.*`` queues, the ``payops`` Redis
prefix): every queue, exchange and key carries the test's unique prefix, so the scenario
runs beside a `make demo` and beside other users of the same broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis

from services.config import Profile, TapBinding, load_profile
from services.demo.simulator import SimulationOptions, SimulationStats, run_simulation
from services.demo.topology import DemoTopology, delete_demo_topology
from services.stopping import describe_task
from services.workbench.actions.pika_link import delay_queue_name

# The console's tests run on qasync's Qt event loop, one console per test: the same kit.
from tests.app.conftest import (  # noqa: F401 (a fixture and the loop hook, re-exported)
    keep_windows_until_exit,
    pytest_asyncio_loop_factories,
)
from tests.helpers.consoles import Consoles

SHOTS_ENV = "PAYOPS_E2E_SHOTS"
"""Where the scenario saves a screenshot of each step (default: the test's tmp_path)."""
CLOSE_TIMEOUT_S = 20
RETRY_DELAY_S = 60
"""The delay the scenario retries a group with (its delay queue is deleted afterwards)."""


@pytest.fixture
async def consoles(tmp_path: Path) -> AsyncIterator[Consoles]:
    """Consoles closed after the test; one that does not finish closing fails the test
    (with where every task of the loop is stuck) instead of hanging the suite."""
    kit = Consoles(tmp_path)
    yield kit
    running, kit.running = kit.running, []
    for session, runner in running:
        session.window.close()
        done, _ = await asyncio.wait({runner}, timeout=CLOSE_TIMEOUT_S)
        if not done:
            tasks = "\n".join(describe_task(task) for task in asyncio.all_tasks())
            pytest.fail(f"the console did not finish closing in {CLOSE_TIMEOUT_S} s:\n{tasks}")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """The folder for the step screenshots: ``$PAYOPS_E2E_SHOTS`` or the test's tmp_path."""
    folder = Path(os.environ.get(SHOTS_ENV) or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def topology(unique_prefix: str) -> DemoTopology:
    """The demo topology under the test's prefix (``t1a2b….payments.process`` …)."""
    return DemoTopology.for_prefix(unique_prefix, fraudcheck_ttl_ms=1_000)


@pytest.fixture
async def demo_profile(
    amqp_url: str, redis_url: str, topology: DemoTopology, prefix: str
) -> AsyncIterator[Profile]:
    """The demo profile pointed at the prefixed topology and Redis keys; everything the
    scenario made (queues, exchanges, delay queues, keys) is deleted afterwards."""
    demo = load_profile(env={})
    profile = dataclasses.replace(
        demo,
        name="e2e",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=tuple(TapBinding(name) for name in topology.tap_exchanges),
        watch_queues=topology.watch_queues,
        dead_letter_queues=topology.dead_letter_queues,
        redis_prefix=prefix,
        cancel_exchange=topology.events_exchange,
        alert_rules=None,  # the default rules, on these queue names
        operator="e2e-operator",
        allow_volatile_store=True,  # the shared test Redis keeps nothing on disk
    )
    assert all("payments" not in q or q.startswith(topology.prefix) for q in profile.watch_queues)
    yield profile
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for origin in topology.queues:
            await channel.queue_delete(delay_queue_name(origin, RETRY_DELAY_S))
        await delete_demo_topology(channel, topology.prefix)
    finally:
        await connection.close()
    client = aioredis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.unlink(*keys)
    finally:
        await client.aclose()


async def run_incident(amqp_url: str, topology: DemoTopology) -> SimulationStats:
    """A short demo flow that is all incident: the acquirer rejects payments (reason
    ``rejected``), the risk engine is down so fraud checks expire (``expired``); then the
    simulator stops, so nothing consumes the origin queues any more."""
    options = SimulationOptions(
        rate=25,
        duration_s=2.0,
        incident=True,
        incident_after_s=0.0,
        incident_duration_s=60.0,
        review_rate=0.3,
        settlement_stuck_rate=0.0,
        seed=20261203,
        prefix=topology.prefix,
        fraudcheck_ttl_ms=topology.fraudcheck_ttl_ms,
        drain_timeout_s=15.0,
    )
    return await run_simulation(amqp_url, options)
