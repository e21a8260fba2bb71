"""Jobs expire once they are over, against the real Redis: a finished job's keys (its
record, frozen selection, DLQ set and per-DLQ outcome counters) get the retention as a
TTL (seen with PTTL, no waiting), a running or paused job's keys never expire (and a
resumed one loses its TTL again), and the list of jobs drops what expired."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import cast

import pytest
import redis.asyncio as aioredis

from services.outcomes.model import dlq_base, job_counter_key
from services.workbench.actions.jobs import JobState, JobStore, Pace
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, entry_ids, make_profile, parked_payments

pytestmark = pytest.mark.integration

RETENTION_S = 600


def job_keys(jobs: JobStore, job_id: str, dlqs: list[str]) -> list[str]:
    key = jobs.key(job_id)
    counters = [job_counter_key(dlq_base(jobs.prefix, dlq), job_id) for dlq in dlqs]
    return [key, f"{key}:sel", f"{key}:dlqs", *counters]


async def pttls(redis: aioredis.Redis, keys: list[str]) -> list[int]:
    return [cast(int, await redis.pttl(key)) for key in keys]


async def test_a_finished_job_expires_after_the_retention_with_its_selection_and_counters(
    broker: Broker,
    store: ParkingStore,
    publisher: ActionPublisher,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    flow = await parked_payments(broker, store, 3)
    profile = dataclasses.replace(
        make_profile(amqp_url, redis_url, prefix, [flow.dlq]),
        job_retention_days=RETENTION_S / 86_400,
    )
    service = ActionService(store, publisher, profile, "alice", "test-host")
    assert service.jobs.retention_s == profile.job_retention_s  # the profile's, everywhere
    report = await service.requeue(ActionTarget.for_entries(await entry_ids(store, flow.dlq)))
    assert report.succeeded == 3
    keys = job_keys(service.jobs, report.job_id, [flow.dlq])
    assert await store.redis.exists(*keys) == len(keys)  # all there, counters included
    for ttl in await pttls(store.redis, keys):
        assert 0 < ttl <= RETENTION_S * 1000
    job = await service.jobs.get(report.job_id)
    assert job is not None and job.state is JobState.DONE


async def test_running_and_paused_jobs_never_expire_and_a_resumed_one_loses_its_ttl(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    jobs = JobStore(redis_client, prefix, retention_s=RETENTION_S)
    job_id = await jobs.create(
        "requeue", operator="alice", host="h", note="", target="t", pace=Pace(rate=5)
    )
    await jobs.add_selection(job_id, [("q.dlq", "e1"), ("q.dlq", "e2")])
    await redis_client.hincrby(job_counter_key(dlq_base(prefix, "q.dlq"), job_id), "pending", 2)
    keys = job_keys(jobs, job_id, ["q.dlq"])
    assert await pttls(redis_client, keys) == [-1] * len(keys)  # running
    await jobs.set_state(job_id, JobState.PAUSED, "canary", only_from=(JobState.RUNNING,))
    assert await pttls(redis_client, keys) == [-1] * len(keys)  # paused
    # Its process stops it: over, so it expires; resumed: it never expires again.
    await jobs.finish(job_id, JobState.STOPPED)
    assert all(0 < ttl <= RETENTION_S * 1000 for ttl in await pttls(redis_client, keys))
    moved, _ = await jobs.set_state(
        job_id, JobState.RUNNING, "resumed by bob", only_from=(JobState.STOPPED,)
    )
    assert moved
    assert await pttls(redis_client, keys) == [-1] * len(keys)
    # Cancelled from another console: over again.
    await jobs.set_state(job_id, JobState.CANCELLED, "by bob", only_from=(JobState.RUNNING,))
    assert all(0 < ttl <= RETENTION_S * 1000 for ttl in await pttls(redis_client, keys))


async def test_the_list_of_jobs_drops_expired_jobs(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    short = JobStore(redis_client, prefix, retention_s=1)
    over = await short.create("requeue", operator="a", host="h", note="", target="t", pace=Pace())
    await short.add_selection(over, [("q.dlq", "e1")])
    live = await short.create("retry", operator="a", host="h", note="", target="t", pace=Pace())
    await short.finish(over, JobState.DONE)
    assert {job.job_id for job in await short.recent()} == {live, over}
    assert 0 < cast(int, await redis_client.pttl(short.key(over))) <= 1000
    await asyncio.sleep(1.2)  # the one-second retention runs out
    assert await redis_client.exists(short.key(over), f"{short.key(over)}:sel") == 0
    assert await redis_client.zscore(short.index_key, over) is not None  # not yet read
    assert [job.job_id for job in await short.recent()] == [live]  # running: kept
    assert await redis_client.zscore(short.index_key, over) is None  # dropped as read
    assert await short.get(live) is not None


async def test_a_new_job_prunes_the_oldest_expired_ids_from_the_list(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    short = JobStore(redis_client, prefix, retention_s=1)
    over = await short.create("cancel", operator="a", host="h", note="", target="t", pace=Pace())
    await short.finish(over, JobState.DONE)
    await asyncio.sleep(1.2)
    newer = await short.create("requeue", operator="a", host="h", note="", target="t", pace=Pace())
    members = await redis_client.zrange(short.index_key, 0, -1)
    assert members == [newer.encode()]
