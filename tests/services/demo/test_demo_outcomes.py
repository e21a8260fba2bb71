"""Outcomes on the demo flow: payments the acquirer never settled are dead-lettered,
parked and requeued as a job; the demo's workers capture them, the console's recorder
sees the ``captured`` events, and each entry's outcome and the job's counters become
``succeeded``."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from services.config import Profile, TapBinding
from services.demo.simulator import SimulationOptions
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import entry_ids, park_all
from tests.helpers.outcome_kit import outcomes_of, recording_flow, until
from tests.services.demo.conftest import Broker, Simulate

pytestmark = pytest.mark.integration


async def test_a_requeued_group_succeeds_as_the_demo_workers_capture_it(
    broker: Broker,
    simulate: Simulate,
    amqp_url: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    prefix: str,
) -> None:
    topology = await broker.declare()
    stuck = SimulationOptions(
        rate=20,
        duration_s=0.3,
        failure_rate=0.0,
        decline_rate=0.0,
        review_rate=0.0,
        settlement_stuck_rate=1.0,  # the acquirer never settles: all dead-lettered
        seed=5,
        prefix=broker.prefix,
    )
    stats = await simulate(stuck)
    n = stats.delivery_limit_exceeded
    assert n >= 3
    store = ParkingStore(redis_client, prefix)
    dlq = topology.dead_letter_queue
    deadline = time.monotonic() + 8
    while await broker.depth(dlq) < n:
        assert time.monotonic() < deadline, "the demo never dead-lettered its payments"
        await _tick()
    assert await park_all(broker.connection, store, dlq) == n
    profile = Profile(
        name="demo-test",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=(TapBinding(topology.events_exchange),),
        dead_letter_queues=(dlq,),
        redis_prefix=prefix,
        alert_rules=(),
    )
    publisher = ActionPublisher(amqp_url)
    try:
        async with recording_flow(profile):
            ids = await entry_ids(store, dlq)
            service = ActionService(store, publisher, profile, "alice", "test-host")
            report = await service.requeue(ActionTarget.for_entries(ids), note="acquirer back")
            assert report.succeeded == n
            # The acquirer is back for the operator's requeues: the workers capture them.
            await simulate(
                SimulationOptions(rate=0.0, duration_s=1.0, seed=5, prefix=broker.prefix)
            )

            async def all_succeeded() -> bool:
                return set((await outcomes_of(store, dlq, ids)).values()) == {"succeeded"}

            await until(all_succeeded, 8, "every outcome succeeded")
        job = await service.jobs.get(report.job_id)
        assert job is not None
        assert job.outcomes == {"succeeded": n}
        assert job.outcome_line() == f"{n} succeeded"
    finally:
        await publisher.close()


async def _tick() -> None:
    await asyncio.sleep(0.05)
