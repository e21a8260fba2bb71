"""The action publisher against the real RabbitMQ when the broker nacks: a full queue
(``x-max-length`` with ``x-overflow = reject-publish``) nacks for real. A message to one
queue is published again after a back-off until the queue takes it (once: counted by
action id) or the time allowed runs out; one through a named exchange stays nacked."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

import aio_pika
import pytest

from services.workbench.actions.publisher import (
    ACTION_ID_HEADER,
    ActionPublisher,
    PublishItem,
    PublishOutcome,
)
from tests.helpers.action_kit import Broker

pytestmark = pytest.mark.integration

FULL_AT_TWO = {"x-max-length": 2, "x-overflow": "reject-publish"}


async def test_a_nacked_publish_goes_again_once_the_queue_makes_room(
    broker: Broker, amqp_url: str
) -> None:
    queue = await broker.queue("small", arguments=FULL_AT_TWO)
    publisher = ActionPublisher(amqp_url, nack_retry_s=15, nack_backoff_s=(0.2,))
    waits: list[str] = []
    publisher.on_wait = waits.append
    settled: list[tuple[int, PublishOutcome]] = []
    arrived: list[str] = []

    async def make_room() -> None:
        """Once the broker has refused some, take messages off as they come."""
        while not waits:
            await asyncio.sleep(0.02)
        while len(arrived) < 5:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                arrived.append(str(message.headers[ACTION_ID_HEADER]))

    items = [PublishItem("", queue.name, f"m{i}".encode(), f"id-{i}") for i in range(5)]
    room = asyncio.create_task(make_room())
    try:
        await publisher.connect()
        outcomes = await publisher.publish_many(
            items, on_settled=lambda i, o: settled.append((i, o))
        )
        await asyncio.wait_for(room, 5)
    finally:
        room.cancel()
        await publisher.close()
    assert [o.status for o in outcomes] == ["confirmed"] * 5
    assert waits and waits[0] == (
        f"RabbitMQ refused 3 message(s) for {queue.name} (basic.nack: queue full or"
        " electing a leader); publishing them again in 0.2 s (for up to 15 s)"
    )
    assert Counter(arrived) == Counter(f"id-{i}" for i in range(5))  # each once
    assert sorted(i for i, _ in settled) == [0, 1, 2, 3, 4]  # each told once: confirmed
    assert all(o.ok for _, o in settled)


async def test_a_nack_that_lasts_stays_a_nack_and_a_named_exchange_is_not_retried(
    broker: Broker, amqp_url: str
) -> None:
    queue = await broker.queue("small", arguments=FULL_AT_TWO)
    fanout = await broker.exchange("fan", aio_pika.ExchangeType.FANOUT)
    await queue.bind(fanout)
    publisher = ActionPublisher(amqp_url, nack_retry_s=1, nack_backoff_s=(0.2,))
    waits: list[str] = []
    publisher.on_wait = waits.append
    settled: list[tuple[int, PublishOutcome]] = []
    items = [PublishItem("", queue.name, f"m{i}".encode(), f"id-{i}") for i in range(4)]
    try:
        await publisher.connect()
        started = time.monotonic()
        outcomes = await publisher.publish_many(
            items, on_settled=lambda i, o: settled.append((i, o))
        )
        assert time.monotonic() - started >= 0.8  # it waited, the time allowed
        assert [o.status for o in outcomes] == ["confirmed"] * 2 + ["nacked"] * 2
        assert len(waits) >= 3  # published again every 0.2 s for a second
        told = re.fullmatch(
            r"the broker refused the message \(basic\.nack\), (\d+) times over (\d+\.\d) s",
            outcomes[3].detail,
        )
        assert told is not None, outcomes[3].detail
        # Every refusal counted; the span at least the back-offs slept between them (the
        # last round's confirm can take it past the second allowed on a busy machine).
        assert int(told[1]) == len(waits) + 1
        assert float(told[2]) >= round(0.2 * len(waits), 1)
        assert sorted(i for i, _ in settled) == [0, 1, 2, 3]  # the nacks told once, at the end
        # Through a named exchange it may be in another bound queue: refused at once.
        waits.clear()
        [cancel] = await publisher.publish_many([PublishItem(fanout.name, "", b"c", "c-1")])
        assert cancel.status == "nacked" and not waits
        assert cancel.detail == "the broker refused the message (basic.nack)"
    finally:
        await publisher.close()
    assert sorted(m.body for m in await broker.drain(queue.name)) == [b"m0", b"m1"]
