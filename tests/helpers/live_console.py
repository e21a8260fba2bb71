"""A console on a tap exchange of its own: its profile, its events, its Redis keys."""

from __future__ import annotations

import dataclasses
import time

import orjson
import pika
import redis.asyncio as aioredis

from services.config import Profile, TapBinding, load_profile


def profile_for(exchange: str, amqp_url: str, redis_url: str) -> Profile:
    base = load_profile(env={})
    return dataclasses.replace(
        base,
        name="test",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=(TapBinding(exchange),),
        watch_queues=(),
        dead_letter_queues=(),
        redis_prefix=exchange,  # its own flow history and alert log
    )


async def drop_keys(profile: Profile) -> None:
    client = aioredis.from_url(profile.redis_url)
    keys = [k async for k in client.scan_iter(match=f"{profile.redis_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def publish_with_pika(amqp_url: str, exchange: str, statuses: dict[str, int]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    now_ms = int(time.time() * 1000)
    for status, count in statuses.items():
        for i in range(count):
            body = orjson.dumps({"payment_id": f"p{i}", "status": status, "created_at": now_ms})
            channel.basic_publish(exchange, f"payment.{status}", body)
    connection.close()
