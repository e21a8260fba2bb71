"""Paced, pausable jobs against the real RabbitMQ and Redis: a paced job's arrivals are
spaced by its rate; a canary that fails again pauses the job, which another process
resumes or cancels through Redis; a job whose process is killed resumes elsewhere with
nothing sent twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter

import aio_pika
import pytest
import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.workbench.actions.jobs import JobState, JobStore, Pace
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService
from services.workbench.model import EntryState
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import (
    Broker,
    ServiceFor,
    entry_ids,
    make_profile,
    park_all,
    parked_payments,
)
from tests.helpers.outcome_kit import payment_of, until
from tests.helpers.paths import REPO_ROOT

pytestmark = pytest.mark.integration


async def arrivals(broker: Broker, queue: str, count: int) -> list[float]:
    """When each of ``count`` messages arrived in ``queue`` (monotonic seconds)."""
    assert broker.channel is not None
    seen: list[float] = []
    done = asyncio.Event()
    declared = await broker.channel.get_queue(queue)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.append(time.monotonic())
        await message.ack()
        if len(seen) >= count:
            done.set()

    tag = await declared.consume(on_message)
    try:
        await asyncio.wait_for(done.wait(), 9)
    finally:
        await declared.cancel(tag)
    return seen


async def test_a_paced_job_spaces_its_arrivals_by_its_rate(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    n, rate = 6, 10.0
    flow = await parked_payments(broker, store, n)
    service = service_for(flow.dlq)
    watching = asyncio.create_task(arrivals(broker, flow.work, n))
    await asyncio.sleep(0)  # the consumer starts before the job
    report = await service.requeue(
        ActionTarget.for_entries(await entry_ids(store, flow.dlq)), pace=Pace(rate=rate)
    )
    assert report.succeeded == n
    seen = sorted(await watching)
    # One entry every 1/rate s: the arrivals span at least most of (n - 1) / rate (a slow
    # machine only spreads them more); a full-speed job lands them all at once.
    assert seen[-1] - seen[0] >= 0.7 * (n - 1) / rate
    job = await service.jobs.get(report.job_id)
    assert job is not None and job.state is JobState.DONE and job.pace.rate == rate
    assert job.total == n


async def test_a_canary_that_fails_again_pauses_the_job_which_another_process_cancels(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
    redis_url: str,
    prefix: str,
) -> None:
    flow = await parked_payments(broker, store, 6)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)
    job = asyncio.create_task(
        service.requeue(ActionTarget.for_entries(ids), pace=Pace(canary=2, max_failed_pct=20))
    )
    # The downstream is still sick: the worker rejects the canary, the parker parks it anew.
    assert broker.channel is not None
    work = await broker.channel.get_queue(flow.work)
    await broker.wait_depth(flow.work, 2, timeout=8)
    for _ in range(2):
        message = await work.get(no_ack=False, timeout=5)
        await message.reject(requeue=False)
    await broker.wait_depth(flow.dlq, 2)
    assert await park_all(broker.connection, store, flow.dlq) == 2
    other = aioredis.from_url(redis_url)  # another console, through Redis only
    try:
        jobs = JobStore(other, prefix)

        async def paused() -> bool:
            found = await jobs.recent(1)
            return bool(found) and found[0].state is JobState.PAUSED

        await until(paused, 8, "the job paused by its canary")
        (found,) = await jobs.recent(1)
        assert found.reason == "canary: 2 of 2 failed again (100 % > 20 %)"
        assert found.outcomes == {"failed_again": 2}
        moved, _ = await jobs.set_state(
            found.job_id, JobState.CANCELLED, "by bob", only_from=(JobState.PAUSED,)
        )
        assert moved
    finally:
        await other.aclose()
    report = await asyncio.wait_for(job, 8)
    assert report.succeeded == 2 and report.stopped
    assert await broker.depth(flow.work) == 0  # nothing after the canary was sent
    states = Counter(s.state for s in await store_rows(store, flow.dlq))
    assert states == Counter({EntryState.PARKED: 6, EntryState.REQUEUED: 2})
    final = await service.jobs.get(report.job_id)
    assert final is not None and final.state is JobState.CANCELLED


async def test_a_paused_job_goes_on_when_resumed_from_another_process(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
    publisher: ActionPublisher,
) -> None:
    flow = await parked_payments(broker, store, 4)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)
    profile = service.profile
    job = asyncio.create_task(service.requeue(ActionTarget.for_entries(ids), pace=Pace(rate=5)))

    async def started() -> bool:
        return bool(await service.jobs.recent(1)) and await broker.depth(flow.work) >= 1

    await until(started, 8, "the job sending")
    (running,) = await service.jobs.recent(1)
    moved, _ = await service.jobs.set_state(
        running.job_id, JobState.PAUSED, "by bob", only_from=(JobState.RUNNING,)
    )
    assert moved
    await asyncio.sleep(0.6)  # three paces: a running job would have sent them
    held_at = await broker.depth(flow.work)
    assert held_at < 4 and not job.done()
    other = ActionService(store, publisher, profile, "bob", "host-b")
    assert await other.resume_job(running.job_id) is None  # its runner is alive: it goes on
    report = await asyncio.wait_for(job, 8)
    assert report.succeeded == 4
    assert await broker.depth(flow.work) == 4


async def store_rows(store: ParkingStore, dlq: str) -> list:  # type: ignore[type-arg]
    rows = []
    async for batch in store.iter_summaries(dlq):
        rows.extend(batch)
    return rows


async def test_a_killed_job_resumes_elsewhere_with_nothing_sent_twice(
    broker: Broker,
    store: ParkingStore,
    publisher: ActionPublisher,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    n = 10
    flow = await parked_payments(broker, store, n)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.helpers.action_proc",
        amqp_url,
        redis_url,
        prefix,
        flow.dlq,
        "--rate",
        "8",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:

        async def some_sent() -> bool:
            return await broker.depth(flow.work) >= 3

        await until(some_sent, 9, "the paced job sending")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    profile = make_profile(amqp_url, redis_url, prefix, [flow.dlq])
    service = ActionService(store, publisher, profile, "carol", "test-host")
    (job,) = await service.jobs.recent(1)
    assert job.state is JobState.RUNNING and job.total == n
    report = await service.resume_job(job.job_id)
    assert report is not None and report.job_id == job.job_id
    delivered = await broker.drain(flow.work)
    payments = Counter(payment_of(m) for m in delivered)
    assert max(payments.values()) == 1, "a payment was sent twice"
    states = Counter(s.state for s in await store_rows(store, flow.dlq))
    # Every entry is requeued, but one the kill may have left in doubt (claimed, its
    # send unconfirmed): that one waits for `payops dlq resolve`, not sent again.
    assert states[EntryState.REQUEUED] + states[EntryState.CLAIMED] == n
    assert states[EntryState.CLAIMED] <= 1
    assert len(payments) >= n - states[EntryState.CLAIMED]
    resumed = await service.jobs.get(job.job_id)
    assert resumed is not None and resumed.state is JobState.DONE


async def test_a_critical_alert_pauses_a_paced_job(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
    prefix: str,
) -> None:
    flow = await parked_payments(broker, store, 6)
    service = service_for(flow.dlq)
    ids = await entry_ids(store, flow.dlq)
    job = asyncio.create_task(service.requeue(ActionTarget.for_entries(ids), pace=Pace(rate=4)))

    async def sending() -> bool:
        return await broker.depth(flow.work) >= 1

    await until(sending, 8, "the job sending")
    fired = AlertEvent(time.time(), "acquirer_down", "firing", 1.0, "acquirer down", "critical")
    await AlertLog(store.redis, prefix).append(fired)

    async def paused() -> bool:
        found = await service.jobs.recent(1)
        return bool(found) and found[0].state is JobState.PAUSED

    await until(paused, 8, "the job paused by the alert")
    (found,) = await service.jobs.recent(1)
    assert found.reason == "critical alert acquirer_down fired: acquirer down"
    await service.jobs.set_state(found.job_id, JobState.CANCELLED, only_from=(JobState.PAUSED,))
    report = await asyncio.wait_for(job, 8)
    assert report.stopped and report.succeeded < 6
