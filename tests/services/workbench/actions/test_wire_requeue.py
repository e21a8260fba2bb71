"""Requeue on the wire: the content header a consumer gets after park + requeue is the one
that was dead-lettered, byte for byte (every AMQP field type); undecodable headers are
parked, not fatal; the death count carries across requeues. Real RabbitMQ and Redis."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pamqp.frame
import pytest

from services.workbench import amqp_raw
from services.workbench.actions.report import ActionReport
from services.workbench.codec import F_PROPS, encode_record
from services.workbench.death_history import DEATHS_HEADER, HISTORY_HEADER, total_deaths
from services.workbench.republish import REQUEUE_FIELD
from services.workbench.store import ParkingStore
from services.workbench.wire import decode_properties
from tests.helpers.action_kit import (
    Broker,
    DeadLetterFlow,
    entry_ids,
    park_all,
    requeue_entries,
)
from tests.helpers.wire_kit import (
    EVERY_TYPE,
    comparable,
    entry,
    long_,
    properties,
    publish_raw,
    short,
    table,
)

pytestmark = pytest.mark.integration

Requeue = Callable[[list[str]], Awaitable[ActionReport]]


@pytest.fixture
def requeue(
    store: ParkingStore, amqp_url: str, redis_url: str, prefix: str, broker: Broker
) -> Requeue:
    def run(ids: list[str]) -> Awaitable[ActionReport]:
        return requeue_entries(store, amqp_url, redis_url, prefix, broker.name("dlq"), ids)

    return run


def original_properties(message_id: bytes = b"m-1", headers: bytes | None = None) -> bytes:
    return properties(
        content_type=short(b"application/json"),
        headers=headers if headers is not None else table(*EVERY_TYPE),
        delivery_mode=b"\x02",
        priority=b"\x05",
        correlation_id=short(b"corr-1"),
        reply_to=short(b"replies"),
        expiration=short(b"600000"),
        message_id=short(message_id),
        timestamp=struct.pack(">Q", 1_700_000_000_456),  # milliseconds, as some clients do
        type=short(b"payment.failed"),
        app_id=short(b"gateway"),
    )


def header_order(raw: bytes) -> list[str]:
    """The keys of the headers a requeue keeps, in their order on the wire."""
    fields = decode_properties(raw).header_fields
    return [f.key for f in fields if f.key and not f.key.startswith(("x-", "payops-"))]


async def dead_letter_raw(
    broker: Broker, store: ParkingStore, messages: list[tuple[bytes, bytes]]
) -> DeadLetterFlow:
    """Publish ``messages`` (body, raw properties) as they are, let RabbitMQ dead-letter
    them (the origin queue's TTL: no client reads them before the parker), park them all,
    and make the origin queue plain again for the requeue."""
    flow = DeadLetterFlow(broker, "expired")
    await flow.declare()
    await asyncio.to_thread(publish_raw, broker.amqp_url, flow.payments, "payment.failed", messages)
    await flow.kill(len(messages))
    assert await park_all(broker.connection, store, flow.dlq) == len(messages)
    await flow.redeclare_work_plain()
    channel = await broker.connection.channel()
    await (await channel.get_queue(flow.other)).purge()
    await channel.close()
    return flow


async def test_requeue_sends_back_every_property_and_header_byte_for_byte(
    broker: Broker, store: ParkingStore, requeue: Requeue
) -> None:
    sent = original_properties()
    flow = await dead_letter_raw(broker, store, [(b'{"payment_id": "p-1"}', sent)])
    ids = await entry_ids(store, flow.dlq)
    parked = await store.get(flow.dlq, ids[0])
    assert parked is not None and parked.record.wire is not None
    # RabbitMQ removed expiration and sorted the keys when it dead-lettered the message:
    dead_lettered = comparable(parked.record.wire)
    assert "expiration" not in dead_lettered

    report = await requeue(ids)
    assert report.succeeded == 1, report.outcomes

    (message,) = await broker.drain(flow.work)
    assert message.body == b'{"payment_id": "p-1"}'
    assert message.wire is not None
    back = comparable(message.wire)
    assert back == comparable(sent) | {"headers": dead_lettered["headers"]}
    assert back["headers"] == comparable(sent)["headers"]  # every type, byte for byte
    assert "cluster_id" not in back
    assert header_order(message.wire) == header_order(parked.record.wire)  # as dead-lettered
    assert message.headers[DEATHS_HEADER] == 1


async def test_an_entry_parked_by_an_earlier_version_is_still_requeued(
    broker: Broker, store: ParkingStore, requeue: Requeue, redis_client: Any
) -> None:
    flow = await dead_letter_raw(broker, store, [(b"old", original_properties())])
    (entry_id,) = await entry_ids(store, flow.dlq)
    parked = await store.get(flow.dlq, entry_id)
    assert parked is not None
    # What earlier versions stored: props without the raw bytes, pamqp's empty cluster_id,
    # and no encoded requeue properties (republish.REQUEUE_FIELD).
    old = type(parked.record)(
        body=parked.record.body,
        properties={**parked.record.properties, "cluster_id": ""},
        headers=parked.record.headers,
        exchange=parked.record.exchange,
        routing_key=parked.record.routing_key,
    )
    key = store.entry_key(flow.dlq, entry_id)
    assert await redis_client.hexists(key, REQUEUE_FIELD)
    await redis_client.hset(key, F_PROPS, encode_record(old)[F_PROPS])
    await redis_client.hdel(key, REQUEUE_FIELD)
    reread = await store.get(flow.dlq, entry_id)
    assert reread is not None and reread.record.wire is None

    report = await requeue([entry_id])
    assert report.succeeded == 1, report.outcomes
    (message,) = await broker.drain(flow.work)
    assert message.body == b"old"
    assert "cluster_id" not in message.properties  # never sent, never added
    assert message.properties["expiration"] == "600000"
    assert message.headers["zeta-first"] == "text ü" and message.headers["int8"] == -3


async def test_undecodable_headers_are_parked_with_everything_behind_them(
    broker: Broker, store: ParkingStore, requeue: Requeue, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = [
        (b"bad-key", properties(headers=table(entry(b"k\xff\xfe", long_(b"S", b"v"))))),
        (b"bad-id", properties(message_id=short(b"id-\xff"))),
        (b"year-10000", properties(timestamp=struct.pack(">Q", 253_402_300_800_000_000))),
    ]
    healthy = [(f"ok-{n}".encode(), properties(app_id=short(b"gateway"))) for n in range(5)]
    # pamqp's strict decoding in place: the parker (pika, raw bytes) must not need it.
    monkeypatch.setattr(pamqp.frame, "_unmarshal_header_frame", amqp_raw.PAMQP_UNMARSHAL_HEADER)
    flow = await dead_letter_raw(broker, store, poison + healthy)
    assert await broker.depth(flow.dlq) == 0
    entries = {}
    for entry_id in await entry_ids(store, flow.dlq):
        parked = await store.get(flow.dlq, entry_id)
        assert parked is not None
        entries[parked.record.body] = parked
    assert sorted(entries) == sorted(body for body, _ in poison + healthy)
    assert "k\\xff\\xfe" in entries[b"bad-key"].record.headers  # shown as the bytes they are
    assert entries[b"bad-id"].record.properties["message_id"] == b"id-\xff"
    assert entries[b"year-10000"].record.properties["timestamp"] == 253_402_300_800_000_000

    # ... and each goes back exactly as it came.
    report = await requeue([e.entry_id for e in entries.values()])
    assert report.succeeded == len(entries), report.outcomes
    arrived = {m.body: m for m in await broker.drain(flow.work)}
    assert sorted(arrived) == sorted(entries)
    for body, raw in poison + healthy:
        wire = arrived[body].wire
        assert wire is not None
        assert comparable(wire) == comparable(raw), body


async def test_a_requeued_message_that_dies_again_carries_its_death_count(
    broker: Broker, store: ParkingStore, requeue: Requeue
) -> None:
    flow = await dead_letter_raw(broker, store, [(b"twice", original_properties())])
    for cycle in (1, 2, 3):
        ids = await entry_ids(store, flow.dlq)
        latest = max(ids)
        report = await requeue([latest])
        assert report.succeeded == 1, report.outcomes
        await broker.wait_depth(flow.work, 1)
        assert broker.channel is not None  # the consumer fails it again:
        failed = await (await broker.channel.get_queue(flow.work)).get(no_ack=False, timeout=5)
        await failed.reject(requeue=False)
        await broker.wait_depth(flow.dlq, 1)
        assert await park_all(broker.connection, store, flow.dlq) == 1
        parked = await store.get(flow.dlq, max(await entry_ids(store, flow.dlq)))
        assert parked is not None
        assert parked.record.headers[DEATHS_HEADER] == cycle
        assert total_deaths(parked.record.headers) == cycle + 1
        assert parked.summary.attempts >= cycle + 1
        assert len(parked.record.headers[HISTORY_HEADER]) == cycle
