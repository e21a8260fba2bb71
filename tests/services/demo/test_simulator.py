"""The demo payment flow simulator, against the real RabbitMQ and Redis, one prefix per test."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
import pytest

from services.demo.payments import MERCHANTS, PaymentGenerator, is_operator_retry, status_event
from services.demo.simulator import SimulationOptions, SimulationStats, run_simulation
from tests.services.demo.conftest import (
    Broker,
    Simulate,
    cause_kind,
    counts,
    events_by_status,
    recovered,
    x_death,
)

EVENT_FIELDS = {"payment_id", "merchant", "amount", "currency", "status", "created_at", "event_at"}


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


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


async def test_a_short_run_accounts_for_every_payment(broker: Broker, simulate: Simulate) -> None:
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

    stats = await simulate(options, on_progress=progress.append)

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
    assert stats.duplicates == 0 and "duplicate" not in stats.by_status

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
    kinds = Counter(cause_kind(e["reason"]) for e in grouped["failed"])
    assert set(kinds) == {"acquirer timeout", "schema validation failed", "risk engine unavailable"}
    assert all(e.get("reason") for e in grouped["declined"])
    assert len({e["payment_id"] for e in grouped["requested"]}) == stats.published

    # The DLQ holds exactly the failed payments: rejected ones dead-lettered by the
    # broker, schema failures put there by the Spring-style recoverer.
    dead = await broker.take_all(broker.topology.dead_letter_queue, stats.dead_lettered_total)
    assert len(dead) == stats.dead_lettered + stats.republished == stats.by_status["failed"]
    assert stats.republished == kinds["schema validation failed"] > 0
    cause_of = {e["payment_id"]: e["reason"] for e in grouped["failed"]}
    for message in dead:
        body = orjson.loads(message.body)
        cause = cause_of[body["payment_id"]]
        if recovered(message):
            assert cause_kind(cause) == "schema validation failed"
            assert "x-death" not in message.headers
            assert message.headers["x-exception-message"] == cause
            assert message.headers["x-original-exchange"] == f"{broker.prefix}payments"
            assert message.routing_key == f"{broker.prefix}payments.dlq"
        else:
            assert cause_kind(cause) != "schema validation failed"
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
    assert {orjson.loads(m.body)["payment_id"] for m in dead} == set(cause_of)

    # Nothing is left behind in the flow's queues.
    for queue in ("process_queue", "settlement_queue", "fraudcheck_queue"):
        assert await broker.depth(getattr(broker.topology, queue)) == 0


async def test_the_same_seed_gives_the_same_payments_and_outcomes(
    broker: Broker, simulate: Simulate
) -> None:
    async def one_run(
        ledger: str,
    ) -> tuple[SimulationStats, dict[str, list[dict[str, Any]]], set[str]]:
        events_queue = await broker.tap_events()
        options = SimulationOptions(
            rate=100, duration_s=1.0, failure_rate=0.1, seed=99, prefix=broker.prefix
        )
        stats = await simulate(options, ledger=ledger)
        grouped = events_by_status(
            await broker.take_all(events_queue, sum(stats.by_status.values()))
        )
        dead = await broker.take_all(broker.topology.dead_letter_queue, stats.dead_lettered_total)
        return stats, grouped, {orjson.loads(m.body)["payment_id"] for m in dead}

    # Two runs, each with a fresh record of captured payments.
    first, grouped, dead_first = await one_run("first")
    second, grouped_second, dead_second = await one_run("second")

    assert first.published == second.published == 100
    assert dict(first.by_status) == dict(second.by_status)
    assert dead_first == dead_second
    assert len(dead_first) == first.dead_lettered_total
    failures = [(e["payment_id"], e["reason"]) for e in grouped["failed"]]
    assert sorted(failures) == sorted(
        (e["payment_id"], e["reason"]) for e in grouped_second["failed"]
    )
    # Paced on a schedule over the second, not sent in one burst.
    created = sorted(e["created_at"] for e in grouped["requested"])
    assert created[-1] - created[0] >= 850  # (a loaded machine only stretches it)

    # The same payment ids again, with the first run's record: what it captured is
    # now a duplicate, everything else has the same outcome as before.
    third, grouped_third, dead_third = await one_run("first")
    captured = {e["payment_id"] for e in grouped["captured"]}
    assert third.duplicates == len(captured) == first.by_status["captured"]
    assert {e["payment_id"] for e in grouped_third["duplicate"]} == captured
    assert "captured" not in third.by_status
    # Authorized again: only the payments whose settlement failed (not captured).
    uncaptured = first.by_status["authorized"] - first.by_status["captured"]
    assert third.by_status.get("authorized", 0) == uncaptured
    assert third.by_status["failed"] == first.by_status["failed"]
    assert third.by_status.get("declined") == first.by_status.get("declined")
    assert dead_third == dead_first


async def test_a_requeued_or_retried_payment_goes_through_to_captured(
    broker: Broker, simulate: Simulate
) -> None:
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
        seed=3,
        prefix=broker.prefix,
    )

    stats = await simulate(options)

    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    statuses: dict[str, list[str]] = {}
    for status, events in grouped.items():
        for event in events:
            statuses.setdefault(event["payment_id"], []).append(status)
    for payment_id in retries:
        assert sorted(statuses[payment_id]) == ["authorized", "captured"], payment_id
    assert statuses[control] == statuses[garbage] == ["failed"]
    reasons = {e["payment_id"]: e["reason"] for e in grouped["failed"]}
    assert reasons[garbage] == "schema validation failed: body is not a JSON payment"
    # Seed 3 makes the control a schema failure: the recoverer dead-letters it, with its
    # cause; the unreadable body is rejected, and the broker dead-letters it.
    cause = "schema validation failed: amount 230.432 has more than 2 decimals"
    assert reasons[control] == cause
    dead = {m.message_id: m for m in await broker.take_all(topology.dead_letter_queue, 2)}
    assert sorted(dead) == sorted([control, garbage])
    assert x_death(dead[garbage])["reason"] == "rejected"
    assert recovered(dead[control]) and "x-death" not in dead[control].headers
    assert dead[control].headers["x-exception-message"] == cause
    assert stats.published == 0
    assert stats.dead_lettered == 1 and stats.republished == 1
    assert stats.by_status["captured"] == len(retries) and stats.duplicates == 0


async def test_settlement_dead_letters_by_delivery_limit_and_a_requeue_captures_it(
    broker: Broker, simulate: Simulate
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

    stats = await simulate(options)

    assert stats.published == 20
    assert stats.delivery_limit_exceeded == 20
    assert stats.settlement_retries == 3 * 20  # delivered 4 times, the 4th nack dead-letters
    assert stats.dead_lettered == 0
    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    assert {cause_kind(e["reason"]) for e in grouped["failed"]} == {"settlement retries exhausted"}
    assert len({e["reason"] for e in grouped["failed"]}) > 1  # the last acquirer varies
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
    again = await simulate(dataclasses.replace(options, rate=0.0))

    assert again.by_status == {"captured": 1}
    assert again.delivery_limit_exceeded == 0
    captured = events_by_status(await broker.take_all(events_queue, 1))["captured"]
    assert [e["payment_id"] for e in captured] == [requeued.message_id]


async def test_the_incident_raises_failures_and_expires_fraud_checks(
    broker: Broker, simulate: Simulate
) -> None:
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

    stats = await simulate(options)

    assert stats.incident_active
    assert stats.in_flight == 0
    assert stats.by_status["failed"] / stats.published > 0.3  # 2 % normally
    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    # The incident's failures: the acquirer refuses or times out, the risk engine is down.
    kinds = Counter(cause_kind(e["reason"]) for e in grouped["failed"])
    assert kinds.most_common(1)[0][0] == "acquirer outage"
    assert {"acquirer outage", "acquirer timeout", "risk engine unavailable"} <= set(kinds)
    assert kinds["acquirer outage"] > 0.25 * stats.published
    # The risk engine is down: every payment sent for review expired.
    assert stats.expired == stats.by_status["review"] > 0
    reviewed = {e["payment_id"] for e in grouped["review"]}
    assert not reviewed & {e["payment_id"] for e in grouped.get("captured", [])}

    dead = await broker.take_all(topology.dead_letter_queue, stats.dead_lettered_total)
    reasons = Counter(
        ("recovered", "") if recovered(m) else (x_death(m)["reason"], x_death(m)["queue"])
        for m in dead
    )
    assert dict(reasons) == {
        ("rejected", topology.process_queue): stats.dead_lettered,
        ("expired", topology.fraudcheck_queue): stats.expired,
    } | ({("recovered", ""): stats.republished} if stats.republished else {})
    expired = [m for m in dead if not recovered(m) and x_death(m)["reason"] == "expired"]
    assert {m.message_id for m in expired} == reviewed
    for message in expired:
        assert message.routing_key.startswith("payment.fraudcheck.")
        assert luhn_valid(orjson.loads(message.body)["card"]["number"])


async def test_after_the_incident_the_flow_recovers(broker: Broker, simulate: Simulate) -> None:
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

    stats = await simulate(options)

    assert not stats.incident_active
    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    outages = [e for e in grouped["failed"] if cause_kind(e["reason"]) == "acquirer outage"]
    assert outages
    # The incident's failures only for payments created in the window (plus set-up time) ...
    incident_failures = [
        e for e in grouped["failed"] if cause_kind(e["reason"]) != "settlement retries exhausted"
    ]
    assert max(e["created_at"] for e in incident_failures) < started_ms + 1000
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
    # Told once a second: not before one, then two seconds in (the cancel bounds it above).
    assert progress[0].elapsed_s >= 0.99 and progress[1].elapsed_s >= 1.99
    # The workers' consumers are gone (the connection was closed).
    channel = await broker.channel()
    for name in broker.topology.queues:
        declared = await channel.declare_queue(name, passive=True)
        assert declared.declaration_result.consumer_count == 0, name
