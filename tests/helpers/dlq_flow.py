"""A dead-letter flow for the ``payops dlq`` commands run against private servers: payments
rejected into a DLQ, the payment ids found in a queue afterwards, the Redis keys dropped."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aio_pika
import orjson
import redis.asyncio as aioredis

from tests.helpers.action_kit import Broker, DeadLetterFlow, payment


def dead_letter(amqp_url: str, prefix: str, count: int, **extra: Any) -> DeadLetterFlow:
    """``count`` payments (``pay_0``...), with the body fields ``extra``, rejected into the
    flow's DLQ."""

    async def run() -> DeadLetterFlow:
        connection = await aio_pika.connect(amqp_url)
        try:
            broker = Broker(connection, prefix, amqp_url)
            await broker.open()
            flow = DeadLetterFlow(broker, "rejected")
            await flow.declare()
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(flow.payments)
            for n in range(count):
                await exchange.publish(aio_pika.Message(payment(n, **extra)), "payment.failed")
            await channel.close()
            await flow.kill(count)
            await broker.drain(flow.other)
            return flow
        finally:
            await connection.close()

    return asyncio.run(run())


def payments_in(amqp_url: str, prefix: str, queue: str) -> Counter[str]:
    """The payment ids of every message taken off ``queue``."""

    async def run() -> Counter[str]:
        connection = await aio_pika.connect(amqp_url)
        try:
            broker = Broker(connection, prefix, amqp_url)
            records = await broker.drain(queue)
        finally:
            await connection.close()
        return Counter(str(orjson.loads(r.body)["payment_id"]) for r in records)

    return asyncio.run(run())


async def unlink_prefix(redis_urls: Sequence[str], prefix: str) -> None:
    """Delete every key under ``prefix`` from each server (every node of a cluster), one
    key at a time (a cluster refuses a command on keys of different slots)."""
    for url in redis_urls:
        client = aioredis.from_url(url)
        try:
            async for key in client.scan_iter(match=f"{prefix}:*"):
                await client.unlink(key)
        finally:
            await client.aclose()


def drop_keys(redis_urls: Sequence[str], prefix: str) -> None:
    """:func:`unlink_prefix` outside an event loop."""
    asyncio.run(unlink_prefix(redis_urls, prefix))
