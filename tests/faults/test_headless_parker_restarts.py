"""``payops dlq park`` (a real subprocess) keeps parking across a broker restart and Redis
outages, and a missing dead-letter queue beside it stops nothing: every message parked once.

Slow (a private RabbitMQ node started twice): ``make faults``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from services.workbench.store import ParkingStore
from tests.helpers.paths import REPO_ROOT
from tests.helpers.private_servers import PrivateRabbit, PrivateRedis, servers_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.skipif(not servers_available(), reason="RabbitMQ and Redis are not installed"),
]

DLQ = "payments.dlq"
MISSING = "payments.nowhere"
WAVE = 500
TOTAL = 7 * WAVE


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[tuple[PrivateRabbit, PrivateRedis]]:
    rabbit = PrivateRabbit(tmp_path / "rabbit")
    redis = PrivateRedis(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    await asyncio.to_thread(rabbit.start)
    redis.start()
    yield rabbit, redis
    redis.kill()
    await asyncio.to_thread(rabbit.kill)


async def publish(url: str, first: int, count: int) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    for i in range(first, first + count):
        await channel.default_exchange.publish(
            aio_pika.Message(
                orjson.dumps({"payment_id": f"pay_{i}"}),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            DLQ,
        )
    await connection.close()


async def parked_ids(store: ParkingStore) -> list[str]:
    ids: list[str] = []
    async for batch in store.iter_summaries(DLQ):
        ids.extend(str(s.payment_id) for s in batch)
    return ids


async def wait_parked(store: ParkingStore, count: int, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await store.count(DLQ) >= count:
                return
        except (aioredis.ConnectionError, OSError):
            pass
        assert time.monotonic() < deadline, f"fewer than {count} parked after {timeout_s} s"
        await asyncio.sleep(0.2)


async def test_payops_dlq_park_survives_a_broker_restart_and_redis_outages(
    servers: tuple[PrivateRabbit, PrivateRedis], tmp_path: Path
) -> None:
    rabbit, redis_server = servers
    connection = await aio_pika.connect(rabbit.url)
    channel = await connection.channel()
    await channel.declare_queue(DLQ, durable=True, arguments={"x-queue-type": "quorum"})
    await connection.close()
    await asyncio.sleep(2)  # a quorum queue's registration on disk (see test_private_servers)

    config = tmp_path / "payops.toml"
    config.write_text(
        "[profiles.f]\n"
        f'amqp_url = "{rabbit.url}"\n'
        f'redis_url = "{redis_server.url}"\n'
        f'dead_letter_queues = ["{MISSING}", "{DLQ}"]\n'
        'redis_prefix = "faults"\n'
    )
    await publish(rabbit.url, 0, WAVE)
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "payops"), "dlq", "park", "--config", str(config),
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    redis = aioredis.Redis.from_url(redis_server.url, socket_timeout=2)
    store = ParkingStore(redis, "faults")
    try:
        await wait_parked(store, WAVE)
        await publish(rabbit.url, WAVE, WAVE)
        await asyncio.to_thread(rabbit.kill)  # mid-park or just after: either way
        await asyncio.to_thread(rabbit.start)
        await publish(rabbit.url, 2 * WAVE, WAVE)
        await wait_parked(store, 3 * WAVE)  # reconnected to the restarted broker
        for outage in range(3):  # Redis away longer than the old 1.6 s give-up, three times
            await asyncio.to_thread(redis_server.kill)
            # Dead letters keep coming while Redis is away: the parker has them to hold
            # (with none, it would not touch Redis and the outage would go unnoticed).
            await publish(rabbit.url, (3 + outage) * WAVE, WAVE)
            await asyncio.sleep(2.5)
            await asyncio.to_thread(redis_server.start)
        await publish(rabbit.url, 6 * WAVE, WAVE)
        await wait_parked(store, TOTAL)
        assert process.returncode is None, "payops dlq park stopped"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        _, err_bytes = await asyncio.wait_for(process.communicate(), 60)
    err = err_bytes.decode()

    ids = await parked_ids(store)
    assert sorted(ids) == sorted(f"pay_{i}" for i in range(TOTAL))  # each exactly once
    assert "reconnecting in" in err and MISSING in err  # said on stderr, kept going
    assert "Redis unavailable since" in err
    assert process.returncode == 0, err
    connection = await aio_pika.connect(rabbit.url)
    channel = await connection.channel()
    declared = await channel.declare_queue(DLQ, passive=True)
    assert declared.declaration_result.message_count == 0
    await connection.close()
    await redis.aclose()
