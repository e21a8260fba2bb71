"""Poison messages at the head of one dead-letter queue and healthy ones in another,
parked by the profile's :class:`~services.workbench.park_runner.ParkingRunner`: every
message of both queues is parked once, the odd ones with their raw bytes (issue 8,
item 3). Before, the first undecodable message made the AMQP library close the
connection, every run met it first, and nothing behind it - nor in the other queue
sharing the connection - was ever parked.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import aio_pika
import pamqp.frame
import pytest
import redis.asyncio as aioredis

from services.workbench import amqp_raw
from services.workbench.park_runner import ParkingRunner
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import make_profile
from tests.helpers.private_servers import servers_available
from tests.helpers.wire_kit import entry, long_, properties, publish_raw, short, table

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not servers_available(), reason="RabbitMQ and Redis are not installed"),
]

POISON = [
    (b"bad-key", properties(headers=table(entry(b"k\xff\xfe", long_(b"S", b"v"))))),
    (b"bad-id", properties(message_id=short(b"id-\xff"))),
    (b"year-10000", properties(timestamp=struct.pack(">Q", 253_402_300_800_000_000))),
]


@pytest.fixture
async def queues(amqp_url: str, unique_prefix: str) -> AsyncIterator[tuple[str, str]]:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    names = (f"{unique_prefix}poisoned.dlq", f"{unique_prefix}healthy.dlq")
    for name in names:
        await channel.declare_queue(name, durable=True)
    yield names
    for name in names:
        await channel.queue_delete(name)
    await connection.close()


async def test_poison_at_the_head_of_one_queue_stops_neither_it_nor_another(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    redis_client: aioredis.Redis,
    queues: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    poisoned, healthy = queues
    behind = [(f"ok-{n}".encode(), properties(app_id=short(b"gateway"))) for n in range(20)]
    others = [(f"other-{n}".encode(), properties(app_id=short(b"gateway"))) for n in range(20)]
    await asyncio.to_thread(publish_raw, amqp_url, "", poisoned, POISON + behind)
    await asyncio.to_thread(publish_raw, amqp_url, "", healthy, others)
    # pamqp's strict decoding in place: the parker (pika, raw bytes) must not need it.
    monkeypatch.setattr(pamqp.frame, "_unmarshal_header_frame", amqp_raw.PAMQP_UNMARSHAL_HEADER)

    store = ParkingStore(redis_client, prefix)
    profile = make_profile(amqp_url, redis_url, prefix, queues)
    runner = ParkingRunner(profile, store, queues, once=True, give_up_after_s=10)
    results = await asyncio.wait_for(runner.run(), 60)
    assert not [r for r in results if isinstance(r, BaseException)], results

    async def bodies(dlq: str) -> list[bytes]:
        ids = [s.entry_id async for batch in store.iter_summaries(dlq) for s in batch]
        return sorted(e.record.body for e in await store.get_many(dlq, ids) if e is not None)

    assert await bodies(poisoned) == sorted(body for body, _ in POISON + behind)
    assert await bodies(healthy) == sorted(body for body, _ in others)
