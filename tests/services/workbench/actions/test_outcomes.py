"""Outcomes of replayed entries against the real RabbitMQ and Redis: a requeued payment
captured by a worker succeeds (and its job's counters with it), one dead-lettered again
fails again (linked to its new entry), one the flow never finishes has no outcome, a
cancel's outcome is the cancel."""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest

from services.config import TapBinding
from services.outcomes.model import Outcome
from services.outcomes.tracker import OutcomeTracker
from services.snapshot.job import write_snapshot
from services.snapshot.model import SnapshotRequest
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService
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
from tests.helpers.outcome_kit import (
    outcomes_of,
    payment_of,
    publish_status,
    recording_flow,
    until,
)

pytestmark = pytest.mark.integration


async def test_requeued_entries_succeed_as_a_worker_captures_them_and_the_job_counts(
    broker: Broker,
    store: ParkingStore,
    publisher: ActionPublisher,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    flow = await parked_payments(broker, store, 3)
    events = await broker.exchange("events", aio_pika.ExchangeType.TOPIC)
    profile = make_profile(
        amqp_url,
        redis_url,
        prefix,
        [flow.dlq],
        tap_exchanges=(TapBinding(events.name),),
        alert_rules=(),
    )
    async with recording_flow(profile):
        ids = await entry_ids(store, flow.dlq)
        service = ActionService(store, publisher, profile, "alice", "test-host")
        report = await service.requeue(ActionTarget.for_entries(ids))
        assert report.succeeded == 3
        assert set((await outcomes_of(store, flow.dlq, ids)).values()) == {"pending"}
        job = await service.jobs.get(report.job_id)
        assert job is not None and job.counts["done"] == 3
        assert job.outcomes == {"pending": 3}
        # The worker: takes each requeued payment off its queue and captures it.
        for record in await broker.drain(flow.work):
            publish_status(amqp_url, events.name, payment_of(record), "captured")

        async def all_succeeded() -> bool:
            found = await outcomes_of(store, flow.dlq, ids)
            return set(found.values()) == {"succeeded"}

        await until(all_succeeded, 8, "every outcome succeeded")
        entry = await store.get(flow.dlq, ids[0])
        assert entry is not None and entry.outcome is not None
        assert entry.outcome.detail.startswith("captured at ")
        assert entry.outcome.job == report.job_id
        job = await service.jobs.get(report.job_id)
        assert job is not None and job.outcomes == {"succeeded": 3}
        assert job.outcome_line() == "3 succeeded"


async def test_a_payment_dead_lettered_again_fails_again_linked_to_its_new_entry(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    flow = await parked_payments(broker, store, 2)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)
    report = await service.requeue(ActionTarget.for_entries(ids[:1]))
    # The worker rejects it again: RabbitMQ dead-letters it, the parker parks it anew.
    assert broker.channel is not None
    work = await broker.channel.get_queue(flow.work)
    message = await work.get(no_ack=False, timeout=5)
    await message.reject(requeue=False)
    await broker.wait_depth(flow.dlq, 1)
    assert await park_all(broker.connection, store, flow.dlq) == 1
    new = [i for i in await entry_ids(store, flow.dlq) if i not in ids]
    assert len(new) == 1
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.outcome is not None
    assert entry.outcome.outcome is Outcome.FAILED_AGAIN
    assert entry.outcome.link == new[0]
    untouched = await store.get(flow.dlq, ids[1])
    assert untouched is not None and untouched.outcome is None
    job = await service.jobs.get(report.job_id)
    assert job is not None and job.outcomes == {"failed_again": 1}


async def test_no_final_event_within_the_timeout_is_no_outcome_and_settles_once(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    flow = await parked_payments(broker, store, 2)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq, outcome_timeout_s=60)
    profile = service.profile
    await service.requeue(ActionTarget.for_entries(ids))
    tracker = OutcomeTracker.for_profile(store.redis, profile)
    now = int(time.time() * 1000)
    assert await tracker.sweep(now) == []  # not due yet
    later = now + 61_000
    settled = await tracker.sweep(later)
    assert sorted(settled) == sorted((i, Outcome.NO_OUTCOME) for i in ids)
    assert await tracker.sweep(later) == []  # once
    assert set((await outcomes_of(store, flow.dlq, ids)).values()) == {"no_outcome"}


async def test_a_deleted_entry_waiting_for_its_outcome_is_forgotten(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    flow = await parked_payments(broker, store, 2)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq, outcome_timeout_s=60)
    profile = service.profile
    await service.requeue(ActionTarget.for_entries(ids))
    assert await store.delete_entries(flow.dlq, ids[:1]) == 1
    tracker = OutcomeTracker.for_profile(store.redis, profile)
    later = int(time.time() * 1000) + 61_000
    assert await tracker.sweep(later) == [(ids[1], Outcome.NO_OUTCOME)]
    assert await store.redis.zcard(store.keys(flow.dlq).outcomes_due) == 0


async def test_a_cancels_outcome_is_the_cancellation(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    flow = await parked_payments(broker, store, 1)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)
    await service.cancel(ActionTarget.for_entries(ids), reason="customer asked")
    assert await outcomes_of(store, flow.dlq, ids) == {ids[0]: "cancelled"}


async def test_the_snapshot_has_each_entrys_outcome_and_each_jobs_outcome_summary(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
    tmp_path: Path,
) -> None:
    started = int(time.time()) - 1
    flow = await parked_payments(broker, store, 2)
    ids = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)
    profile = service.profile
    report = await service.requeue(ActionTarget.for_entries(ids))
    await OutcomeTracker.for_profile(store.redis, profile).observe(
        [Sighting("pay_00000", int(time.time() * 1000), "captured")]
    )
    out = tmp_path / "snap.zip"
    await write_snapshot(SnapshotRequest(profile, started, int(time.time()) + 2, out), store.redis)
    with zipfile.ZipFile(out) as bundle:
        jobs = [json.loads(line) for line in bundle.read("jobs.jsonl").splitlines()]
        entries = [json.loads(line) for line in bundle.read("failed_payments.jsonl").splitlines()]
    (job,) = jobs
    assert job["job_id"] == report.job_id
    assert job["outcome_summary"] == "1 succeeded, 1 pending"
    by_payment = {e["payment_id"]: e["outcome"]["outcome"] for e in entries}
    assert by_payment == {"pay_00000": "succeeded", "pay_00001": "pending"}


@dataclass(frozen=True)
class Sighting:
    payment_id: str
    at_ms: int
    status: str
    reason: str | None = None
