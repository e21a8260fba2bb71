"""A job's books are safe to repeat, against the real Redis: what a failover does to a
write (its reply lost after it ran, the write itself lost with the old master, a later
write overtaking an earlier one) leaves the counters of the newest write applied, and a
close run twice ends the job once. That is what lets them ride through a failover."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.workbench.actions.jobs import JobState, JobStore, LiveCounts, Pace
from services.workbench.actions.report import ActionOutcome

pytestmark = pytest.mark.integration


async def new_job(jobs: JobStore) -> str:
    return await jobs.create(
        "requeue", operator="alice", host="pc", note="", target="3 entries", pace=Pace()
    )


async def counts(jobs: JobStore, job_id: str) -> dict[str, int]:
    job = await jobs.get(job_id)
    assert job is not None
    return {name: n for name, n in job.counts.items() if n}


async def test_a_run_s_counts_repeated_overtaken_or_lost_give_the_newest_totals(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    jobs = JobStore(redis_client, prefix)
    job_id = await new_job(jobs)
    assert await jobs.count_run(job_id, "run-1", {"done": 2}, 2)
    assert not await jobs.count_run(job_id, "run-1", {"done": 2}, 2)  # its reply was lost
    assert await counts(jobs, job_id) == {"done": 2}
    assert await jobs.count_run(job_id, "run-1", {"done": 4, "held": 1}, 5)
    assert not await jobs.count_run(job_id, "run-1", {"done": 3}, 3)  # overtaken: ignored
    assert await counts(jobs, job_id) == {"done": 4, "held": 1}
    # The failover lost the last write (the promoted replica never had it): the next one
    # carries the totals, so nothing is missing and nothing counted twice.
    await redis_client.hset(jobs.key(job_id), "run:run-1", '{"seq":2,"counts":{"done":2}}')
    await redis_client.hset(jobs.key(job_id), mapping={"done": 2, "held": 0})
    assert await jobs.count_run(job_id, "run-1", {"done": 6, "held": 1, "failed": 1}, 8)
    assert await counts(jobs, job_id) == {"done": 6, "held": 1, "failed": 1}
    # A second run (the job resumed) adds its own to the first's.
    assert await jobs.count_run(job_id, "run-2", {"done": 3}, 3)
    assert await counts(jobs, job_id) == {"done": 9, "held": 1, "failed": 1}
    assert not await jobs.count_run("no-such-job", "run-1", {"done": 1}, 1)
    assert not await redis_client.exists(jobs.key("no-such-job"))  # not made up


async def test_live_counts_flush_the_run_s_totals_once(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    jobs = JobStore(redis_client, prefix)
    job_id = await new_job(jobs)
    outcomes: list[ActionOutcome] = []
    live = LiveCounts(jobs, job_id, outcomes, "run-1")
    outcomes.append(ActionOutcome("e1", "p1", True, "done", "requeued"))
    live.tick()
    outcomes.append(ActionOutcome("e2", "p2", False, "skipped", "held back: entry e9"))
    live.tick()
    outcomes.append(ActionOutcome("e3", "p3", False, "failed", "unroutable"))
    await live.flush()
    await live.flush()  # a repeated flush changes nothing
    assert await counts(jobs, job_id) == {"done": 1, "held": 1, "failed": 1}


async def test_a_close_repeated_after_its_reply_was_lost_ends_the_job_once(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    jobs = JobStore(redis_client, prefix, retention_s=600)
    job_id = await new_job(jobs)
    assert await jobs.end(job_id, JobState.DONE, "", 1_700_000_000_000)
    # The same call again (its reply was lost): it answers as the first did.
    assert await jobs.end(job_id, JobState.DONE, "", 1_700_000_000_000)
    job = await jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE
    assert job.finished_ms == 1_700_000_000_000
    assert 0 < await redis_client.pttl(jobs.key(job_id)) <= 600_000
    # Another close of a job already done (not a repeat) does not move it again.
    assert not await jobs.end(job_id, JobState.STOPPED, "", 1_700_000_000_500)
    assert (await jobs.state(job_id))[0] is JobState.DONE
    # A job cancelled meanwhile by an operator stays cancelled.
    other = await new_job(jobs)
    await jobs.set_state(other, JobState.CANCELLED, "by bob", only_from=(JobState.RUNNING,))
    await jobs.finish(other, JobState.DONE)
    assert (await jobs.state(other))[0] is JobState.CANCELLED
