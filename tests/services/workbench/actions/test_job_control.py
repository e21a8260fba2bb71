"""The operator's stop (Ctrl+C in the CLI, the console's *Stop here* or the console
closing) ends a paced job's run even while it waits: paused, or for its canary's
outcomes. The job is then ``stopped`` (resumable), nothing more is sent. Against the
real RabbitMQ and Redis."""

from __future__ import annotations

import asyncio

import pytest

from services.workbench.actions.jobs import JobState, Pace
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, ServiceFor, entry_ids, parked_payments
from tests.helpers.outcome_kit import until

pytestmark = pytest.mark.integration


async def test_a_stop_ends_a_paused_job_and_one_waiting_for_its_canary(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    flow = await parked_payments(broker, store, 8)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)

    # Paused by another console after it started: the operator's stop still ends it.
    stop = asyncio.Event()
    job = asyncio.create_task(
        service.requeue(ActionTarget.for_entries(ids[:4]), pace=Pace(rate=5), cancel_event=stop)
    )

    async def sending() -> bool:
        return bool(await service.jobs.recent(1)) and await broker.depth(flow.work) >= 1

    await until(sending, 8, "the job sending")
    (running,) = await service.jobs.recent(1)
    moved, _ = await service.jobs.set_state(
        running.job_id, JobState.PAUSED, "paused by bob", only_from=(JobState.RUNNING,)
    )
    assert moved
    await asyncio.sleep(0.5)
    sent = await broker.depth(flow.work)
    stop.set()
    report = await asyncio.wait_for(job, 8)  # not stuck in the pause
    assert report.stopped and await broker.depth(flow.work) == sent < 4
    stopped = await service.jobs.get(running.job_id)
    assert stopped is not None and stopped.state is JobState.STOPPED

    # A canary whose outcomes never come (no worker, a 10 min time-out): stopped too.
    stop = asyncio.Event()
    job = asyncio.create_task(
        service.requeue(ActionTarget.for_entries(ids[4:]), pace=Pace(canary=2), cancel_event=stop)
    )
    await broker.wait_depth(flow.work, sent + 2, timeout=8)
    await asyncio.sleep(0.5)  # the canary is out and waited for
    stop.set()
    report = await asyncio.wait_for(job, 8)
    assert report.stopped and report.succeeded == 2
    assert await broker.depth(flow.work) == sent + 2  # nothing after the canary
