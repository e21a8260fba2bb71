"""The per-payment event record on the real Redis: idempotent, ordered, bounded."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.flow.payment_events import (
    MAX_EVENTS,
    PaymentEvent,
    PaymentEventBuffer,
    PaymentEventStore,
)


def event(
    payment_id: str, at_ms: int, status: str, key: str, reason: str | None = None
) -> PaymentEvent:
    return PaymentEvent(payment_id, at_ms, status, reason, key=key)


async def test_events_come_back_in_time_order_once_each(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = PaymentEventStore(redis_client, prefix, recent_s=60, retention_s=3600)
    batch = [
        event("pay_1", 3_000, "captured", "m3"),
        event("pay_1", 1_000, "requested", "m1"),
        event("pay_1", 2_000, "failed", "m2", "acquirer timeout"),
        event("pay_2", 1_500, "requested", "m4"),
    ]
    assert await store.append(batch) == 4
    await store.append(batch[:3])  # written again (a retried batch, a hand-over)
    got = await store.events("pay_1")
    assert [(e.at_ms, e.status, e.reason) for e in got] == [
        (1_000, "requested", None),
        (2_000, "failed", "acquirer timeout"),
        (3_000, "captured", None),
    ]
    assert [e.status for e in await store.events("pay_2")] == ["requested"]
    assert await store.events("pay_unknown") == []
    failure = await store.last_failure("pay_1", ["failed"])
    assert failure is not None and failure.reason == "acquirer timeout"
    assert await store.last_failure("pay_1", ["failed"], before_ms=1_999) is None
    found = await store.last_failures(["pay_1", "pay_2", "pay_unknown", "pay_1"], ["failed"])
    assert list(found) == ["pay_1"] and found["pay_1"].reason == "acquirer timeout"
    assert await store.last_failures(["pay_1"], ["failed"], before_ms=1_999) == {}


async def test_ordinary_payments_expire_after_the_recent_window_failed_ones_are_kept(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = PaymentEventStore(redis_client, prefix, recent_s=60, retention_s=3600)
    await store.append(
        [event("pay_ok", 1, "captured", "a"), event("pay_bad", 1, "failed", "b")],
        lasting_statuses=["failed"],
    )
    assert 0 < await redis_client.ttl(store.key("pay_ok")) <= 60
    assert 3000 < await redis_client.ttl(store.key("pay_bad")) <= 3600
    # A later ordinary event never shortens a kept payment's expiry.
    await store.append([event("pay_bad", 2, "captured", "c")], lasting_statuses=["failed"])
    assert await redis_client.ttl(store.key("pay_bad")) > 3000
    # Parked or acted on: kept, with or without events yet.
    await store.keep(["pay_ok", "pay_later"])
    assert await redis_client.ttl(store.key("pay_ok")) > 3000
    assert await store.events("pay_later") == []
    await store.append([event("pay_later", 5, "requested", "d")])
    assert await redis_client.ttl(store.key("pay_later")) > 3000
    assert [e.status for e in await store.events("pay_later")] == ["requested"]
    # A replayed event: an operator acted on the payment, so it is kept too.
    await store.append([PaymentEvent("pay_back", 9, "captured", None, True, "e")])
    assert await redis_client.ttl(store.key("pay_back")) > 3000


async def test_a_payment_keeps_its_newest_events_only(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = PaymentEventStore(redis_client, prefix)
    await store.append(event("pay_x", n, "requested", f"k{n}") for n in range(MAX_EVENTS + 25))
    got = await store.events("pay_x")
    assert len(got) == MAX_EVENTS
    assert got[0].at_ms == 25 and got[-1].at_ms == MAX_EVENTS + 24


async def test_damaged_members_and_oversized_ids_are_skipped(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = PaymentEventStore(redis_client, prefix)
    await redis_client.zadd(
        store.key("pay_d"),
        {b"\xff not json": 1, b'[2,"failed",null,0,"k"]': 2, b"[1,2,3]": 3, b'{"a":1}': 4},
    )
    assert [e.status for e in await store.events("pay_d")] == ["failed"]
    assert await store.append([event("p" * 500, 1, "failed", "k")]) == 0
    assert await store.events("p" * 500) == []


async def test_one_delivery_seen_at_two_times_is_stored_once_at_the_earliest(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Two recorders see a delivery a few ms apart; a hand-over writes it from both."""
    store = PaymentEventStore(redis_client, prefix)
    await store.append([event("pay_h", 1_005, "failed", "m1", "acquirer timeout")])
    await store.append(
        [
            event("pay_h", 1_002, "failed", "m1", "acquirer timeout"),
            event("pay_h", 1_009, "failed", "m1", "acquirer timeout"),
            event("pay_h", 2_000, "captured", "m2"),
        ]
    )
    await store.append([event("pay_h", 1_001, "failed", "m1", "acquirer timeout")] * 2)
    got = await store.events("pay_h")
    assert [(e.at_ms, e.status, e.key) for e in got] == [
        (1_001, "failed", "m1"),
        (2_000, "captured", "m2"),
    ]
    assert await redis_client.zcard(store.key("pay_h")) == 2


async def test_events_without_a_key_keep_their_time_in_the_member(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = PaymentEventStore(redis_client, prefix)
    await store.append([event("pay_k", 1, "failed", ""), event("pay_k", 2, "failed", "")])
    assert [e.at_ms for e in await store.events("pay_k")] == [1, 2]


def test_the_buffer_is_bounded_and_trimmed_by_when_the_tap_saw_an_event() -> None:
    buffer = PaymentEventBuffer(capacity=3)
    for n in range(5):
        buffer.events.append((f"pay_{n}", 1000.0 + n, "requested", None, False, f"m{n}"))
    buffer.kept.append((1001.0, "pay_1"))
    buffer.kept.append((1004.0, "pay_4"))
    assert [e[0] for e in buffer.events] == ["pay_2", "pay_3", "pay_4"]  # oldest dropped
    buffer.trim(1003.0)
    assert len(buffer) == 3
    events, kept = buffer.drain()
    assert buffer.overflowed == 0
    assert [(e[0], e[1], e[5]) for e in events] == [
        ("pay_3", 1003.0, "m3"),
        ("pay_4", 1004.0, "m4"),
    ]
    assert kept == ["pay_4"] and len(buffer) == 0
    for n in range(3):
        buffer.events.append((f"pay_{n}", 1.0, "requested", None, False, f"m{n}"))
    buffer.drain()
    assert buffer.overflowed == 1  # a full deque: events may have been dropped


async def test_many_payments_in_one_append_and_in_calls_by_hash_slot(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """More payments than one script call takes; then as on a cluster (calls by slot)."""
    for cluster in (False, True):
        store = PaymentEventStore(redis_client, f"{prefix}:c{int(cluster)}")
        store._cluster = cluster  # a cluster cannot be had here
        batch = [event(f"pay_{n}", 1_000 + n, "failed", f"k{n}", 'é ✓ "q"') for n in range(1_203)]
        assert await store.append(batch, lasting_statuses=["failed"]) == 1_203
        got = await store.events("pay_1202")
        assert [(e.at_ms, e.reason, e.key) for e in got] == [(2_202, 'é ✓ "q"', "k1202")]
        assert 3000 < await redis_client.ttl(store.key("pay_7")) <= 3600 * 24
        keys = [k async for k in redis_client.scan_iter(match=f"{store.prefix}:payment:*")]
        assert len(keys) == 1_203
        await redis_client.delete(*keys)


async def test_events_of_one_millisecond_keep_the_order_the_tap_saw_them_in(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = PaymentEventStore(redis_client, prefix)
    await store.append(
        [
            PaymentEvent("pay_t", 5_000, "requested", key="a", seen_ms=5_000.25),
            PaymentEvent("pay_t", 5_000, "captured", key="b", seen_ms=5_000.75),
            PaymentEvent("pay_t", 5_000, "authorized", key="c", seen_ms=5_000.5),
        ]
    )
    got = await store.events("pay_t")
    assert [e.status for e in got] == ["requested", "authorized", "captured"]
    assert {e.at_ms for e in got} == {5_000}


async def test_a_payment_without_an_expiry_gets_one_with_its_next_event(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A key left without an expiry (a ``keep`` cut off between its commands) is not
    kept for ever: the next event's write gives it one, and keeps its events bounded."""
    store = PaymentEventStore(redis_client, prefix, recent_s=60, retention_s=3600)
    await redis_client.zadd(store.key("pay_n"), {b"[]": 0})
    assert await redis_client.ttl(store.key("pay_n")) == -1
    await store.append([event("pay_n", n, "requested", f"k{n}") for n in range(MAX_EVENTS + 5)])
    assert 0 < await redis_client.ttl(store.key("pay_n")) <= 60
    assert await redis_client.zcard(store.key("pay_n")) == MAX_EVENTS
    assert [e.at_ms for e in await store.events("pay_n")][:1] == [5]
