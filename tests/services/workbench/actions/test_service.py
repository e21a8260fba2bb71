"""Requeue, retry and cancel against the real RabbitMQ and Redis: messages dead-lettered by
RabbitMQ itself, parked, then acted on exactly once."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from services.workbench.actions.publisher import ACTION_ID_HEADER, ActionPublisher
from services.workbench.actions.service import ActionRefused, ActionService, summary_line
from services.workbench.model import ATTEMPT_HEADER, EntryState
from services.workbench.query import ActionTarget, Query
from services.workbench.republish import ACTION_HEADER, DROPPED_HEADERS
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import (
    PAN,
    Broker,
    DeadLetterFlow,
    entry_ids,
    make_profile,
    park_all,
    payment,
    publish_with_pika,
)

pytestmark = pytest.mark.integration


ServiceFactory = Callable[..., ActionService]


@pytest.fixture
def make_service(
    store: ParkingStore,
    publisher: ActionPublisher,
    amqp_url: str,
    redis_url: str,
    prefix: str,
    broker: Broker,
) -> ServiceFactory:
    def make(operator: str = "alice", **profile: Any) -> ActionService:
        window = profile.pop("window", 500)
        read_only = profile.pop("read_only_flag", False)
        config = make_profile(amqp_url, redis_url, prefix, [broker.name("dlq")], **profile)
        return ActionService(
            store, publisher, config, operator, "test-host", window=window, read_only=read_only
        )

    return make


async def parked_flow(
    broker: Broker,
    store: ParkingStore,
    reason: str,
    bodies: list[bytes],
    *,
    headers: dict[str, Any] | None = None,
    with_pika: bool = True,
    **properties: Any,
) -> tuple[DeadLetterFlow, list[str]]:
    """``bodies`` published to ``payments``, dead-lettered by RabbitMQ for ``reason``,
    parked; ``other`` emptied (it got the originals) and the origin queue made plain."""
    flow = DeadLetterFlow(broker, reason)
    await flow.declare()
    to_publish = list(bodies)
    if reason == "maxlen":
        to_publish.append(payment(999))  # pushes the last real one out of the queue head
        assert len(bodies) == 1
    if with_pika:
        await asyncio.to_thread(
            publish_with_pika,
            broker.amqp_url,
            flow.payments,
            "payment.failed",
            to_publish,
            headers,
            **properties,
        )
    else:
        assert broker.channel is not None
        channel = await broker.connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(flow.payments)
        for body in to_publish:
            await exchange.publish(
                aio_pika.Message(body, headers=headers or {}, **properties), "payment.failed"
            )
        await channel.close()
    await flow.kill(len(bodies))
    assert await park_all(broker.connection, store, flow.dlq) == len(bodies)
    await flow.redeclare_work_plain()
    await broker.drain(flow.other)
    if reason == "maxlen":
        await broker.drain(flow.work)
    return flow, await entry_ids(store, flow.dlq)


def ids_target(ids: list[str]) -> ActionTarget:
    return ActionTarget.for_entries(ids)


PIKA_HEADERS: dict[str, Any] = {
    "tenant": "acme",
    "count": 7,
    "big": 2**40,
    "negative": -5,
    "flag": True,
    "none": None,
    "blob": b"\x00\xff",  # pika writes bytes as a byte array
    "when": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
    "nested": {"a": [1, "two", {"b": None}], "c": {}},
    "list": [],
    "price": Decimal("12.5"),
}


# --------------------------------------------------------------------------- requeue


@pytest.mark.parametrize("reason", ["rejected", "expired", "maxlen", "delivery_limit"])
async def test_requeue_returns_each_dead_letter_once_to_its_origin_queue_only(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory, reason: str
) -> None:
    flow, ids = await parked_flow(
        broker,
        store,
        reason,
        [payment(1)],
        headers=dict(PIKA_HEADERS),
        content_type="application/json",
        delivery_mode=2,
        correlation_id="corr-1",
        app_id="gateway",
        priority=3,
    )
    (entry_id,) = ids
    parked = await store.get(flow.dlq, entry_id)
    assert parked is not None and parked.record.properties.get("message_id") is None
    assert parked.summary.origin_queue == flow.work and parked.summary.reason == reason

    report = await make_service().requeue(ids_target(ids))

    assert (report.succeeded, report.skipped, report.failed) == (1, 0, 0), report.outcomes
    assert report.outcomes[0].detail == f"requeued to '{flow.work}'"
    await broker.wait_depth(flow.work, 1)
    await asyncio.sleep(0.2)  # anything routed elsewhere would have arrived by now
    arrived = await broker.drain(flow.work)
    assert len(arrived) == 1
    assert await broker.drain(flow.other) == []
    assert await broker.depth(flow.dlq) == 0
    message = arrived[0]
    assert message.body == parked.record.body == payment(1)
    assert message.properties == parked.record.properties  # no message_id added either
    assert "message_id" not in message.properties
    expected = {k: v for k, v in parked.record.headers.items() if k not in DROPPED_HEADERS}
    # A quorum queue counts deliveries itself: a fresh count (0), not the parked one.
    assert message.headers.pop("x-delivery-count", 0) == 0
    assert {k: v for k, v in message.headers.items() if not k.startswith("payops-")} == expected
    for key, value in expected.items():
        assert type(message.headers[key]) is type(value), key
    assert not any(
        k.startswith(("x-death", "x-first-death", "x-last-death")) for k in message.headers
    )
    assert message.headers[ACTION_HEADER] == "requeue"
    assert message.headers[ACTION_ID_HEADER].endswith("." + entry_id)
    entry = await store.get(flow.dlq, entry_id)
    assert entry is not None and entry.state is EntryState.REQUEUED
    assert entry.operator == "alice" and entry.detail == f"requeued to '{flow.work}'"
    assert entry.action_id == message.headers[ACTION_ID_HEADER]
    audit = await store.read_audit(flow.dlq)
    assert [a.result for a in audit] == ["requeued 1, skipped 0, failed 0", "started"]
    assert audit[0].operator == "alice" and audit[0].host == "test-host"
    assert audit[0].action == "requeue" and audit[0].entry_ids == (entry_id,)
    assert audit[0].action_id == audit[1].action_id == entry.action_id.split(".")[0]


ALL_TYPES: dict[str, Any] = {
    "str": "text ü",
    "int8": -7,
    "int16": 1000,
    "uint16": 60000,
    "int32": -(2**31),
    "uint32": 2**32 - 1,
    "int64": 2**63 - 1,
    "float": 0.1,
    "bool": False,
    "decimal": Decimal("1.50"),
    "decimal_int": Decimal("7"),
    "bytearray": bytearray(b"\x00\x01\xff"),
    "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    "void": None,
    "table": {"inner": {"deep": [1, 2.5, "x", None, bytearray(b"z")]}},
    "array": [[], [{}], "s"],
    ATTEMPT_HEADER: 2,
}


async def test_requeue_keeps_headers_of_every_type_and_the_properties(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(
        broker,
        store,
        "rejected",
        [payment(2)],
        headers=dict(ALL_TYPES),
        with_pika=False,
        message_id="m-2",
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        priority=9,
        correlation_id="c-2",
        reply_to="replies",
        expiration=600_000,
        timestamp=datetime.datetime(2024, 3, 4, 5, 6, 7, tzinfo=datetime.UTC),
        type="payment.failed",
        app_id="gateway",
        user_id="guest",
    )
    parked = await store.get(flow.dlq, ids[0])
    assert parked is not None

    report = await make_service().requeue(ids_target(ids))
    assert report.succeeded == 1, report.outcomes

    (message,) = await broker.drain(flow.work)
    assert message.body == payment(2)
    # RabbitMQ removed expiration when it dead-lettered the message; a requeue restores it.
    assert "expiration" not in parked.record.properties
    assert message.properties == parked.record.properties | {"expiration": "600000000"}
    assert message.properties["message_id"] == "m-2" and message.properties["user_id"] == "guest"
    for key, value in ALL_TYPES.items():
        kept = parked.record.headers[key]  # as it arrived (pamqp sent 0.1 as a 32-bit float)
        assert message.headers[key] == kept, key
        assert type(message.headers[key]) is type(value) is type(kept), key
        if key != "float":
            assert kept == value, key
    assert message.headers["float"] == float.fromhex("0x1.99999a0000000p-4")  # exact double
    assert message.headers[ATTEMPT_HEADER] == 2  # a requeue does not count an attempt


async def test_requeue_twice_publishes_once_and_says_who_did_it(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(3)])
    first = await make_service("alice").requeue(ids_target(ids))
    second = await make_service("bob").requeue(ids_target(ids))

    assert first.succeeded == 1
    assert (second.succeeded, second.skipped) == (0, 1)
    assert second.outcomes[0].detail == "already requeued by alice"
    assert summary_line(second) == "requeued 0, skipped 1 (already requeued by alice), failed 0"
    await asyncio.sleep(0.2)
    assert len(await broker.drain(flow.work)) == 1


async def test_two_consoles_race_on_the_same_entries_each_is_published_once(
    broker: Broker,
    store: ParkingStore,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(n) for n in range(40)])
    consoles: list[tuple[aioredis.Redis, ActionPublisher, ActionService]] = []
    for operator in ("alice", "bob"):
        client = aioredis.from_url(redis_url)
        publisher = ActionPublisher(amqp_url)
        profile = make_profile(amqp_url, redis_url, prefix, [flow.dlq])
        service = ActionService(
            ParkingStore(client, prefix), publisher, profile, operator, f"{operator}-pc", window=7
        )
        consoles.append((client, publisher, service))
    try:
        reports = await asyncio.gather(
            *(service.requeue(ids_target(ids)) for _, _, service in consoles)
        )
    finally:
        for client, publisher, _ in consoles:
            await publisher.close()
            await client.aclose()

    alice, bob = reports
    assert alice.succeeded + bob.succeeded == 40
    assert alice.failed == bob.failed == 0
    for report, other in ((alice, "bob"), (bob, "alice")):
        for outcome in report.outcomes:
            if outcome.status == "skipped":
                assert outcome.detail in (
                    f"already requeued by {other}",
                    f"being requeued by {other}",
                )
    await broker.wait_depth(flow.work, 40)
    await asyncio.sleep(0.2)
    arrived = await broker.drain(flow.work)
    assert sorted(orjson.loads(m.body)["payment_id"] for m in arrived) == sorted(
        f"pay_{n}" for n in range(40)
    )
    assert len({m.headers[ACTION_ID_HEADER] for m in arrived}) == 40


async def test_one_entry_two_actors_one_wins_the_loser_is_told_who(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(4)])
    alice, bob = make_service("alice"), make_service("bob")
    reports = await asyncio.gather(
        alice.requeue(ids_target(ids)), bob.cancel(ids_target(ids), reason="duplicate")
    )
    winners = [r for r in reports if r.succeeded == 1]
    losers = [r for r in reports if r.skipped == 1]
    assert len(winners) == 1 and len(losers) == 1
    winner_name = "alice" if winners[0].action == "requeue" else "bob"
    assert winner_name in losers[0].outcomes[0].detail
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.operator == winner_name


async def test_unroutable_origin_queue_leaves_the_entry_parked_with_a_clear_error(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(5)])
    await broker.delete_queue(flow.work)

    report = await make_service().requeue(ids_target(ids))

    assert report.failed == 1
    expected = f"unroutable: no queue '{flow.work}' (mandatory publish returned NO_ROUTE)"
    assert report.outcomes[0].detail == expected
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.PARKED
    assert entry.last_error == expected
    assert await store.in_flight(flow.dlq) == []
    assert await broker.drain(flow.other) == []
    assert summary_line(report).startswith("requeued 0, skipped 0, failed 1 (unroutable: no queue")


async def test_read_only_refuses_every_action_and_touches_nothing(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(6)])
    for service in (make_service(read_only=True), make_service(read_only_flag=True)):
        with pytest.raises(ActionRefused, match="read-only"):
            await service.requeue(ids_target(ids))
        with pytest.raises(ActionRefused, match="read-only"):
            await service.retry(ids_target(ids), delay_s=5)
        with pytest.raises(ActionRefused, match="read-only"):
            await service.cancel(ids_target(ids), reason="x")
        with pytest.raises(ActionRefused, match="read-only"):
            await service.resolve(ids[0], "delivered")
        dry = await service.requeue(ids_target(ids), dry_run=True)
        assert dry.outcomes[0].detail == f"dry run: would requeue to '{flow.work}'"
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.PARKED and entry.version == 1
    assert await broker.depth(flow.work) == 0


async def test_dry_run_and_plan_claim_nothing(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(7), payment(8)])
    service = make_service()
    await service.requeue(ids_target(ids[:1]))

    plan = await service.plan("requeue", ids_target(ids))
    assert plan.targets == ((flow.work, 1),) and plan.skipped == 1
    report = await service.requeue(ids_target(ids), dry_run=True)
    details = sorted(o.detail for o in report.outcomes)
    assert details == ["already requeued by alice", f"dry run: would requeue to '{flow.work}'"]
    entry = await store.get(flow.dlq, ids[1])
    assert entry is not None and entry.state is EntryState.PARKED and entry.version == 1


async def test_a_frozen_target_acts_on_the_rows_confirmed_without_resolving_again(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    """The query is resolved once, for the confirmation: the action acts on exactly those
    rows (frozen); one another operator requeued meanwhile is skipped by its claim, not
    dropped from the selection by a second resolution."""
    flow, _ = await parked_flow(
        broker,
        store,
        "rejected",
        [payment(10), payment(11, merchant="Other Shop"), payment(12)],
    )
    service = make_service()
    query = Query(merchants=frozenset({"Acme Books"}), states=frozenset({EntryState.PARKED}))
    target = await service.freeze(ActionTarget.for_query(query, 5))
    assert target.count == 2 and target.rows is not None
    plan = await service.plan("requeue", target)
    assert plan.total == 2
    taken = next(r.entry_id for r in target.rows if r.payment_id == "pay_12")
    by_bob = await make_service("bob").requeue(ids_target([taken]))
    assert by_bob.succeeded == 1
    report = await service.requeue(target)
    assert report.requested == 2
    assert (report.succeeded, report.skipped, report.failed) == (1, 1, 0), report.outcomes
    skipped = next(o for o in report.outcomes if o.status == "skipped")
    assert skipped.entry_id == taken and "bob" in skipped.detail
    arrived = await broker.drain(flow.work)
    assert sorted(orjson.loads(m.body)["payment_id"] for m in arrived) == ["pay_10", "pay_12"]


async def test_query_target_acts_on_what_matches(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(
        broker,
        store,
        "rejected",
        [payment(10), payment(11, merchant="Other Shop"), payment(12)],
    )
    query = Query(merchants=frozenset({"Acme Books"}), states=frozenset({EntryState.PARKED}))
    report = await make_service().requeue(ActionTarget.for_query(query, 2))
    assert report.succeeded == 2
    arrived = await broker.drain(flow.work)
    assert sorted(orjson.loads(m.body)["payment_id"] for m in arrived) == ["pay_10", "pay_12"]
    other = [i for i in ids if i not in {o.entry_id for o in report.outcomes}]
    assert len(other) == 1 and (await store.get(flow.dlq, other[0])).state is EntryState.PARKED  # type: ignore[union-attr]
    missing = await make_service().requeue(ids_target(["00000000000000000000"]))
    assert missing.outcomes[0].detail == "no such entry" and missing.failed == 1


async def test_progress_is_reported_and_a_cancel_stops_after_the_window(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    service = make_service(window=10)
    # More windows than the product's depth lets be in flight at once: some are never sent.
    n = 10 * (service.depth + 3)
    flow, ids = await parked_flow(broker, store, "rejected", [payment(i) for i in range(n)])
    stop = asyncio.Event()
    seen: list[tuple[int, int, int]] = []

    def progress(done: int, total: int, failed: int) -> None:
        seen.append((done, total, failed))
        if done >= 10:
            stop.set()

    report = await service.requeue(ids_target(ids), progress=progress, cancel_event=stop)

    # The windows already sent when the stop came (at most ``depth``) finish; the
    # window claimed ahead is released; nothing else is touched.
    done = report.succeeded
    assert report.stopped and done % 10 == 0 and 10 <= done <= 10 * service.depth
    assert report.not_attempted == n - done and report.failed == 0
    assert seen[0] == (0, n, 0) and (10, n, 0) in seen
    assert await broker.depth(flow.work) == done
    states = [
        (await store.get(flow.dlq, entry_id)).state  # type: ignore[union-attr]
        for entry_id in ids
    ]
    assert states.count(EntryState.REQUEUED) == done
    assert states.count(EntryState.PARKED) == n - done
    assert await store.in_flight(flow.dlq) == []
    released = [await store.get(flow.dlq, i) for i in ids]
    assert all(not e.last_error for e in released if e is not None)
    audit = await store.read_audit(flow.dlq, count=1)
    assert f"stopped by the operator ({n - done} not attempted)" in audit[0].result


# --------------------------------------------------------------------------- retry


async def test_retry_after_a_delay_arrives_later_with_the_attempt_counted(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(
        broker, store, "rejected", [payment(20)], headers={ATTEMPT_HEADER: 2, "keep": "me"}
    )
    started = time.monotonic()
    report = await make_service().retry(ids_target(ids), delay_s=2)

    assert report.succeeded == 1, report.outcomes
    assert report.outcomes[0].detail == f"retried through '{flow.work}' (attempt 3) after 2 s"
    delay_queue = f"payops.delay.{flow.work}.2s"
    broker.queues.append(delay_queue)
    assert await broker.depth(delay_queue) == 1
    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    assert await broker.depth(flow.work) == 0  # still waiting
    await broker.wait_depth(flow.work, 1, timeout=10)
    assert time.monotonic() - started >= 1.9
    (message,) = await broker.drain(flow.work)
    assert message.headers[ATTEMPT_HEADER] == 3 and message.headers["keep"] == "me"
    assert message.headers[ACTION_HEADER] == "retry"
    assert message.body == payment(20)
    assert await broker.drain(flow.other) == []
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.RETRIED


async def test_retry_without_delay_counts_the_first_attempt(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "delivery_limit", [payment(21)])
    report = await make_service().retry(ids_target(ids))
    assert report.succeeded == 1
    await broker.wait_depth(flow.work, 1)
    (message,) = await broker.drain(flow.work)
    assert message.headers[ATTEMPT_HEADER] == 1
    assert message.headers.get("x-delivery-count", 0) == 0  # the quorum queue's fresh count


async def test_retry_with_an_edited_body_sends_it_and_audits_it_masked(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(22, card_number=PAN)])
    edited = orjson.dumps(
        {"payment_id": "pay_22", "amount": "40.00", "currency": "EUR", "card_number": PAN}
    )
    service = make_service()
    with pytest.raises(ActionRefused, match="not valid JSON"):
        await service.retry(ids_target(ids), edited_body=b'{"amount": 40,')
    report = await service.retry(ids_target(ids), edited_body=edited)

    assert report.succeeded == 1 and report.outcomes[0].detail.endswith("body edited")
    (message,) = await broker.drain(flow.work)
    assert message.body == edited
    audit = await store.read_audit(flow.dlq, entry_id=ids[0])
    text = " ".join(a.detail + a.result + a.target for a in audit)
    assert "body edited to" in text and '"40.00"' in text
    assert PAN not in text and "411111******1111" in text


async def test_an_edited_body_applies_to_one_entry_only(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    _, ids = await parked_flow(broker, store, "rejected", [payment(23), payment(24)])
    with pytest.raises(ActionRefused, match="exactly one entry"):
        await make_service().retry(ids_target(ids), edited_body=b"{}")


async def test_a_delayed_retry_to_a_missing_queue_is_refused_before_anything_is_sent(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(25)])
    await broker.delete_queue(flow.work)
    report = await make_service().retry(ids_target(ids), delay_s=3)
    assert report.failed == 1 and "no queue" in report.outcomes[0].detail
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.PARKED


# --------------------------------------------------------------------------- cancel


async def test_cancel_publishes_the_event_without_card_data_and_cancels(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(
        broker, store, "rejected", [payment(30, card_number=PAN, cvv="123")]
    )
    events = await broker.exchange("events", aio_pika.ExchangeType.TOPIC)
    sink = await broker.queue("cancelled")
    await sink.bind(events, "payment.cancelled")
    service = make_service(cancel_exchange=events.name)

    with pytest.raises(ActionRefused, match="reason"):
        await service.cancel(ids_target(ids), reason="  ")
    report = await service.cancel(ids_target(ids), reason=f"customer called, card {PAN}")

    assert report.succeeded == 1, report.outcomes
    (event,) = await broker.drain(sink.name)
    body = orjson.loads(event.body)
    assert set(body) == {
        "payment_id",
        "merchant",
        "amount",
        "currency",
        "reason",
        "operator",
        "entry_id",
        "cancelled_at",
    }
    assert (body["payment_id"], body["merchant"], body["amount"], body["currency"]) == (
        "pay_30",
        "Acme Books",
        "42.50",
        "EUR",
    )
    assert body["operator"] == "alice" and body["entry_id"] == ids[0]
    assert body["reason"] == "customer called, card 411111******1111"
    # Quoted, so the CVV cannot be confused with the milliseconds of a timestamp.
    assert PAN not in event.body.decode() and '"123"' not in event.body.decode()
    assert event.properties["content_type"] == "application/json"
    assert event.properties["message_id"] == event.headers[ACTION_ID_HEADER]
    assert event.properties["type"] == "payment.cancelled"
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.CANCELLED
    assert await broker.depth(flow.work) == 0
    audit = await store.read_audit(flow.dlq, entry_id=ids[0])
    assert all(PAN not in a.detail for a in audit)


async def test_cancel_without_an_event_configured_just_cancels(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(31)])
    report = await make_service().cancel(ids_target(ids), reason="test payment")
    assert report.succeeded == 1
    assert report.outcomes[0].detail == "cancelled: test payment; no cancel event configured"
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.CANCELLED


async def test_an_unroutable_cancel_event_is_an_error_and_the_entry_stays_parked(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    flow, ids = await parked_flow(broker, store, "rejected", [payment(32)])
    events = await broker.exchange("events", aio_pika.ExchangeType.TOPIC)  # no bindings
    report = await make_service(cancel_exchange=events.name).cancel(ids_target(ids), reason="fraud")
    assert report.failed == 1
    assert report.outcomes[0].detail == (
        f"unroutable: exchange '{events.name}' has no binding for routing key"
        " 'payment.cancelled' (mandatory publish returned NO_ROUTE)"
    )
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.PARKED and entry.last_error

    missing = await make_service(cancel_exchange=broker.name("nope")).cancel(
        ids_target(ids), reason="fraud"
    )
    assert missing.failed == 1 and "does not exist" in missing.outcomes[0].detail


LUHN_ID = "pay_17d5570756950439"  # its last 13 digits pass the Luhn check: still an id


async def test_the_audit_target_shows_a_searched_payment_id_whole_and_masks_card_numbers(
    broker: Broker, store: ParkingStore, make_service: ServiceFactory
) -> None:
    body = orjson.dumps({"payment_id": LUHN_ID, "amount": "5.00", "currency": "EUR"})
    flow, _ = await parked_flow(broker, store, "rejected", [body, payment(31)])
    service = make_service()
    # the operator pastes the payment id into the search box, then "Requeue all matching"
    report = await service.requeue(ActionTarget.for_query(Query(text=LUHN_ID), 1))
    assert report.succeeded == 1
    [record] = [a for a in await store.read_audit(flow.dlq) if a.result != "started"]
    assert record.target == f"all 1 entry matching text “{LUHN_ID}” -> {flow.work}"
    # a card number typed as free text is masked in the same kind of target
    searched = ActionTarget.for_query(Query(text=f"card {PAN}", queues=frozenset({f"q.{PAN}"})), 0)
    assert PAN not in searched.description
    assert searched.description.count("411111******1111") == 2
