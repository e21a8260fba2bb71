"""Causes and failure groups with the real RabbitMQ and Redis: a Spring-style dead letter,
the flow's failure events (before and after parking), exact group counts, and the
``new_failure_group`` alert recorded once by several parkers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest
import redis.asyncio as aioredis

from app.flow_causes import flow_failure_lookup
from services.alerts.log import AlertLog
from services.alerts.new_groups import group_digest
from services.alerts.rules import NewFailureGroupRule
from services.config import Profile
from services.flow.payment_events import PaymentEvent, PaymentEventStore
from services.workbench.failure_groups import failure_group_stats
from services.workbench.index import EntryIndex
from services.workbench.model import EntrySummary
from services.workbench.park_runner import ParkingRunner
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import (
    Broker,
    DeadLetterFlow,
    make_profile,
    payment,
    publish_with_pika,
)

pytestmark = pytest.mark.integration

SPRING_HEADERS = {
    "x-exception-message": "Listener failed: acquirer timeout after 3012 ms on acq-7",
    "x-exception-stacktrace": "org.springframework.amqp.AmqpRejectAndDontRequeueException: x\n"
    "\tat com.example.Worker.handle(Worker.java:42)",
    "x-original-exchange": "payments",
}


@pytest.fixture
async def flow(broker: Broker) -> DeadLetterFlow:
    flow = DeadLetterFlow(broker, "rejected")
    await flow.declare()
    return flow


def _profile(amqp_url: str, redis_url: str, prefix: str, dlq: str, **kw: object) -> Profile:
    return make_profile(amqp_url, redis_url, prefix, [dlq], **kw)  # type: ignore[arg-type]


async def _park_once(profile: Profile, store: ParkingStore, dlq: str) -> None:
    runner = ParkingRunner(
        profile, store, [dlq], once=True, flow_failures=flow_failure_lookup(store.redis, profile)
    )
    results = await runner.run()
    assert not [r for r in results if isinstance(r, BaseException)], results


async def _rows(store: ParkingStore, dlq: str) -> list[EntrySummary]:
    rows: list[EntrySummary] = []
    async for batch in store.iter_summaries(dlq):
        rows.extend(batch)
    return rows


def _dead_letter(amqp_url: str, flow: DeadLetterFlow, bodies: Sequence[bytes], **headers: object):
    publish_with_pika(amqp_url, flow.payments, "payment.requested", bodies, dict(headers) or None)


async def test_a_spring_dead_letter_shows_its_exception_message_as_the_cause(
    broker: Broker, flow: DeadLetterFlow, store: ParkingStore, amqp_url: str, redis_url: str
) -> None:
    # A Spring AMQP style producer, written with plain pika: not our code.
    _dead_letter(amqp_url, flow, [payment(1)], **SPRING_HEADERS)
    _dead_letter(amqp_url, flow, [payment(2)])
    await flow.kill(2)
    profile = _profile(amqp_url, redis_url, store.prefix, flow.dlq)
    await _park_once(profile, store, flow.dlq)
    rows = {row.payment_id: row for row in await _rows(store, flow.dlq)}
    assert (rows["pay_1"].cause, rows["pay_1"].cause_source, rows["pay_1"].failure_group) == (
        "Listener failed: acquirer timeout after 3012 ms on acq-7",
        "message",
        "Listener failed: acquirer timeout after # ms on acq-#",
    )
    assert (rows["pay_2"].cause, rows["pay_2"].cause_source) == ("rejected", "dead_letter")


async def test_the_flows_failure_reason_is_the_cause_also_when_it_comes_after_parking(
    broker: Broker,
    flow: DeadLetterFlow,
    store: ParkingStore,
    redis_client: aioredis.Redis,
    amqp_url: str,
    redis_url: str,
) -> None:
    profile = _profile(amqp_url, redis_url, store.prefix, flow.dlq)
    events = PaymentEventStore(redis_client, store.prefix)
    await events.append(
        [
            PaymentEvent("pay_1", 1_000, "requested", key="r1"),
            PaymentEvent("pay_1", 2_000, "failed", "risk engine unavailable (HTTP 503)", key="f1"),
        ],
        lasting_statuses=profile.failure_statuses,
    )
    _dead_letter(amqp_url, flow, [payment(1), payment(2)], **SPRING_HEADERS)
    await flow.kill(2)  # in the DLQ before the parker runs (it would drain it as we count)
    runner = ParkingRunner(
        profile,
        store,
        [flow.dlq],
        flow_failures=flow_failure_lookup(store.redis, profile),
        cause_recheck_s=(0.3, 1.0, 3.0, 10.0),
    )
    task = asyncio.create_task(runner.run())
    try:
        rows: dict[str | None, EntrySummary] = {}

        async def parked() -> bool:
            rows.clear()
            rows.update((row.payment_id, row) for row in await _rows(store, flow.dlq))
            return len(rows) == 2

        await _eventually_async(parked, "both dead letters parked")
        # Known on the flow when parked: the flow's reason, not the message's.
        assert (rows["pay_1"].cause, rows["pay_1"].cause_source) == (
            "risk engine unavailable (HTTP 503)",
            "flow",
        )
        assert rows["pay_1"].failure_group == "risk engine unavailable (HTTP #)"
        assert rows["pay_2"].cause_source == "message"
        # Parked payments are kept for the retention window on the flow's record.
        assert await redis_client.ttl(events.key("pay_2")) > events.recent_s
        # The flow's failure event of pay_2 comes after its dead letter was parked.
        await events.append(
            [PaymentEvent("pay_2", 3_000, "failed", "acquirer timeout after 2999 ms on acq-2")],
            lasting_statuses=profile.failure_statuses,
        )

        async def resolved() -> bool:
            await parked()
            return rows["pay_2"].cause_source == "flow"

        await _eventually_async(resolved, "the late flow cause")
        assert rows["pay_2"].cause == "acquirer timeout after 2999 ms on acq-2"
        assert rows["pay_2"].failure_group == "acquirer timeout after # ms on acq-#"
        assert rows["pay_1"].cause == "risk engine unavailable (HTTP 503)"  # unchanged
        assert await store.entries_for_payment("pay_2") == [(flow.dlq, rows["pay_2"].entry_id)]
    finally:
        runner.request_stop()
        await task


async def test_failures_are_grouped_by_cause_with_exact_counts(
    broker: Broker,
    flow: DeadLetterFlow,
    store: ParkingStore,
    redis_client: aioredis.Redis,
    amqp_url: str,
    redis_url: str,
) -> None:
    profile = _profile(amqp_url, redis_url, store.prefix, flow.dlq)
    events = PaymentEventStore(redis_client, store.prefix)
    await events.append(
        PaymentEvent(f"pay_{n}", 1_000 + n, "failed", f"schema validation failed at line {n}")
        for n in (10, 11, 12)
    )
    for n, (ms, acq) in enumerate([(3012, 7), (2999, 2), (15, 11), (40001, 3)]):
        headers = {"x-exception-message": f"acquirer timeout after {ms} ms on acq-{acq}"}
        _dead_letter(amqp_url, flow, [payment(n, amount=f"{n + 1}.50")], **headers)
    _dead_letter(amqp_url, flow, [payment(n) for n in (10, 11, 12)])
    _dead_letter(amqp_url, flow, [payment(20, currency="USD", merchant="Globex")])
    await flow.kill(8)
    await _park_once(profile, store, flow.dlq)
    index = EntryIndex()
    rows = await _rows(store, flow.dlq)
    index.add(rows)
    assert index.group_counts("failure_group") == [
        ("acquirer timeout after # ms on acq-#", 4),
        ("schema validation failed at line #", 3),
        ("rejected", 1),
    ]
    stats = {s.group: s for s in failure_group_stats(rows)}
    timeout = stats["acquirer timeout after # ms on acq-#"]
    assert (timeout.count, timeout.open, timeout.merchants) == (4, 4, 1)
    assert timeout.amount_at_risk == {"EUR": pytest.approx(1.5 + 2.5 + 3.5 + 4.5)}
    assert timeout.sources == {"message": 4}
    assert stats["schema validation failed at line #"].sources == {"flow": 3}
    assert stats["rejected"].amount_at_risk == {"USD": pytest.approx(42.5)}


async def test_a_new_failure_group_is_recorded_once_by_several_parkers(
    broker: Broker,
    flow: DeadLetterFlow,
    store: ParkingStore,
    redis_client: aioredis.Redis,
    amqp_url: str,
    redis_url: str,
) -> None:
    profile = _profile(
        amqp_url,
        redis_url,
        store.prefix,
        flow.dlq,
        failure_group_alert=NewFailureGroupRule(min_entries=3, baseline_s=0),
    )
    for n in range(12):
        headers = {"x-exception-message": f"issuer {n} unavailable after {n * 7} ms"}
        _dead_letter(amqp_url, flow, [payment(n)], **headers)
    _dead_letter(amqp_url, flow, [payment(50), payment(51)], **{"x-exception-message": "rare"})
    await flow.kill(14)
    # Three parkers (three consoles) drain the same DLQ at once, in small batches.
    runners = [ParkingRunner(profile, store, [flow.dlq], once=True) for _ in range(3)]
    for runner in runners:
        runner.parkers[0].batch_size = 2
        runner.parkers[0].prefetch = 2
    await asyncio.gather(*(runner.run() for runner in runners))
    assert len(await _rows(store, flow.dlq)) == 14
    log = AlertLog(redis_client, store.prefix)
    recorded = await log.read_range(newest_first=False)
    group = "issuer # unavailable after # ms"
    name = f"new_failure_group:{group_digest(group)}"
    assert [(e.rule, e.kind) for e in recorded] == [(name, "firing"), (name, "resolved")]
    assert group in recorded[0].message
    # More of the same group later: not new any more.
    _dead_letter(amqp_url, flow, [payment(99)], **{"x-exception-message": "issuer 9 unavailable"})
    _dead_letter(amqp_url, flow, [payment(98)], **{"x-exception-message": "issuer 1 unavailable"})
    await flow.kill(2)
    await ParkingRunner(profile, store, [flow.dlq], once=True).run()
    assert len(await log.read_range()) == 2


async def _eventually_async(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0
) -> None:
    """Poll an async ``check`` (the store is read with await) until it is true."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)
