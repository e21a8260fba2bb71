"""The per-payment event record on the real Redis: idempotent, ordered, bounded."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.flow.payment_events import MAX_EVENTS, PaymentEvent, PaymentEventStore


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
        store.key("pay_d"), {b"\xff not json": 1, b'[2,"failed",null,0,"k"]': 2}
    )
    assert [e.status for e in await store.events("pay_d")] == ["failed"]
    assert await store.append([event("p" * 500, 1, "failed", "k")]) == 0
    assert await store.events("p" * 500) == []
