"""Identical twins and a parker killed with ``kill -9`` between parking and acking: every
dead letter ends parked exactly once, twins as two entries (issue 8, item 1).

A producer's retry dead-letters the same body, properties and headers twice. The
parker (a real subprocess, :mod:`tests.helpers.parker_proc`) is SIGKILLed right after
its third batch is in Redis and before it is acked, so that batch comes back
redelivered beside twins of its messages that were never parked; a fresh parker then
drains the queue. Counted by payment id: each exactly twice.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator

import aio_pika
import aio_pika.abc
import orjson
import pytest
import redis.asyncio as aioredis

from services.config import FieldPaths
from services.workbench.parker import Parker
from services.workbench.store import ParkingStore
from tests.helpers.park_links import park_link
from tests.helpers.paths import REPO_ROOT
from tests.helpers.private_servers import servers_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not servers_available(), reason="RabbitMQ and Redis are not installed"),
]

PAIRS = 1500
BATCH = 100


@pytest.fixture
def store(redis_client: aioredis.Redis, prefix: str) -> ParkingStore:
    return ParkingStore(redis_client, prefix)


@pytest.fixture
async def dlq(amqp_url: str, unique_prefix: str) -> AsyncIterator[str]:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    name = f"{unique_prefix}dlq"
    await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    yield name
    await channel.queue_delete(name)
    await connection.close()


def twin(n: int) -> aio_pika.Message:
    """The same dead letter every time it is built: body, message id, headers, x-death."""
    return aio_pika.Message(
        orjson.dumps({"payment_id": f"pay_{n}", "amount": "10.00", "currency": "EUR"}),
        message_id=f"m-{n}",
        timestamp=1_700_000_000,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={"x-death": [{"queue": "payments.work", "reason": "rejected", "count": 1}]},
    )


async def publish_twins(amqp_url: str, queue: str) -> None:
    """Every pair twice: the twins adjacent for the first half, far apart for the rest."""
    order = [n for n in range(PAIRS // 2) for _ in (0, 1)]
    order += list(range(PAIRS // 2, PAIRS)) * 2
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    for start in range(0, len(order), 500):
        await asyncio.gather(
            *(channel.default_exchange.publish(twin(n), queue) for n in order[start : start + 500])
        )
    await connection.close()


async def depth(connection: aio_pika.abc.AbstractConnection, queue: str) -> int:
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, passive=True)
    await channel.close()
    return declared.declaration_result.message_count or 0


async def test_twins_and_a_parker_killed_between_park_and_ack_every_twin_parked_once(
    amqp_url: str, redis_url: str, store: ParkingStore, dlq: str
) -> None:
    await publish_twins(amqp_url, dlq)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.helpers.parker_proc", amqp_url, redis_url, store.prefix,
        dlq, "--batch", str(BATCH), "--crash-after-park", "3",
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == -signal.SIGKILL, err.decode()
    acked = int(out.decode().split()[-1]) if out.strip() else 0
    in_doubt = await store.count(dlq) - acked
    assert 0 < in_doubt <= BATCH  # the third batch is in Redis, its ack never sent

    connection = await aio_pika.connect(amqp_url)
    async with park_link(amqp_url) as link:
        stats = await Parker(store, dlq, FieldPaths(), batch_size=BATCH).run(link, once=True)
    assert stats.already_parked == in_doubt  # recognised by their marks, not their content
    assert await depth(connection, dlq) == 0
    await connection.close()

    per_payment: Counter[str | None] = Counter()
    async for batch in store.iter_summaries(dlq):
        per_payment.update(s.payment_id for s in batch)
    assert per_payment == Counter({f"pay_{n}": 2 for n in range(PAIRS)})
    assert await store.pending_marks(dlq) == 0
