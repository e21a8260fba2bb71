"""Parking while its Redis dies and comes back: nothing dropped, nothing doubled, no delivery
budget spent (a quorum dead-letter queue with a small ``x-delivery-limit`` on the shared
broker, a private Redis killed with ``kill -9`` and restarted several times)."""

from __future__ import annotations

import asyncio
import contextlib
import random

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

N = 2000
DELIVERY_LIMIT = 2
"""Two hand-backs of a message and RabbitMQ drops it: the old parker lost messages here."""


async def test_a_quorum_dlq_keeps_every_message_while_redis_dies_and_comes_back(
    amqp_url: str, unique_prefix: str, private_redis: PrivateRedis
) -> None:
    dlq = f"{unique_prefix}dlq"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(
        dlq,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT},
    )
    redis = aioredis.Redis.from_url(private_redis.url, socket_timeout=2, socket_connect_timeout=1)
    store = ParkingStore(redis, "fault")
    reports: list[ParkerStats] = []
    parker = Parker(
        store,
        dlq,
        FieldPaths(),
        batch_size=100,
        on_progress=reports.append,
        redis_backoff=(0.05, 0.1, 0.2),
    )
    link = ParkLink(amqp_url)
    await link.connect()
    parking = asyncio.ensure_future(parker.run(link))

    async def publish(first: int, count: int) -> None:
        for start in range(first, first + count, 50):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(orjson.dumps({"payment_id": f"pay_{i}"})), dlq
                    )
                    for i in range(start, min(start + 50, first + count))
                )
            )
            await asyncio.sleep(0.01)

    try:
        await publish(0, N // 2)
        rng = random.Random(8)
        wave = N // 8
        for cycle in range(4):  # Redis dies mid-park, stays away a while, comes back
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await asyncio.to_thread(private_redis.kill)
            await publish(N // 2 + cycle * wave, wave)  # dead letters keep coming meanwhile
            await eventually(lambda: bool(reports) and reports[-1].holding > 0, 20, "holding")
            await asyncio.sleep(rng.uniform(0.5, 2.0))  # far past the old 1.6 s give-up
            await asyncio.to_thread(private_redis.start)
        await eventually(lambda: parker.stats.acked >= N, 60, "every message parked and acked")
    finally:
        parker.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(parking, 20)

    held = [r.problem for r in reports if r.problem]
    assert held and "dead letters: Redis unavailable since" in held[0]
    assert parker.stats.received == parker.stats.acked == N  # each delivered once: no return

    payment_ids: list[str | None] = []
    delivery_counts: list[object] = []
    async for batch in store.iter_summaries(dlq):
        payment_ids.extend(s.payment_id for s in batch)
        for entry in await store.get_many(dlq, [s.entry_id for s in batch]):
            assert entry is not None
            delivery_counts.append(entry.record.headers.get("x-delivery-count"))
    assert sorted(payment_ids, key=str) == sorted((f"pay_{i}" for i in range(N)), key=str)
    assert set(delivery_counts) == {None}  # never handed back: no delivery budget spent
    declared = await channel.declare_queue(dlq, passive=True)
    assert declared.declaration_result.message_count == 0
    await channel.queue_delete(dlq)
    await link.close()
    await connection.close()
    await redis.aclose()
