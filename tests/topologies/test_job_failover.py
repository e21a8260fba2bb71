"""A Sentinel failover (the master killed with ``kill -9``) that strikes a job's own
writes, in process so the moment is exact: the kill happens in the run's progress
callback, so the job's counter write that follows meets a dead master. The run rides
through it (its ledger calls wait for the promoted replica), and the job record ends
``done`` with counters that say what became of the payments, counted by payment id.

Slow (a failover, hundreds of messages): ``make test-topologies``, not ``make test``.
"""

from __future__ import annotations

import pytest

from services.workbench.actions.jobs import JobState
from services.workbench.model import EntryState
from services.workbench.query import ActionTarget, Query
from tests.helpers.private_servers import PrivateSentinel
from tests.helpers.requeue_kit import ParkOnSentinel

pytestmark = [pytest.mark.integration, pytest.mark.topologies, pytest.mark.faults]


async def test_a_job_hit_by_a_failover_ends_done_with_each_payment_counted_once(
    sentinel_two_replicas: PrivateSentinel, parked_on_sentinel: ParkOnSentinel
) -> None:
    servers = sentinel_two_replicas
    scenario = await parked_on_sentinel(600)
    killed_at: list[int] = []

    def progress(done: int, total: int, failed: int) -> None:
        if not killed_at and done >= scenario.n // 3:  # the job's counter write is next
            killed_at.append(done)
            servers.master.kill()

    try:
        async with scenario.action_service(window=50) as service:
            target = ActionTarget.for_query(Query(states=frozenset({EntryState.PARKED})), 0)
            report = await service.requeue(target, progress=progress)
            job = await service.jobs.get(report.job_id)
        why = f"master killed with {killed_at} settled, failed over to {servers.master_port()}"
        assert killed_at and servers.master_port() != servers.master.port, why
        assert [o.status for o in report.outcomes] == ["done"] * scenario.n, why
        delivered = await scenario.drain_work()
        assert delivered == scenario.expected(), f"lost or duplicated: {why}"
        states = await scenario.states()
        assert set(states.values()) == {EntryState.REQUEUED}, why
        assert job is not None, why
        assert job.state is JobState.DONE and job.finished_ms, (why, job)
        assert job.total == scenario.n, (why, job)
        # What the job says it did is what happened to the payments: each counted once.
        assert dict(job.counts) == {
            "done": sum(delivered.values()), "skipped": 0, "held": 0, "failed": 0,
        }, (why, job)  # fmt: skip
        assert sum(job.outcomes.values()) == scenario.n, (why, job)
    finally:
        await scenario.delete_queues()
    print(why)
