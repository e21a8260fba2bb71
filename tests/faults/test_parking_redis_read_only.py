"""Parking into a Redis that is a read-only replica (a failover left the parker on the
wrong node): nothing acked, nothing handed back, no delivery budget spent on a quorum
dead-letter queue with ``x-delivery-limit`` 1; once the replica is promoted, every dead
letter is parked exactly once (issue 8, item 2; private Redis servers, shared broker)."""

from __future__ import annotations

import asyncio
import contextlib
import time
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

N = 500


@pytest.fixture
async def replica(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    primary = PrivateRedis(tmp_path / "primary", "--appendonly", "yes")
    primary.start()
    server = PrivateRedis(
        tmp_path / "replica", "--appendonly", "yes", "--replicaof", "127.0.0.1", str(primary.port)
    )
    server.start()
    client = aioredis.Redis.from_url(server.url)
    deadline = time.monotonic() + 30
    while (await client.info("replication")).get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica never synced"
        await asyncio.sleep(0.05)
    await client.aclose()
    yield server
    server.kill()
    primary.kill()


async def test_a_read_only_replica_holds_parking_and_nothing_is_lost_once_promoted(
    amqp_url: str, unique_prefix: str, replica: PrivateRedis
) -> None:
    dlq = f"{unique_prefix}dlq"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(
        dlq, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 1}
    )
    await asyncio.gather(
        *(
            channel.default_exchange.publish(
                aio_pika.Message(orjson.dumps({"payment_id": f"pay_{i}"})), dlq
            )
            for i in range(N)
        )
    )
    redis = aioredis.Redis.from_url(replica.url, socket_timeout=5)
    store = ParkingStore(redis, "ro")
    reports: list[ParkerStats] = []
    parker = Parker(
        store, dlq, FieldPaths(), batch_size=100, on_progress=reports.append,
        redis_backoff=(0.05, 0.1, 0.2),
    )  # fmt: skip
    link = ParkLink(amqp_url)
    await link.connect()
    parking = asyncio.ensure_future(parker.run(link))
    try:
        await eventually(lambda: parker.stats.errors >= 3, 30, "the replica refusing batches")
        assert parker.stats.acked == 0 and parker.stats.holding > 0
        assert "Redis is a read-only replica" in (parker.stats.last_error or "")
        assert any("Redis unavailable since" in (r.problem or "") for r in reports)
        await redis.execute_command("REPLICAOF", "NO", "ONE")  # the failover completes
        await eventually(lambda: parker.stats.acked >= N, 60, "every message parked and acked")
    finally:
        parker.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(parking, 20)

    assert parker.stats.received == parker.stats.acked == N  # each delivered once
    payment_ids: list[str | None] = []
    delivery_counts: set[object] = set()
    async for batch in store.iter_summaries(dlq):
        payment_ids.extend(s.payment_id for s in batch)
        for entry in await store.get_many(dlq, [s.entry_id for s in batch]):
            assert entry is not None
            delivery_counts.add(entry.record.headers.get("x-delivery-count"))
    assert sorted(payment_ids, key=str) == sorted((f"pay_{i}" for i in range(N)), key=str)
    assert delivery_counts == {None}  # never handed back: the limit of 1 never reached
    declared = await channel.declare_queue(dlq, passive=True)
    assert declared.declaration_result.message_count == 0
    await channel.queue_delete(dlq)
    await link.close()
    await connection.close()
    await redis.aclose()
