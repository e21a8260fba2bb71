"""The demo payment flow simulator, against the real RabbitMQ, one prefix per test."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from services.demo.payments import MERCHANTS, PaymentGenerator, is_operator_retry, status_event
from services.demo.simulator import SimulationOptions, SimulationStats, run_simulation
from services.demo.topology import (
    DEFAULT_FRAUDCHECK_TTL_MS,
    DemoTopology,
    declare_demo_topology,
    delete_demo_topology,
)

EVENT_FIELDS = {"payment_id", "merchant", "amount", "currency", "status", "created_at", "event_at"}
FAILURE_REASONS = {
    "acquirer timeout",
    "schema validation failed",
    "risk engine unavailable",
    "acquirer outage",
    "settlement retries exhausted",
}


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


# -- fixtures -------------------------------------------------------------------


class Broker:
    """A connection for the test's own look at the queues, and the cleanup."""

    def __init__(self, amqp_url: str, connection: AbstractConnection, prefix: str) -> None:
        self.url = amqp_url
        self.connection = connection
        self.prefix = prefix
        self.topology = DemoTopology.for_prefix(prefix)
        self.extra_queues: list[str] = []

    async def channel(self) -> AbstractChannel:
        return await self.connection.channel()

    async def declare(self, **kwargs: Any) -> DemoTopology:
        channel = await self.channel()
        topology = await declare_demo_topology(channel, self.prefix, **kwargs)
        await channel.close()
        return topology

    async def tap_events(self, fraudcheck_ttl_ms: int = DEFAULT_FRAUDCHECK_TTL_MS) -> str:
        """A queue of our own bound to the events exchange with '#' (as the console does)."""
        await self.declare(fraudcheck_ttl_ms=fraudcheck_ttl_ms)
        channel = await self.channel()
        name = f"{self.prefix}test.events"
        queue = await channel.declare_queue(name, durable=False)
        await queue.bind(self.topology.events_exchange, "#")
        self.extra_queues.append(name)
        await channel.close()
        return name

    async def depth(self, queue: str) -> int:
        channel = await self.channel()
        declared = await channel.declare_queue(queue, passive=True)
        await channel.close()
        return declared.declaration_result.message_count or 0

    async def take_all(self, queue: str, expected: int, timeout: float = 10.0) -> list[Any]:
        """Wait until ``queue`` holds ``expected`` messages (dead-lettering is asynchronous),
        then take them all (and make sure no more arrive)."""
        deadline = time.monotonic() + timeout
        while await self.depth(queue) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        channel = await self.channel()
        declared = await channel.get_queue(queue)
        messages: list[AbstractIncomingMessage] = []
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        await channel.close()
        return messages


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    connection = await aio_pika.connect(amqp_url)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    try:
        yield (helper := Broker(amqp_url, connection, prefix))
    finally:
        channel = await connection.channel()
        for name in helper.extra_queues:
            await channel.queue_delete(name)
        await delete_demo_topology(channel, prefix)
        await connection.close()


def events_by_status(messages: list[AbstractIncomingMessage]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        event = orjson.loads(message.body)
        assert message.routing_key == f"payment.{event['status']}"
        grouped.setdefault(event["status"], []).append(event)
    return grouped


def counts(grouped: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {status: len(events) for status, events in grouped.items()}


def x_death(message: AbstractIncomingMessage) -> dict[str, Any]:
    deaths = message.headers["x-death"]
    assert isinstance(deaths, list)
    assert deaths
    first = deaths[0]
    assert isinstance(first, dict)
    return first


# -- pure parts -------------------------------------------------------------------


def test_payments_are_realistic_and_reproducible() -> None:
    generator_a, generator_b = PaymentGenerator(7), PaymentGenerator(7)
    a = [generator_a.next_payment(1_700_000_000_000) for _ in range(3000)]
    b = [generator_b.next_payment(1_700_000_000_000) for _ in range(3000)]
    other = [PaymentGenerator(8).next_payment(1_700_000_000_000) for _ in range(10)]

    assert a == b
    assert [p.payment_id for p in other] != [p.payment_id for p in a[:10]]
    assert len({p.payment_id for p in a}) == len(a)
    for payment in a:
        assert re.fullmatch(r"pay_[0-9a-f]{16}", payment.payment_id)
        assert re.fullmatch(r"\d+\.\d{2}", payment.amount)
        assert float(payment.amount) >= 0.5
        assert payment.currency in {"EUR", "USD", "GBP", "CHF", "SEK", "DKK", "PLN"}
        assert luhn_valid(payment.card_number)
        assert re.fullmatch(r"(0[1-9]|1[0-2])/\d{2}", payment.card_expiry)
        assert len(payment.card_cvv) == (4 if payment.card_number.startswith("3") else 3)
        body = payment.body()
        assert body["card"] == {
            "number": payment.card_number,
            "expiry": payment.card_expiry,
            "cvv": payment.card_cvv,
        }
        assert body["created_at"] == 1_700_000_000_000
    popularity = Counter(p.merchant for p in a).most_common()
    assert len(popularity) == len(MERCHANTS) >= 10
    assert popularity[0][1] > 8 * popularity[-1][1]  # skewed, not uniform


def test_status_events_never_carry_the_card() -> None:
    payment = PaymentGenerator(1).next_payment(1_700_000_000_000).body()
    event = status_event(payment, "failed", 1_700_000_000_123, reason="acquirer timeout")

    assert set(event) == EVENT_FIELDS | {"reason"}
    assert "card" not in event
    assert payment["card"]["number"] not in orjson.dumps(event).decode()
    assert event["created_at"] == 1_700_000_000_000
    assert "reason" not in status_event(payment, "captured", 1)


def test_operator_retries_are_recognised_by_their_headers() -> None:
    assert is_operator_retry({"x-death": [{"reason": "rejected"}]})
    assert is_operator_retry({"payops-action-id": "act_1"})
    assert is_operator_retry({"payops-attempt": 2})
    assert not is_operator_retry({"trace_id": "abc", "x-delivery-count": 2})
    assert not is_operator_retry(None)


def test_options_are_validated_and_the_incident_has_a_window() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        SimulationOptions(failure_rate=1.5)
    with pytest.raises(ValueError, match="rate"):
        SimulationOptions(rate=-1)
    with pytest.raises(ValueError, match="duration_s"):
        SimulationOptions(duration_s=float("nan"))

    options = SimulationOptions(incident=True, incident_after_s=30, incident_duration_s=60)
    assert not options.incident_active_at(29.9)
    assert options.incident_active_at(30.0)
    assert options.incident_active_at(89.9)
    assert not options.incident_active_at(90.0)
    assert not SimulationOptions(incident=False).incident_active_at(45)


# -- against the broker -------------------------------------------------------------


async def test_a_short_run_accounts_for_every_payment(broker: Broker) -> None:
    events_queue = await broker.tap_events()
    progress: list[SimulationStats] = []
    options = SimulationOptions(
        rate=200,
        duration_s=2.0,
        failure_rate=0.2,
        seed=1234,
        prefix=broker.prefix,
        settlement_stuck_rate=0.0,
    )

    stats = await run_simulation(broker.url, options, on_progress=progress.append)

    # The gateway published rate x duration payments, and each one has an outcome.
    assert stats.published == 400
    assert stats.in_flight == 0
    assert stats.seed == 1234
    assert progress[-1] == stats
    assert len(progress) >= 2
    terminal = sum(stats.by_status.get(s, 0) for s in ("captured", "declined", "failed"))
    assert terminal == stats.published
    assert stats.by_status["requested"] == stats.published
    assert 0.1 < stats.by_status["failed"] / stats.published < 0.3
    assert stats.delivery_limit_exceeded == 0 and stats.expired == 0
    assert stats.settlement_retries > 0  # the acquirer was flaky now and then

    # Status events: the documented fields, no card, one per status change.
    event_messages = await broker.take_all(events_queue, sum(stats.by_status.values()))
    grouped = events_by_status(event_messages)
    assert counts(grouped) == dict(stats.by_status)
    for message in event_messages:
        assert message.content_type == "application/json"
        event = orjson.loads(message.body)
        assert EVENT_FIELDS <= set(event) <= EVENT_FIELDS | {"reason"}
        assert "card" not in event
        assert isinstance(event["created_at"], int)
        assert event["event_at"] >= event["created_at"] > 1_600_000_000_000
        assert re.fullmatch(r"\d+\.\d{2}", event["amount"])
    assert {e["reason"] for e in grouped["failed"]} <= FAILURE_REASONS
    assert all(e.get("reason") for e in grouped["declined"])
    assert len({e["payment_id"] for e in grouped["requested"]}) == stats.published

    # The DLQ holds exactly the rejected payments, dead-lettered by the broker.
    dead = await broker.take_all(broker.topology.dead_letter_queue, stats.dead_lettered_total)
    assert len(dead) == stats.dead_lettered == stats.by_status["failed"]
    failed_ids = {e["payment_id"] for e in grouped["failed"]}
    for message in dead:
        body = orjson.loads(message.body)
        death = x_death(message)
        assert death["reason"] == "rejected"
        assert death["queue"] == f"{broker.prefix}payments.process"
        assert death["exchange"] == f"{broker.prefix}payments"
        assert death["routing-keys"] == [f"payment.request.{body['merchant']}"]
        assert message.headers["x-first-death-reason"] == "rejected"
        assert message.routing_key == f"payment.request.{body['merchant']}"
        # The original request, whole: properties and a card for masking to find.
        assert message.message_id == body["payment_id"]
        assert message.app_id == "payops-simulator"
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.timestamp is not None
        assert re.fullmatch(r"[0-9a-f]{32}", str(message.headers["trace_id"]))
        assert luhn_valid(body["card"]["number"])
        assert set(body["card"]) == {"number", "expiry", "cvv"}
    assert {orjson.loads(m.body)["payment_id"] for m in dead} == failed_ids

    # Nothing is left behind in the flow's queues.
    for queue in ("process_queue", "settlement_queue", "fraudcheck_queue"):
        assert await broker.depth(getattr(broker.topology, queue)) == 0


async def test_the_same_seed_gives_the_same_payments_and_outcomes(
    amqp_url: str, broker: Broker
) -> None:
    async def one_run() -> tuple[SimulationStats, list[dict[str, Any]], set[str]]:
        events_queue = await broker.tap_events()
        options = SimulationOptions(
            rate=100, duration_s=1.0, failure_rate=0.1, seed=99, prefix=broker.prefix
        )
        stats = await run_simulation(amqp_url, options)
        grouped = events_by_status(
            await broker.take_all(events_queue, sum(stats.by_status.values()))
        )
        dead = await broker.take_all(broker.topology.dead_letter_queue, stats.dead_lettered_total)
        return stats, grouped["requested"], {orjson.loads(m.body)["payment_id"] for m in dead}

    first, requested, dead_first = await one_run()
    second, _, dead_second = await one_run()

    assert first.published == second.published == 100
    assert dict(first.by_status) == dict(second.by_status)
    assert dead_first == dead_second
    assert len(dead_first) == first.dead_lettered_total
    # Paced on a schedule over the second, not sent in one burst.
    created = sorted(e["created_at"] for e in requested)
    assert 850 <= created[-1] - created[0] <= 1300


async def test_a_requeued_or_retried_payment_goes_through_to_captured(broker: Broker) -> None:
    events_queue = await broker.tap_events()
    topology = broker.topology
    channel = await broker.channel()
    died_at = datetime.now(UTC).replace(microsecond=0)
    retries = {
        "pay_000000000000000a": {
            "x-death": [
                {
                    "count": 1,
                    "reason": "rejected",
                    "queue": topology.process_queue,
                    "time": died_at,
                    "exchange": topology.payments_exchange,
                    "routing-keys": ["payment.request.hansa-grocer"],
                }
            ],
            "x-first-death-exchange": topology.payments_exchange,
            "x-first-death-queue": topology.process_queue,
            "x-first-death-reason": "rejected",
        },
        "pay_000000000000000b": {"payops-action-id": "act_42"},
        "pay_000000000000000c": {"payops-attempt": 2},
    }
    control = "pay_000000000000000d"  # an ordinary request: it fails like everything else
    for payment_id, headers in [*retries.items(), (control, {})]:
        body = PaymentGenerator(3).next_payment(1_700_000_000_000).body()
        body["payment_id"] = payment_id
        await channel.default_exchange.publish(
            aio_pika.Message(orjson.dumps(body), headers=headers, message_id=payment_id),
            routing_key=topology.process_queue,  # a requeue: to the queue by name
        )
    garbage = "msg-not-a-payment"  # not JSON at all: a schema failure, dead-lettered
    await channel.default_exchange.publish(
        aio_pika.Message(b"\x00 not json", message_id=garbage), routing_key=topology.process_queue
    )
    # Everything would fail, at every stage, but for the operator's retries.
    options = SimulationOptions(
        rate=0,
        duration_s=0.5,
        failure_rate=1.0,
        review_rate=1.0,
        settlement_stuck_rate=1.0,
        prefix=broker.prefix,
    )

    stats = await run_simulation(broker.url, options)

    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    statuses: dict[str, list[str]] = {}
    for status, events in grouped.items():
        for event in events:
            statuses.setdefault(event["payment_id"], []).append(status)
    for payment_id in retries:
        assert sorted(statuses[payment_id]) == ["authorized", "captured"], payment_id
    assert statuses[control] == statuses[garbage] == ["failed"]
    reasons = {e["payment_id"]: e["reason"] for e in grouped["failed"]}
    assert reasons[garbage] == "schema validation failed"
    dead = await broker.take_all(topology.dead_letter_queue, 2)
    assert sorted(m.message_id for m in dead) == sorted([control, garbage])
    assert all(x_death(m)["reason"] == "rejected" for m in dead)
    assert stats.published == 0
    assert stats.dead_lettered == 2


async def test_settlement_dead_letters_by_delivery_limit_and_a_requeue_captures_it(
    broker: Broker,
) -> None:
    events_queue = await broker.tap_events()
    topology = broker.topology
    options = SimulationOptions(
        rate=20,
        duration_s=1.0,
        failure_rate=0.0,
        decline_rate=0.0,
        review_rate=0.0,
        settlement_stuck_rate=1.0,  # the acquirer never settles
        seed=5,
        prefix=broker.prefix,
    )

    stats = await run_simulation(broker.url, options)

    assert stats.published == 20
    assert stats.delivery_limit_exceeded == 20
    assert stats.settlement_retries == 3 * 20  # delivered 4 times, the 4th nack dead-letters
    assert stats.dead_lettered == 0
    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    assert {e["reason"] for e in grouped["failed"]} == {"settlement retries exhausted"}
    assert len(grouped["failed"]) == 20
    dead = await broker.take_all(topology.dead_letter_queue, 20)
    assert len(dead) == 20
    for message in dead:
        body = orjson.loads(message.body)
        death = x_death(message)
        assert death["reason"] == "delivery_limit"
        assert death["queue"] == topology.settlement_queue
        assert message.routing_key == f"payment.settle.{body['merchant']}"
        assert "card" not in body  # settlement messages carry an auth code, not the card
        assert re.fullmatch(r"[A-Z0-9]{6}", body["auth_code"])

    # An operator requeues one to the settlement queue: now it is captured.
    requeued = dead[0]
    channel = await broker.channel()
    await channel.default_exchange.publish(
        aio_pika.Message(
            requeued.body,
            headers=requeued.headers,
            message_id=requeued.message_id,
            content_type=requeued.content_type,
        ),
        routing_key=topology.settlement_queue,
    )
    again = await run_simulation(broker.url, dataclasses.replace(options, rate=0.0))

    assert again.by_status == {"captured": 1}
    assert again.delivery_limit_exceeded == 0
    captured = events_by_status(await broker.take_all(events_queue, 1))["captured"]
    assert [e["payment_id"] for e in captured] == [requeued.message_id]


async def test_the_incident_raises_failures_and_expires_fraud_checks(broker: Broker) -> None:
    events_queue = await broker.tap_events(fraudcheck_ttl_ms=500)
    topology = broker.topology
    options = SimulationOptions(
        rate=100,
        duration_s=1.5,
        failure_rate=0.02,
        incident=True,
        incident_after_s=0.0,
        incident_duration_s=60.0,
        fraudcheck_ttl_ms=500,
        settlement_stuck_rate=0.0,
        seed=11,
        prefix=broker.prefix,
    )

    stats = await run_simulation(broker.url, options)

    assert stats.incident_active
    assert stats.in_flight == 0
    assert stats.by_status["failed"] / stats.published > 0.3  # 2 % normally
    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    outages = [e for e in grouped["failed"] if e["reason"] == "acquirer outage"]
    assert len(outages) > 0.25 * stats.published
    # The risk engine is down: every payment sent for review expired.
    assert stats.expired == stats.by_status["review"] > 0
    reviewed = {e["payment_id"] for e in grouped["review"]}
    assert not reviewed & {e["payment_id"] for e in grouped.get("captured", [])}

    dead = await broker.take_all(topology.dead_letter_queue, stats.dead_lettered_total)
    reasons = Counter((x_death(m)["reason"], x_death(m)["queue"]) for m in dead)
    assert dict(reasons) == {
        ("rejected", topology.process_queue): stats.dead_lettered,
        ("expired", topology.fraudcheck_queue): stats.expired,
    }
    expired_ids = {m.message_id for m in dead if x_death(m)["reason"] == "expired"}
    assert expired_ids == reviewed
    for message in dead:
        if x_death(message)["reason"] == "expired":
            assert message.routing_key.startswith("payment.fraudcheck.")
            assert luhn_valid(orjson.loads(message.body)["card"]["number"])


async def test_after_the_incident_the_flow_recovers(broker: Broker) -> None:
    events_queue = await broker.tap_events(fraudcheck_ttl_ms=400)
    started_ms = time.time_ns() // 1_000_000
    options = SimulationOptions(
        rate=100,
        duration_s=2.0,
        failure_rate=0.0,
        incident=True,
        incident_after_s=0.0,
        incident_duration_s=0.5,
        fraudcheck_ttl_ms=400,
        seed=12,
        prefix=broker.prefix,
    )

    stats = await run_simulation(broker.url, options)

    assert not stats.incident_active
    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    outages = [e for e in grouped["failed"] if e["reason"] == "acquirer outage"]
    assert outages
    # Outage failures only for payments created in the window (plus set-up time) ...
    assert max(e["created_at"] for e in outages) < started_ms + 1000
    # ... and later payments go through, reviews included: the risk engine is back.
    late = {e["payment_id"] for e in grouped["requested"] if e["created_at"] > started_ms + 1200}
    assert late
    late_outcomes = Counter(
        status
        for status in ("captured", "declined", "failed")
        for e in grouped.get(status, [])
        if e["payment_id"] in late
    )
    assert late_outcomes["failed"] <= stats.delivery_limit_exceeded
    assert late_outcomes["captured"] > 0.8 * len(late)
    late_reviews = {e["payment_id"] for e in grouped["review"]} & late
    assert late_reviews
    captured = {e["payment_id"] for e in grouped["captured"]}
    declined = {e["payment_id"] for e in grouped.get("declined", [])}
    assert late_reviews <= captured | declined


async def test_cancelling_a_run_closes_everything_cleanly(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    progress: list[SimulationStats] = []
    options = SimulationOptions(rate=50, prefix=broker.prefix, seed=1)  # runs until cancelled
    caplog.set_level(logging.WARNING)

    before = asyncio.all_tasks()  # the test's own connection has tasks too
    task = asyncio.create_task(run_simulation(broker.url, options, on_progress=progress.append))
    await asyncio.sleep(2.4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await asyncio.sleep(0.1)
    assert asyncio.all_tasks() - before == set()
    gc.collect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert len(progress) >= 2
    assert 0 < progress[0].published < progress[1].published <= 125
    assert progress[1].elapsed_s == pytest.approx(2.0, abs=0.3)
    # The workers' consumers are gone (the connection was closed).
    channel = await broker.channel()
    for name in broker.topology.queues:
        declared = await channel.declare_queue(name, passive=True)
        assert declared.declaration_result.consumer_count == 0, name
