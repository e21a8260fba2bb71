"""Stopping a task in the middle of a Redis command, against the real Redis: the action's
keepers (the run's lease, the job's runner key, the replay gate's checks ahead) are
stopped this way when an action ends, and must end (:func:`services.stopping.stop_tasks`).

A plain ``cancel()`` is lost there often: the installed redis-py (8.2.0 when this was
written) sends each command through ``asyncio.wait_for``, which on Python 3.11 drops a
cancel that lands as the command completes (about two cancels in three in this test)."""

from __future__ import annotations

import asyncio
import random

import pytest

from services.links.endpoints import RedisSettings
from services.links.redis_client import make_redis_client
from services.stopping import stop_tasks

pytestmark = pytest.mark.integration


async def test_a_keeper_stopped_while_it_waits_for_redis_ends(redis_url: str) -> None:
    client = make_redis_client(RedisSettings.standalone(redis_url))
    key = f"test-stopping-{random.randrange(1 << 30)}"
    chance = random.Random(7)
    try:

        async def keeper() -> None:  # as the lease and runner keepers refresh their keys
            while True:
                await client.get(key)
                await client.set(key, "1", px=5_000)
                # Theirs wait seconds between two refreshes, so a cancel sent again a
                # second later finds them waiting; one that spent every moment inside a
                # command (1 ms here before) lost five cancels in a row in one CI run.
                await asyncio.sleep(0.02)

        for _ in range(20):
            task = asyncio.create_task(keeper())
            await asyncio.sleep(chance.random() * 0.003)  # mid-command, often
            assert await stop_tasks([task], "test") == []
            assert task.cancelled()
    finally:
        await client.delete(key)
        await client.aclose()
