"""Parking into a Redis that fills up: the parker holds what it has and acks nothing Redis
refused; once there is room again, every dead letter is parked exactly once (a private Redis
with ``maxmemory`` and ``noeviction``, which answers writes with an OOM error when full)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from services.config import FieldPaths
from services.workbench.park_link import ParkLink
from services.workbench.parker import Parker, ParkerStats
from services.workbench.store import ParkingStore
from tests.helpers.private_servers import PrivateRedis, servers_available
from tests.helpers.waiting import eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not servers_available(), reason="RabbitMQ and Redis are not installed"),
]

N = 1500
PADDING = "x" * 4000
"""About 6 MB of bodies in all: several times what the full Redis has room for."""


@pytest.fixture
async def full_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(
        tmp_path / "redis",
        *("--appendonly", "yes", "--appendfsync", "everysec"),
        *("--maxmemory", "3mb", "--maxmemory-policy", "noeviction"),
    )
    server.start()
    yield server
    server.kill()


async def test_a_full_redis_holds_parking_and_nothing_is_lost_when_room_returns(
    amqp_url: str, unique_prefix: str, full_redis: PrivateRedis
) -> None:
    dlq = f"{unique_prefix}dlq"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(dlq, durable=True, arguments={"x-queue-type": "quorum"})
    for start in range(0, N, 100):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(orjson.dumps({"payment_id": f"pay_{i}", "pad": PADDING})),
                    dlq,
                )
                for i in range(start, min(start + 100, N))
            )
        )
    redis = aioredis.Redis.from_url(full_redis.url, socket_timeout=5)
    store = ParkingStore(redis, "full")
    reports: list[ParkerStats] = []
    parker = Parker(
        store, dlq, FieldPaths(), batch_size=100, on_progress=reports.append,
        redis_backoff=(0.05, 0.1, 0.2),
    )  # fmt: skip
    link = ParkLink(amqp_url)
    await link.connect()
    parking = asyncio.ensure_future(parker.run(link))
    try:
        await eventually(lambda: parker.stats.errors > 0, 30, "Redis refusing a batch")
        acked_while_full = parker.stats.acked
        assert 0 < acked_while_full < N
        stored_while_full = await store.count(dlq)
        # Every acked dead letter is stored (a batch may be stored and still held unacked when
        # Redis refused a later write of it: it is recognised, not parked twice, on the retry).
        assert acked_while_full <= stored_while_full < N
        assert "Redis is full (used memory reached maxmemory" in (parker.stats.last_error or "")
        await redis.config_set("maxmemory", "0")  # room again
        await eventually(lambda: parker.stats.acked >= N, 60, "every message parked and acked")
    finally:
        parker.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(parking, 20)

    assert parker.stats.received == parker.stats.acked == N
    # What a refused batch had stored before the refusal was parked by that very batch.
    assert (parker.stats.parked, parker.stats.already_parked) == (N, 0)
    payment_ids: list[str | None] = []
    async for batch in store.iter_summaries(dlq):
        payment_ids.extend(s.payment_id for s in batch)
    assert sorted(payment_ids, key=str) == sorted((f"pay_{i}" for i in range(N)), key=str)
    declared = await channel.declare_queue(dlq, passive=True)
    assert declared.declaration_result.message_count == 0
    await channel.queue_delete(dlq)
    await link.close()
    await connection.close()
    await redis.aclose()
