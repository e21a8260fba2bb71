"""services.trace on the real broker and Redis: a payment dead-lettered twice (requeued in
between) and its recorded flow events, assembled into one timeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from services.config import FieldPaths
from services.flow.payment_events import PaymentEvent, PaymentEventStore
from services.links.headers import ACTION_ID_HEADER
from services.trace import trace_payment
from services.workbench.codec import MessageRecord
from services.workbench.model import EntryState
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import (
    Broker,
    DeadLetterFlow,
    entry_ids,
    make_profile,
    park_all,
    requeue_entries,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def broker(amqp_url: str, unique_prefix: str) -> AsyncIterator[Broker]:
    connection = await aio_pika.connect(amqp_url)
    broker = Broker(connection, unique_prefix, amqp_url)
    await broker.open()
    yield broker
    await broker.cleanup()
    await connection.close()


async def test_a_payment_dead_lettered_twice_reads_as_one_story(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    broker: Broker,
    redis_client: aioredis.Redis,
) -> None:
    profile = make_profile(amqp_url, redis_url, prefix, [broker.name("dlq")])
    store = ParkingStore(redis_client, prefix)
    flow = DeadLetterFlow(broker, "rejected")
    await flow.declare()
    assert broker.channel is not None
    payments = await broker.channel.get_exchange(flow.payments)
    body = orjson.dumps({"payment_id": "pay_9", "amount": "10.00", "currency": "EUR"})
    await payments.publish(aio_pika.Message(body), "payment.request")
    # Another payment in the same DLQ, never part of pay_9's story.
    other = orjson.dumps({"payment_id": "pay_10", "amount": "1.00", "currency": "EUR"})
    await payments.publish(aio_pika.Message(other), "payment.request")
    await flow.kill(2)
    assert await park_all(broker.connection, store, flow.dlq) == 2
    first = next(
        s
        for batch in [b async for b in store.iter_summaries(flow.dlq)]
        for s in batch
        if s.payment_id == "pay_9"
    )
    report = await requeue_entries(store, amqp_url, redis_url, prefix, flow.dlq, [first.entry_id])
    assert report.succeeded == 1
    # The requeued message fails again: a second cycle, parked as a second entry.
    work = await broker.channel.get_queue(flow.work)
    again = await work.get(timeout=10)
    action_id = again.headers[ACTION_ID_HEADER]
    await again.reject(requeue=False)
    await broker.wait_depth(flow.dlq, 1)
    assert await park_all(broker.connection, store, flow.dlq) == 1
    ids = await entry_ids(store, flow.dlq)
    assert len(ids) == 3

    entry1 = await store.get(flow.dlq, first.entry_id)
    assert entry1 is not None and entry1.deaths[0].time_ms is not None
    died_ms = entry1.deaths[0].time_ms
    events = PaymentEventStore.for_profile(redis_client, profile)
    # The failure event happened at the start of the second x-death names; the requeued
    # attempt failed again after the action.
    await events.append(
        [
            PaymentEvent("pay_9", died_ms - 40, "requested", key="e1"),
            PaymentEvent("pay_9", died_ms, "failed", "acquirer timeout", key="e2"),
        ]
    )

    trace = await trace_payment(redis_client, profile, "pay_9")
    assert trace.found and trace.events_recorded
    kinds = [(s.kind, s.what) for s in trace.steps]
    assert kinds == [
        ("event", "requested"),
        ("event", "failed"),
        ("dead_letter", "dead-lettered"),
        ("parked", "parked"),
        ("action", "requeue"),
        ("dead_letter", "dead-lettered"),
        ("parked", "parked"),
    ], kinds
    assert next(s.entry_id for s in trace.steps if s.kind == "parked") == first.entry_id
    assert all(s.detail == f"rejected in {flow.work}" for s in trace.steps if not s.exact)
    action = next(s for s in trace.steps if s.kind == "action")
    assert action.operator == "alice" and "requeued 1" in action.detail and action.after == ()
    assert [e.state for e in trace.entries] == [EntryState.REQUEUED, EntryState.PARKED]
    second = await store.get(flow.dlq, trace.entries[1].entry_id)
    assert second is not None and second.record.headers.get(ACTION_ID_HEADER) == action_id
    assert len(ids) == 3 and all(e.entry_id in ids for e in trace.entries)

    # Without the payment record (expired, or switched off) the workbench's part remains.
    await redis_client.delete(events.key("pay_9"))
    trace = await trace_payment(redis_client, profile, "pay_9")
    assert trace.found and not trace.events_recorded
    assert [s.kind for s in trace.steps][:2] == ["dead_letter", "parked"]
    unknown = await trace_payment(redis_client, profile, "pay_404")
    assert not unknown.found and unknown.steps == () and unknown.entries == ()


def _dead_letter(payment_id: str | None, n: int) -> MessageRecord:
    body = orjson.dumps({"payment_id": payment_id} if payment_id else {"n": n})
    death = {"count": 1, "reason": "rejected", "queue": "payments.process", "exchange": "p"}
    return MessageRecord(body, {"message_id": f"m-{n}"}, headers={"x-death": [death]})


async def test_entries_parked_before_the_payment_index_existed_are_traced_too(
    amqp_url: str, redis_url: str, prefix: str, redis_client: aioredis.Redis
) -> None:
    dlq = f"{prefix}.old.dlq"
    profile = make_profile(amqp_url, redis_url, prefix, [dlq])
    store = ParkingStore(redis_client, prefix)
    parked = [
        await store.park(dlq, _dead_letter(payment_id, n), FieldPaths())
        for n, payment_id in enumerate(["pay_21", "pay_22", None, "pay_21"])
    ]
    # What a version without the per-payment index left: no pid, no index.
    keys = store.keys(dlq)
    for result in parked:
        await redis_client.hdel(store.entry_key(dlq, result.entry_id), "pid")
    await redis_client.delete(keys.payments, keys.payments_complete)

    trace = await trace_payment(redis_client, profile, "pay_21")
    assert [e.entry_id for e in trace.entries] == [parked[0].entry_id, parked[3].entry_id]
    assert [s.what for s in trace.steps].count("parked") == 2

    # The index now holds them, once, and says so; a second pass adds nothing.
    assert await redis_client.hget(keys.payments, "pay_21") == (
        f"{parked[0].entry_id} {parked[3].entry_id}".encode()
    )
    assert await redis_client.exists(keys.payments_complete)
    assert await store.index_payments(dlq) == 0
    fresh = ParkingStore(redis_client, prefix)
    assert await fresh.entries_for_payment("pay_22", [dlq]) == [(dlq, parked[1].entry_id)]
    # Deleting an entry keeps the index right (the delete script reads the pid written).
    await store.delete_entries(dlq, [parked[0].entry_id])
    assert await fresh.entries_for_payment("pay_21", [dlq]) == [(dlq, parked[3].entry_id)]


async def test_two_readers_indexing_old_entries_at_once_add_each_once(
    prefix: str, redis_client: aioredis.Redis
) -> None:
    dlq = f"{prefix}.old.dlq"
    store = ParkingStore(redis_client, prefix)
    parked = [
        await store.park(dlq, _dead_letter(f"pay_{n % 7}", n), FieldPaths()) for n in range(60)
    ]
    for result in parked:
        await redis_client.hdel(store.entry_key(dlq, result.entry_id), "pid")
    await redis_client.delete(store.keys(dlq).payments)

    added = await asyncio.gather(store.index_payments(dlq), store.index_payments(dlq))
    assert sum(added) == 60
    for n in range(7):
        ids = (await redis_client.hget(store.keys(dlq).payments, f"pay_{n}") or b"").split()
        assert sorted(ids) == sorted(r.entry_id.encode() for r in parked[n::7])
