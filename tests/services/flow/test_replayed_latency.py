"""Replayed payments through the real broker: counted, but never in the flow's latency.

An operator's requeue republishes a parked message as it was, created minutes
ago; the service that consumes it emits its status events with the payment's
original created time. Measured from that time, a bulk requeue would push p99
to minutes and fire the latency alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aio_pika
import numpy as np
import orjson
import pytest

from services.config import Profile, TapBinding
from services.demo.payments import carried_headers, status_event
from services.flow.aggregator import FlowAggregator
from services.flow.decoder import EventDecoder
from services.flow.tap import FlowTap
from services.workbench.actions.publisher import ActionPublisher, PublishItem
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration

PARKED_FOR_MS = 180_000
REPLAYED = 40
FRESH = 200


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractConnection]:
    conn = await aio_pika.connect(amqp_url)
    yield conn
    await conn.close()


async def test_a_requeued_old_payment_does_not_move_p99(
    amqp_url: str, unique_prefix: str, connection: aio_pika.abc.AbstractConnection
) -> None:
    channel = await connection.channel()
    events = await channel.declare_exchange(
        f"{unique_prefix}events", aio_pika.ExchangeType.TOPIC, auto_delete=True
    )
    origin = await channel.declare_queue(f"{unique_prefix}process", auto_delete=True)
    profile = Profile(
        name="test",
        amqp_url=amqp_url,
        redis_url="redis://127.0.0.1:6379/15",
        tap_exchanges=(TapBinding(events.name),),
    )
    clock = Clock()
    agg = FlowAggregator(clock=clock)
    tap = FlowTap(profile, agg, EventDecoder(profile.fields))
    tap_task = asyncio.create_task(tap.run(connection))

    # The downstream service: consumes the origin queue and emits a status event
    # per payment, copying the operator's marks as the demo's stages do.
    async def on_payment(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            payment = orjson.loads(message.body)
            body = status_event(payment, "captured", int(time.time() * 1000))
            await events.publish(
                aio_pika.Message(orjson.dumps(body), headers=carried_headers(message.headers)),
                "payment.captured",
            )

    consumer_tag = await origin.consume(on_payment)
    publisher = ActionPublisher(amqp_url)
    try:
        await asyncio.wait_for(tap.ready.wait(), 10)
        now_ms = int(time.time() * 1000)
        for i in range(FRESH):
            fresh = {"payment_id": f"pay_{i}", "status": "captured", "created_at": now_ms}
            await events.publish(aio_pika.Message(orjson.dumps(fresh)), "payment.captured")

        # The requeue: the parked messages, created long ago, back to their origin queue.
        created = now_ms - PARKED_FOR_MS
        items = [
            PublishItem(
                exchange="",
                routing_key=origin.name,
                body=orjson.dumps({"payment_id": f"pay_old_{i}", "created_at": created}),
                action_id=f"run1.entry{i}",
                properties={"timestamp": created / 1000},
                headers={"payops-action": "requeue"},
            )
            for i in range(REPLAYED)
        ]
        outcomes = await publisher.publish_many(items)
        assert all(o.ok for o in outcomes)
        await eventually(lambda: tap.consumed >= FRESH + REPLAYED, what="every event tapped")

        clock.now += 1  # the second is finished: the headline covers it
        headline = agg.headline()
        assert headline.replayed_events == REPLAYED
        assert headline.events_per_s == FRESH + REPLAYED
        assert headline.latency_p99_ms is not None
        assert headline.latency_p99_ms < 60_000  # the fresh events' latency, not 3 minutes
        assert agg.totals_by_status() == {"captured": FRESH + REPLAYED}
        assert float(np.nanmax(agg.frame(5).latency_ms[-1])) < 60_000
    finally:
        await publisher.close()
        await origin.cancel(consumer_tag)
        tap_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tap_task
        with contextlib.suppress(Exception):
            await channel.queue_delete(origin.name)
        with contextlib.suppress(Exception):
            await channel.exchange_delete(events.name)
        await channel.close()
