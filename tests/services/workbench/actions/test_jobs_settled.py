"""A paced job that waits (for its canary's outcomes, paused, between paces) has every
window it published settled first: recorded in the ledger (no entry left ``sending``,
which crash recovery would take for in doubt) and counted in the job's record. Against
the real RabbitMQ and Redis."""

from __future__ import annotations

import asyncio

import pytest

from services.workbench.actions.jobs import JobState, Pace
from services.workbench.actions.ledger import SENDING_FIELD
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, ServiceFor, entry_ids, parked_payments
from tests.helpers.outcome_kit import until

pytestmark = pytest.mark.integration


async def test_a_job_waiting_for_its_canary_has_the_canary_recorded_and_counted(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    canary = 6
    flow = await parked_payments(broker, store, 10)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)
    stop = asyncio.Event()
    # 20/s: pieces of two, so the canary is three windows; no worker, so its outcomes
    # stay pending and the job waits for them (up to the 10 min time-out).
    job = asyncio.create_task(
        service.requeue(
            ActionTarget.for_entries(ids), pace=Pace(rate=20, canary=canary), cancel_event=stop
        )
    )
    try:
        await broker.wait_depth(flow.work, canary, timeout=8)
        (running,) = await service.jobs.recent(1)

        async def canary_counted() -> bool:
            found = await service.jobs.get(running.job_id)
            return found is not None and found.counts.get("done") == canary

        await until(canary_counted, 5, f"the job's sent counter at {canary}")
        found = await service.jobs.get(running.job_id)
        assert found is not None and found.state is JobState.RUNNING  # waiting, not over
        assert found.outcomes == {"pending": canary}
        pipe = store.redis.pipeline(transaction=False)
        for entry_id in ids:
            pipe.hmget(store.entry_key(flow.dlq, entry_id), "state", SENDING_FIELD)
        fields = await pipe.execute()
        states = sorted((state or b"").decode() for state, _ in fields)
        assert states == ["parked"] * (10 - canary) + ["requeued"] * canary
        assert [sending for _, sending in fields] == [None] * 10  # nothing in doubt
        await asyncio.sleep(0.5)
        assert await broker.depth(flow.work) == canary  # still waiting: nothing more sent
    finally:
        stop.set()
    report = await asyncio.wait_for(job, 8)
    assert report.stopped and report.succeeded == canary
