"""The demo's workers as idempotent consumers, and the causes of its failures, against the
real RabbitMQ and Redis."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from app.cli import exit_codes
from app.cli.main import main
from services.demo.failures import X_EXCEPTION_MESSAGE, X_EXCEPTION_STACKTRACE
from services.demo.idempotency import MemoryCaptureLedger, RedisCaptureLedger, captured_key
from services.demo.payments import Payment, PaymentGenerator
from services.demo.simulator import SimulationOptions
from tests.services.demo.conftest import (
    Broker,
    Simulate,
    cause_group,
    cause_kind,
    events_by_status,
    recovered,
    x_death,
)

EVENT_FIELDS = {"payment_id", "merchant", "amount", "currency", "status", "created_at", "event_at"}

pytestmark = pytest.mark.integration


def settle_body(payment: Payment) -> dict[str, Any]:
    """What the process worker sends for settlement: the payment without its card."""
    body = {key: value for key, value in payment.body().items() if key != "card"}
    return body | {"auth_code": "K7Q2ZP", "authorized_at": payment.created_at + 40}


async def test_a_replayed_captured_payment_is_acked_as_a_duplicate_and_not_captured_again(
    broker: Broker, simulate: Simulate, redis_client: aioredis.Redis, prefix: str
) -> None:
    events_queue = await broker.tap_events()
    topology = broker.topology
    options = SimulationOptions(
        rate=20,
        duration_s=0.5,
        failure_rate=0.0,
        decline_rate=0.0,
        review_rate=0.0,
        settlement_stuck_rate=0.0,
        seed=21,
        prefix=broker.prefix,
    )
    first = await simulate(options)
    assert first.published == first.by_status["captured"] == 10
    captured = events_by_status(await broker.take_all(events_queue, sum(first.by_status.values())))
    generator = PaymentGenerator(21)  # the run's payments, again
    payments = [generator.next_payment(1_700_000_000_000) for _ in range(10)]
    assert {p.payment_id for p in payments} == {e["payment_id"] for e in captured["captured"]}
    for payment in payments:  # each capture is recorded, bounded by the TTL
        ttl_ms = await redis_client.pttl(
            captured_key(f"{prefix}:demo", broker.prefix, payment.payment_id)
        )
        assert 0 < ttl_ms <= options.idempotency_ttl_s * 1000

    # Replays of captured payments, published with plain aio-pika: the request again
    # through the exchange, an operator's requeue of the request into the process
    # queue, the settlement message again into the settlement queue.
    replay, requeue, resettle = payments[0], payments[1], payments[2]
    # And one payment authorized but not captured yet, delivered twice to settlement.
    twice = PaymentGenerator(22).next_payment(1_700_000_000_000)
    channel = await broker.channel()
    payments_exchange = await channel.get_exchange(topology.payments_exchange)
    await payments_exchange.publish(
        aio_pika.Message(orjson.dumps(replay.body()), message_id=replay.payment_id),
        routing_key=topology.request_key(replay.merchant),
    )
    deliveries = [
        (requeue.body(), topology.process_queue, {"payops-action-id": "act_7"}),
        (settle_body(resettle), topology.settlement_queue, {}),
        (settle_body(twice), topology.settlement_queue, {}),
        (settle_body(twice), topology.settlement_queue, {}),
    ]
    for body, queue, headers in deliveries:
        await channel.default_exchange.publish(
            aio_pika.Message(orjson.dumps(body), headers=headers, message_id=body["payment_id"]),
            routing_key=queue,
        )
    await channel.close()

    again = await simulate(SimulationOptions(rate=0, duration_s=0.3, prefix=broker.prefix))

    # Four duplicates acked, one capture: the payment delivered twice was captured once.
    assert again.by_status == {"duplicate": 4, "captured": 1}
    assert again.duplicates == 4
    messages = await broker.take_all(events_queue, 5)
    events = events_by_status(messages)
    assert Counter(e["payment_id"] for e in events["duplicate"]) == {
        replay.payment_id: 1,
        requeue.payment_id: 1,
        resettle.payment_id: 1,
        twice.payment_id: 1,
    }
    assert [e["payment_id"] for e in events["captured"]] == [twice.payment_id]
    for message in messages:
        event = orjson.loads(message.body)
        assert set(event) == EVENT_FIELDS | (
            {"reason"} if event["status"] == "duplicate" else set()
        )
    by_id = {
        orjson.loads(m.body)["payment_id"]: m
        for m in messages
        if m.routing_key == "payment.duplicate"
    }
    duplicate_of_requeue = by_id[requeue.payment_id]
    assert orjson.loads(duplicate_of_requeue.body)["reason"] == "already captured"
    # The duplicate event keeps the replay mark the stages copy onto their events.
    assert duplicate_of_requeue.headers["payops-action-id"] == "act_7"
    assert "payops-action-id" not in (by_id[replay.payment_id].headers or {})
    # Acked, not dead-lettered or left behind.
    for queue in topology.queues:
        assert await broker.depth(queue) == 0, queue


async def test_the_incident_fails_payments_for_causes_that_group_and_join_their_dead_letters(
    broker: Broker, simulate: Simulate
) -> None:
    events_queue = await broker.tap_events(fraudcheck_ttl_ms=500)
    topology = broker.topology
    options = SimulationOptions(
        rate=100,
        duration_s=1.5,
        failure_rate=0.1,
        incident=True,
        incident_after_s=0.0,
        incident_duration_s=60.0,
        fraudcheck_ttl_ms=500,
        settlement_stuck_rate=0.08,
        seed=11,
        prefix=broker.prefix,
    )

    stats = await simulate(options)

    assert stats.published == 150 and stats.in_flight == 0
    grouped = events_by_status(await broker.take_all(events_queue, sum(stats.by_status.values())))
    failed = grouped["failed"]
    # Grouped by cause (numbers and ids blanked): exact counts for seed 11.
    groups = Counter(cause_group(e["reason"]) for e in failed)
    assert dict(groups) == {
        "acquirer outage: acq-# refused the connection (#.#.#.#:#)": 48,
        "acquirer timeout after # ms on acq-#": 14,
        "risk engine unavailable: HTTP # from risk-# after # ms": 7,
        "schema validation failed: amount #.# has more than # decimals": 2,
        "settlement retries exhausted after # attempts, last on acq-#": 4,
    }
    assert len(failed) == stats.by_status["failed"] == 75
    # Within a group the causes differ in their numbers and ids.
    for group in groups:
        raw = {e["reason"] for e in failed if cause_group(e["reason"]) == group}
        assert len(raw) > 1, group

    # Every failure event's payment id names its dead letter (fields.payment_id).
    dead = await broker.take_all(topology.dead_letter_queue, stats.dead_lettered_total)
    letters = {orjson.loads(m.body)["payment_id"]: m for m in dead}
    assert len(letters) == len(dead)
    cause_of = {e["payment_id"]: e["reason"] for e in failed}
    assert set(cause_of) <= set(letters)
    expired = set(letters) - set(cause_of)  # the fraud checks: no failure event
    assert {x_death(letters[pid])["reason"] for pid in expired} == {"expired"}
    assert len(expired) == stats.expired
    kinds_of_letters: Counter[tuple[str, str]] = Counter()
    for payment_id, cause in cause_of.items():
        letter = letters[payment_id]
        kind = cause_kind(cause)
        if kind == "schema validation failed":
            # Dead-lettered as a Spring AMQP republishing recoverer does it.
            assert recovered(letter) and "x-death" not in letter.headers
            assert letter.headers[X_EXCEPTION_MESSAGE] == cause
            assert "Caused by: " in str(letter.headers[X_EXCEPTION_STACKTRACE])
            assert cause in str(letter.headers[X_EXCEPTION_STACKTRACE])
            assert letter.headers["x-original-exchange"] == topology.payments_exchange
            merchant = orjson.loads(letter.body)["merchant"]
            assert letter.headers["x-original-routingKey"] == topology.request_key(merchant)
            kinds_of_letters[kind, "x-exception-message"] += 1
        else:
            assert X_EXCEPTION_MESSAGE not in letter.headers
            kinds_of_letters[kind, x_death(letter)["reason"]] += 1
    # How each kind was dead-lettered: by the broker, or with the recoverer's header.
    assert dict(kinds_of_letters) == {
        ("acquirer outage", "rejected"): 48,
        ("acquirer timeout", "rejected"): 14,
        ("risk engine unavailable", "rejected"): 7,
        ("schema validation failed", "x-exception-message"): 2,
        ("settlement retries exhausted", "delivery_limit"): 4,
    }
    assert stats.dead_lettered == 48 + 14 + 7
    assert stats.republished == 2 and stats.delivery_limit_exceeded == 4


async def test_the_capture_record_is_bounded_and_can_be_undone(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    ledger = RedisCaptureLedger(redis_client, prefix, "flow.", ttl_s=3600)
    assert not await ledger.captured("pay_1")
    assert await ledger.record("pay_1", 1_700_000_000_000)
    assert not await ledger.record("pay_1", 1_700_000_000_500)  # the second one is a duplicate
    assert await ledger.captured("pay_1")
    key = captured_key(prefix, "flow.", "pay_1")
    assert key == f"{prefix}:demo:flow:captured:pay_1"
    assert await redis_client.get(key) == b"1700000000000"
    assert 3_500_000 < await redis_client.pttl(key) <= 3_600_000
    await ledger.forget("pay_1")
    assert not await ledger.captured("pay_1")
    assert captured_key("payops", "", "pay_1") == "payops:demo:captured:pay_1"

    memory = MemoryCaptureLedger(ttl_s=0.2)
    assert await memory.record("pay_2", 1)
    assert not await memory.record("pay_2", 2)
    assert await memory.captured("pay_2")

    deadline = time.monotonic() + 10
    while await memory.captured("pay_2"):
        assert time.monotonic() < deadline, "the capture outlived its TTL"
        await asyncio.sleep(0.02)
    assert await memory.record("pay_2", 3)  # after the TTL it is captured anew


def test_simulate_names_a_redis_it_cannot_reach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "payops.toml"
    config.write_text(
        '[profiles.a]\namqp_url = "amqp://guest:guest@127.0.0.1:5672/"\n'
        f'redis_url = "redis://127.0.0.1:{port}/0"\n'
    )

    code = main(["simulate", "--config", str(config), "--duration", "1", "--seed", "1"])

    assert code == exit_codes.UNAVAILABLE
    assert f"cannot reach Redis at redis://127.0.0.1:{port}/0" in capsys.readouterr().err
