"""A dead letter the application republished itself, the way Spring AMQP's
``RepublishMessageRecoverer`` does (written here with plain pika, not our code): no
``x-death``, the cause in ``x-exception-message`` and where it came from in
``x-original-exchange`` / ``x-original-routingKey``. It is parked, and a requeue sends
it back through that exchange with that routing key, its bytes as stored (only our
``payops-`` headers added). Real RabbitMQ and Redis."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from services.workbench.wire import decode_properties
from tests.helpers.action_kit import (
    Broker,
    entry_ids,
    make_profile,
    park_all,
    payment,
    publish_with_pika,
    requeue_entries,
)
from tests.helpers.wire_kit import comparable

pytestmark = pytest.mark.integration

ROUTING_KEY = "payment.process"
OURS = ("payops-",)


def header_keys(raw: bytes) -> list[str]:
    return [
        f.key for f in decode_properties(raw).header_fields if f.key and not f.key.startswith(OURS)
    ]


async def spring_dead_letter(broker: Broker, store: ParkingStore) -> tuple[str, str, str, str]:
    """``payments`` (topic) -> ``work`` (``payment.#``) and ``other`` (``refund.#``); one
    Spring-style dead letter of a ``payment.process`` message parked from ``dlq``.
    Returns (exchange, work, other, dlq)."""
    payments = await broker.exchange("payments", aio_pika.ExchangeType.TOPIC)
    work = await broker.queue("work")
    await work.bind(payments, "payment.#")
    other = await broker.queue("other")
    await other.bind(payments, "refund.#")
    dlq = await broker.queue("dlq")
    headers = {
        "tenant": "eu-1",
        "retries": 3,
        "x-exception-message": "Listener failed: schema validation failed: amount missing",
        "x-exception-stacktrace": "org.springframework.amqp.AmqpRejectAndDontRequeueException\n"
        "\tat com.example.PaymentListener.handle(PaymentListener.java:42)",
        "x-original-exchange": payments.name,
        "x-original-routingKey": ROUTING_KEY,
    }
    await asyncio.to_thread(
        publish_with_pika,
        broker.amqp_url,
        "",
        dlq.name,  # the recoverer publishes to its error exchange / the DLQ itself
        [payment(1)],
        headers,
        content_type="application/json",
        delivery_mode=2,
        priority=4,
        message_id="m-spring-1",
        correlation_id="corr-7",
        timestamp=1_700_000_000,
    )
    await broker.wait_depth(dlq.name, 1)
    assert await park_all(broker.connection, store, dlq.name) == 1
    return payments.name, work.name, other.name, dlq.name


async def test_a_spring_dead_letter_is_requeued_through_its_original_exchange_unchanged(
    broker: Broker, store: ParkingStore, amqp_url: str, redis_url: str, prefix: str
) -> None:
    exchange, work, other, dlq = await spring_dead_letter(broker, store)
    (entry_id,) = await entry_ids(store, dlq)
    parked = await store.get(dlq, entry_id)
    assert parked is not None and parked.record.wire is not None
    summary = parked.summary
    assert (summary.origin_queue, summary.origin_exchange) == ("", exchange)
    assert summary.routing_key == ROUTING_KEY
    assert "schema validation failed" in summary.cause

    report = await requeue_entries(store, amqp_url, redis_url, prefix, dlq, [entry_id])
    assert report.succeeded == 1, report.outcomes
    assert f"exchange '{exchange}' (routing key '{ROUTING_KEY}')" in report.outcomes[0].detail

    (message,) = await broker.drain(work)
    assert await broker.depth(other) == 0  # routed by its original key, nowhere else
    assert (message.exchange, message.routing_key) == (exchange, ROUTING_KEY)
    assert message.body == parked.record.body
    assert message.wire is not None
    # Every property and header as stored, the Spring x- headers included, in order.
    assert comparable(message.wire, OURS) == comparable(parked.record.wire, OURS)
    assert header_keys(message.wire) == header_keys(parked.record.wire)
    assert message.headers["payops-action"] == "requeue"


async def test_a_spring_dead_letter_is_retried_at_once_but_a_delayed_retry_is_refused(
    broker: Broker, store: ParkingStore, amqp_url: str, redis_url: str, prefix: str
) -> None:
    _, work, _, dlq = await spring_dead_letter(broker, store)
    (entry_id,) = await entry_ids(store, dlq)
    publisher = ActionPublisher(amqp_url)
    try:
        service = ActionService(
            store, publisher, make_profile(amqp_url, redis_url, prefix, [dlq]), "alice", "h"
        )
        delayed = await service.retry(ActionTarget.for_entries([entry_id]), delay_s=30)
        assert delayed.failed == 1
        assert "a delayed retry needs the queue the message died in" in delayed.outcomes[0].detail
        entry = await store.get(dlq, entry_id)
        assert entry is not None and str(entry.summary.state) == "parked"  # untouched

        retried = await service.retry(ActionTarget.for_entries([entry_id]))
        assert retried.succeeded == 1, retried.outcomes
    finally:
        await publisher.close()
    (message,) = await broker.drain(work)
    assert message.headers["payops-attempt"] == 1
