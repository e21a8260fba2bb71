"""The per-payment record through the real tap: events published on the real broker,
recorded by the live flow's recorder(s) into the real Redis, read back per payment."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from services.config import Profile, TapBinding
from services.flow.decoder import REPLAY_HEADER
from services.flow.payment_events import PaymentEventStore
from services.flow.process import FlowProcess
from services.flow.protocol import ChildConfig
from services.flow.recorder import RecorderState
from tests.helpers.action_kit import publish_with_pika
from tests.helpers.tcp_proxy import TcpProxy
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


@dataclass
class Events:
    """A topic exchange on the real broker and a publisher that numbers its messages."""

    channel: aio_pika.abc.AbstractChannel
    exchange: aio_pika.abc.AbstractExchange
    name: str
    sent: int = 0

    async def publish(
        self,
        payment_id: str,
        status: str,
        *,
        reason: str | None = None,
        headers: dict[str, object] | None = None,
        message_id: str | None = None,
    ) -> None:
        body: dict[str, object] = {"payment_id": payment_id, "status": status}
        if reason is not None:
            body["reason"] = reason
        self.sent += 1
        await self.exchange.publish(
            aio_pika.Message(
                orjson.dumps(body),
                headers=headers,
                message_id=message_id or f"m{self.sent}-{payment_id}-{status}",
            ),
            routing_key=f"payment.{status}",
        )


@pytest.fixture
async def events(amqp_url: str, unique_prefix: str) -> AsyncIterator[Events]:
    name = f"{unique_prefix}events"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC)
    yield Events(channel, exchange, name)
    with contextlib.suppress(Exception):
        await channel.exchange_delete(name)
    await connection.close()


@dataclass
class Flow:
    process: FlowProcess
    states: list[RecorderState] = field(default_factory=list)

    @property
    def role(self) -> str | None:
        return self.states[-1].role if self.states else None

    def consuming(self) -> bool:
        state = self.states[-1] if self.states else None
        return self.process.tap.ready.is_set() and state is not None

    def consumed(self) -> int:
        return sum(self.process.mirror.totals_by_status().values())


@pytest.fixture
async def flows() -> AsyncIterator[Callable[..., Flow]]:
    started: list[Flow] = []

    def start(profile: Profile, **config: Any) -> Flow:
        states: list[RecorderState] = []
        process = FlowProcess(
            ChildConfig(profile, capacity_s=600, **config),
            lambda _: None,
            on_recorder=states.append,
        )
        flow = Flow(process, states)
        process.start()
        started.append(flow)
        return flow

    yield start
    for flow in started:
        await flow.process.stop()


def profile_for(amqp_url: str, redis_url: str, exchange: str, prefix: str, **kw: object) -> Profile:
    return Profile(
        name="t",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=(TapBinding(exchange),),
        redis_prefix=prefix,
        alert_rules=(),
        payment_events_recent_min=2,
        history_retention_h=1,
        **kw,  # type: ignore[arg-type]
    )


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def statuses(store: PaymentEventStore, payment_id: str) -> list[str]:
    return [e.status for e in await store.events(payment_id)]


async def step(events: Events, flows: list[Flow], payment_id: str, status: str, **kw: object):  # type: ignore[no-untyped-def]
    """Publish one event and wait until every tap counted it (so each has its own time)."""
    before = [flow.consumed() for flow in flows]
    await events.publish(payment_id, status, **kw)  # type: ignore[arg-type]
    for flow, count in zip(flows, before, strict=True):
        await eventually(lambda f=flow, c=count: f.consumed() > c, 20, f"{payment_id} {status}")


async def test_two_recorders_write_each_event_of_a_payment_once_across_a_hand_over(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    events: Events,
    redis_client: aioredis.Redis,
    flows: Callable[..., Flow],
) -> None:
    profile = profile_for(amqp_url, redis_url, events.name, prefix)
    store = PaymentEventStore.for_profile(redis_client, profile)
    a, b = flows(profile), flows(profile)
    await eventually(lambda: a.consuming() and b.consuming(), 30, "both taps")
    await eventually(lambda: {a.role, b.role} == {"writer", "standby"}, 30, "one writer")
    both = [a, b]

    await step(events, both, "pay_1", "requested")
    await step(events, both, "pay_1", "failed", reason="acquirer timeout after 3012 ms")
    await step(events, both, "pay_2", "requested")
    await step(events, both, "pay_1", "captured", headers={REPLAY_HEADER: "act-1"})
    await step(events, both, "pay_2", "captured")
    await until(lambda: _equal(store, {"pay_1": ["requested", "failed", "captured"]}), 20, "pay_1")
    await until(lambda: _equal(store, {"pay_2": ["requested", "captured"]}), 20, "pay_2")
    failed = await store.last_failure("pay_1", ["failed"])
    assert failed is not None and failed.reason == "acquirer timeout after 3012 ms"
    assert [e.replayed for e in await store.events("pay_1")] == [False, False, True]

    # The writer stops; the standby takes the lease and writes what it buffered
    # (pay_1 and pay_2 again, idempotently) and what comes next.
    writer, standby = (a, b) if a.role == "writer" else (b, a)
    await writer.process.stop()
    await eventually(lambda: standby.role == "writer", 30, "the hand-over")
    await step(events, [standby], "pay_1", "refunded")
    await until(
        lambda: _equal(store, {"pay_1": ["requested", "failed", "captured", "refunded"]}),
        20,
        "pay_1 after the hand-over",
    )
    assert await statuses(store, "pay_2") == ["requested", "captured"]
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}:payment:*")]
    assert sorted(keys) == [f"{prefix}:payment:pay_1".encode(), f"{prefix}:payment:pay_2".encode()]
    assert await redis_client.zcard(store.key("pay_1")) == 4


async def _equal(store: PaymentEventStore, expected: dict[str, list[str]]) -> bool:
    return all([await statuses(store, p) == want for p, want in expected.items()])


async def test_bounds_ordinary_payments_for_the_recent_window_the_others_kept(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    events: Events,
    redis_client: aioredis.Redis,
    flows: Callable[..., Flow],
) -> None:
    profile = profile_for(amqp_url, redis_url, events.name, prefix)
    store = PaymentEventStore.for_profile(redis_client, profile)
    flow = flows(profile)
    await eventually(lambda: flow.consuming() and flow.role == "writer", 30, "a writer")
    await events.publish("pay_ok", "requested")
    await events.publish("pay_ok", "captured")
    await events.publish("pay_bad", "failed", reason="risk engine unavailable")
    await events.publish("pay_back", "captured", headers={REPLAY_HEADER: "act-2"})
    # A dead letter (an x-death header) and a message without a message id, with pika.
    dead = orjson.dumps({"payment_id": "pay_dead", "amount": "1.00"})
    death = [{"queue": "work", "reason": "rejected", "count": 1, "exchange": ""}]
    publish_with_pika(amqp_url, events.name, "payment.requested", [dead], {"x-death": death})
    plain = orjson.dumps({"payment_id": "pay_plain", "status": "requested"})
    publish_with_pika(amqp_url, events.name, "payment.requested", [plain, plain])

    async def written() -> bool:
        return await redis_client.exists(*(store.key(p) for p in PAYMENTS)) == len(PAYMENTS)

    await until(written, 20, "every payment written")
    await until(lambda: _equal(store, {"pay_ok": ["requested", "captured"]}), 20, "pay_ok")
    recent, kept = profile.payment_events_recent_s, profile.history_retention_s
    ttl = {p: await redis_client.ttl(store.key(p)) for p in PAYMENTS}
    assert 0 < ttl["pay_ok"] <= recent and 0 < ttl["pay_plain"] <= recent
    for payment in ("pay_bad", "pay_back", "pay_dead"):
        assert recent < ttl[payment] <= kept, (payment, ttl)
    assert await store.events("pay_dead") == []  # kept, no event of its own
    # The same body twice without a message id: one delivery key, stored once.
    plain_events = await store.events("pay_plain")
    assert len(plain_events) == 1 and plain_events[0].key.startswith("b:")

    async def counted() -> bool:  # the console's totals arrive through the child's pipe
        return Counter(flow.process.mirror.totals_by_status())["requested"] == 3

    await until(counted, 20, "the console's status totals")


PAYMENTS = ("pay_ok", "pay_bad", "pay_back", "pay_dead", "pay_plain")


async def test_switched_off_or_not_recording_no_payment_is_written(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    events: Events,
    redis_client: aioredis.Redis,
    flows: Callable[..., Flow],
) -> None:
    profile = profile_for(amqp_url, redis_url, events.name, prefix, payment_events=False)
    flow = flows(profile)
    await eventually(lambda: flow.consuming() and flow.role == "writer", 30, "a writer")
    written_before = flow.states[-1].last_written
    await step(events, [flow], "pay_off", "failed", reason="x")
    second = int(time.time())
    await eventually(
        lambda: (flow.states[-1].last_written or 0) > max(second, written_before or 0),
        20,
        "the writer's next seconds",
    )
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}:payment:*")] == []


async def test_a_writer_cut_off_from_redis_leaves_no_gap_the_next_one_writes_its_buffer(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    events: Events,
    redis_client: aioredis.Redis,
    flows: Callable[..., Flow],
) -> None:
    proxy = TcpProxy(6379)
    await proxy.start()
    try:
        cut = profile_for(
            amqp_url, redis_url.replace(":6379", f":{proxy.port}"), events.name, prefix
        )
        profile = profile_for(amqp_url, redis_url, events.name, prefix)
        store = PaymentEventStore.for_profile(redis_client, profile)
        a = flows(cut, lease_ttl_s=6.0, backoff=(0.2,))
        await eventually(lambda: a.consuming() and a.role == "writer", 30, "a writing")
        b = flows(profile, lease_ttl_s=6.0)
        await eventually(lambda: b.consuming() and b.role == "standby", 30, "b standing by")

        await proxy.stop()  # a can no longer write, and its lease runs out
        await eventually(lambda: a.role == "unavailable", 20, "a cut off")
        await step(events, [a, b], "pay_g", "requested")
        await step(events, [a, b], "pay_g", "failed", reason="risk engine unavailable")
        # b takes the lease once a's expires, and writes what it saw meanwhile.
        await eventually(lambda: b.role == "writer", 30, "b taking over")
        await until(lambda: _equal(store, {"pay_g": ["requested", "failed"]}), 20, "pay_g")

        await proxy.start()  # a comes back, as a standby: nothing is written twice
        await eventually(lambda: a.role == "standby", 30, "a standing by")
        await step(events, [a, b], "pay_g", "captured")
        await until(
            lambda: _equal(store, {"pay_g": ["requested", "failed", "captured"]}), 20, "pay_g"
        )
        assert await redis_client.zcard(store.key("pay_g")) == 3
    finally:
        await proxy.stop()
