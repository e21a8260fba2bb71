"""A Sentinel failover (the master killed with ``kill -9``) in the middle of recovery:
hundreds of crashed runs, each fenced (half with no lease left, half whose lease names a
process of this machine that is gone: taken over) and its claimed entries released. The
kill strikes once recovery has released a third of them; recovery rides through it on
the promoted replica and ends with every entry parked again, counted entry by entry.

Slow (a failover): ``make test-topologies``, not ``make test``.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
import redis.asyncio as aioredis

from services.workbench.model import EntryState
from tests.helpers.action_kit import crash_runs
from tests.helpers.private_servers import PrivateSentinel
from tests.helpers.requeue_kit import ParkOnSentinel

pytestmark = [pytest.mark.integration, pytest.mark.topologies, pytest.mark.faults]


async def kill_when_released(
    servers: PrivateSentinel, inflight_key: str, total: int, seen: list[int]
) -> None:
    """``kill -9`` the master once recovery has released a third of ``total`` (read on
    the master itself, not through the sentinel)."""
    master = aioredis.Redis(port=servers.master.port)
    try:
        while (left := cast(int, await master.scard(inflight_key))) > total * 2 // 3:
            await asyncio.sleep(0.002)
        seen.append(left)
        servers.master.kill()
    finally:
        await master.aclose(close_connection_pool=True)


async def test_recovery_hit_by_a_failover_fences_and_releases_every_crashed_run(
    sentinel_two_replicas: PrivateSentinel, parked_on_sentinel: ParkOnSentinel
) -> None:
    servers = sentinel_two_replicas
    scenario = await parked_on_sentinel(900)
    try:
        async with scenario.action_service() as service:
            store, client = service.store, service.store.redis
            batches = store.iter_summaries(scenario.dlq)
            entry_ids = [e.entry_id async for batch in batches for e in batch]
            assert len(entry_ids) == scenario.n
            runs = await crash_runs(service.ledger, scenario.dlq, entry_ids)
            await client.wait(2, 10_000)  # the crashed runs' claims are on both replicas
            seen: list[int] = []
            killer = asyncio.create_task(
                kill_when_released(servers, store.keys(scenario.dlq).inflight, scenario.n, seen)
            )
            report = await service.recover()
            await killer
            why = f"killed with {seen} claimed, failed over to {servers.master_port()}"
            assert seen and 0 < seen[0] < scenario.n, why
            assert servers.master_port() != servers.master.port, why
            assert not report.in_doubt and not report.in_progress, (why, report.headline())
            assert sorted(e.entry_id for e in report.released) == sorted(entry_ids), why
            # A release the old master took and lost with it (not yet on a replica) is
            # found claimed again: recovery run again releases it. Nothing else is left.
            again = await service.recover()
            why += f"; released again: {len(again.released)}"
            assert not again.in_doubt and not again.in_progress, why
            states = await scenario.states()
            assert len(states) == scenario.n and set(states.values()) == {EntryState.PARKED}
            assert await store.in_flight(scenario.dlq) == [], why
            for run_id in runs:  # each crashed run fenced: a stalled holder writes no more
                lease = await client.get(service.ledger.lease_key(scenario.dlq, run_id))
                assert isinstance(lease, bytes) and lease.startswith(b"fenced:"), (why, run_id)
    finally:
        await scenario.delete_queues()
    print(why)
