"""The workbench controller's kit: a dead-letter flow on the real broker, a console on it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
import redis.asyncio as aioredis

from app.console import ConsoleSession
from services.config import Profile, load_profile
from services.workbench.store import ParkingStore

CARD = "4111111111111111"
StartConsole = Callable[[Profile], Awaitable[ConsoleSession]]


@pytest.fixture
async def flow(amqp_url: str, unique_prefix: str) -> AsyncIterator[dict[str, str]]:
    """A work queue that dead-letters through an exchange into a DLQ, with 3 dead letters."""
    names = {
        "work": f"{unique_prefix}work",
        "dlx": f"{unique_prefix}dlx",
        "dlq": f"{unique_prefix}dlq",
    }
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    dlx = await channel.declare_exchange(names["dlx"], aio_pika.ExchangeType.FANOUT)
    dlq = await channel.declare_queue(names["dlq"])
    await dlq.bind(dlx)
    work = await channel.declare_queue(
        names["work"], arguments={"x-dead-letter-exchange": names["dlx"]}
    )
    for i in range(3):
        body = (
            f'{{"payment_id": "pay_{i}", "merchant": "Acme", "amount": "1{i}.00",'
            f' "currency": "EUR", "card": {{"number": "{CARD}", "cvv": "123"}}}}'
        ).encode()
        await channel.default_exchange.publish(
            aio_pika.Message(body, content_type="application/json"), routing_key=names["work"]
        )
    for _ in range(3):
        message = await work.get(timeout=5)
        assert message is not None
        await message.reject(requeue=False)
    yield names
    for queue in ("work", "dlq"):
        await channel.queue_delete(names[queue])
    await channel.exchange_delete(names["dlx"])
    await connection.close()


def profile_for(names: dict[str, str], amqp_url: str, redis_url: str, prefix: str) -> Profile:
    """A profile whose only dead-letter queue is ``names["dlq"]``, keys under ``prefix``."""
    return dataclasses.replace(
        load_profile(env={}),
        name="workbench-test",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=(),
        watch_queues=(),
        dead_letter_queues=(names["dlq"],),
        redis_prefix=prefix.rstrip("."),
        cancel_exchange=None,
    )


@pytest.fixture
async def workbench_profile(
    flow: dict[str, str], amqp_url: str, redis_url: str, unique_prefix: str
) -> AsyncIterator[Profile]:
    """The profile of ``flow``; its parked entries are deleted afterwards."""
    profile = profile_for(flow, amqp_url, redis_url, unique_prefix)
    yield profile
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await ParkingStore(redis, profile.redis_prefix).delete_all(flow["dlq"])
    finally:
        await redis.aclose()
