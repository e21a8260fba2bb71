"""The fault harness itself: a private node and Redis survive ``kill -9`` as configured."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis

from tests.helpers.private_servers import PrivateRabbit, PrivateRedis, servers_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not servers_available(), reason="RabbitMQ and Redis are not installed"),
]


@pytest.fixture
def rabbit(tmp_path: Path) -> Iterator[PrivateRabbit]:
    node = PrivateRabbit(tmp_path / "rabbit")
    node.start()
    yield node
    node.kill()


async def test_a_killed_node_comes_back_with_its_quorum_queue_and_messages(
    rabbit: PrivateRabbit,
) -> None:
    connection = await aio_pika.connect(rabbit.url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue("q", durable=True, arguments={"x-queue-type": "quorum"})
    for n in range(100):
        await channel.default_exchange.publish(
            aio_pika.Message(str(n).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key="q",
        )
    await connection.close()
    # A quorum queue killed within a second of being declared may come back without a
    # leader (its Ra registration is not on disk yet): fault tests declare theirs first.
    await asyncio.sleep(2)

    rabbit.kill()
    rabbit.start()

    connection = await aio_pika.connect(rabbit.url)
    channel = await connection.channel()
    queue = await channel.declare_queue("q", passive=True)
    bodies = []
    while (message := await queue.get(fail=False)) is not None:
        bodies.append(int(message.body))
        await message.ack()
    await connection.close()
    assert sorted(bodies) == list(range(100))


@pytest.mark.parametrize("durable", [True, False], ids=["aof", "in-memory"])
async def test_redis_keeps_across_kill_9_only_what_its_settings_keep(
    tmp_path: Path, durable: bool
) -> None:
    settings = ("--appendonly", "yes", "--appendfsync", "always") if durable else ()
    server = PrivateRedis(tmp_path / "redis", *settings)
    server.start()
    try:
        client = aioredis.from_url(server.url)
        await client.set("k", "v")
        await client.aclose()
        server.kill()
        server.start()
        client = aioredis.from_url(server.url)
        assert await client.get("k") == (b"v" if durable else None)
        await client.aclose()
    finally:
        server.kill()
