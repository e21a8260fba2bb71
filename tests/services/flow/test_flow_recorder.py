"""FlowRecorder in the live flow's process: history and alerts written to the real Redis.

Events go through the real broker into the tap of one or more live-flow
processes; what they store is read back with ``HistoryStore``/``AlertLog``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.model import Alert, AlertEvent
from services.alerts.rules import (
    AlertRule,
    DeadLetterRateRule,
    FailureRateRule,
    FlowStoppedRule,
    LatencyRule,
    QueueDepthRule,
)
from services.config import Profile, TapBinding
from services.flow.history import HistoryStore, SecondRow
from services.flow.live_flow import LiveFlow
from services.flow.process import FlowProcess
from services.flow.protocol import ChildConfig
from services.flow.recorder import RecorderState, TapCoverage
from services.links.status import LinkStatus
from tests.helpers.tcp_proxy import TcpProxy
from tests.helpers.waiting import eventually

# --------------------------------------------------------------------------- coverage


def test_coverage_starts_at_the_first_full_second_after_the_tap_is_ready() -> None:
    cov = TapCoverage()
    cov.observe(False, None, 100.5)
    assert cov.earliest() is None
    cov.observe(True, "q1", 100.7)
    assert cov.consuming_since == 101
    cov.observe(True, "q1", 103.2)
    assert [s for s in range(99, 105) if cov.whole(s)] == [101, 102]


def test_coverage_ends_before_the_second_the_consumer_was_lost_in() -> None:
    cov = TapCoverage()
    cov.observe(True, "q1", 100.2)
    cov.observe(True, "q1", 104.6)  # last seen consuming
    cov.observe(False, None, 104.7)  # lost somewhere in 104.6 .. 104.7
    cov.observe(True, "q2", 106.3)  # a new session
    cov.observe(True, "q2", 109.0)
    assert [s for s in range(99, 110) if cov.whole(s)] == [101, 102, 103, 107, 108]
    assert cov.earliest() == 101


def test_coverage_notices_a_new_session_even_when_it_never_saw_the_tap_unready() -> None:
    cov = TapCoverage()
    cov.observe(True, "q1", 100.2)
    cov.observe(True, "q1", 102.5)
    cov.observe(True, "q2", 103.1)  # reconnected between two looks
    cov.observe(True, "q2", 106.0)
    assert [s for s in range(99, 107) if cov.whole(s)] == [101, 104, 105]


def test_a_held_or_unbound_tap_covers_nothing() -> None:
    cov = TapCoverage()
    for t in range(100, 110):
        cov.observe(False, "q1", t + 0.5)  # bound, consumer held
    assert cov.earliest() is None
    assert not any(cov.whole(s) for s in range(95, 115))


# --------------------------------------------------------------------------- helpers

NO_RULES: tuple[AlertRule, ...] = ()


@dataclass
class Broker:
    channel: aio_pika.abc.AbstractChannel
    exchange: aio_pika.abc.AbstractExchange
    exchange_name: str
    queues: list[str] = field(default_factory=list)

    async def declare_queue(self, name: str) -> str:
        await self.channel.declare_queue(name)
        self.queues.append(name)
        return name

    async def publish(
        self,
        counts: dict[str, int],
        *,
        age_s: float = 0.0,
        reason: str | None = None,
        headers: dict[str, object] | None = None,
    ) -> None:
        created = (time.time() - age_s) * 1000
        for status, n in counts.items():
            for i in range(n):
                body: dict[str, object] = {
                    "payment_id": f"p{i}",
                    "status": status,
                    "created_at": created,
                }
                if reason is not None and status == "failed":
                    body["reason"] = reason
                await self.exchange.publish(
                    aio_pika.Message(orjson.dumps(body), headers=headers),
                    routing_key=f"payment.{status}",
                )


@pytest.fixture
async def broker(amqp_url: str, unique_prefix: str) -> AsyncIterator[Broker]:
    name = f"{unique_prefix}events"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC)
    broker = Broker(channel, exchange, name)
    yield broker
    for queue in broker.queues:
        with contextlib.suppress(Exception):
            await channel.queue_delete(queue)
    with contextlib.suppress(Exception):
        await channel.exchange_delete(name)
    await connection.close()


def profile_for(
    amqp_url: str,
    redis_url: str,
    exchange: str,
    prefix: str,
    rules: tuple[AlertRule, ...] = NO_RULES,
    **kwargs: object,
) -> Profile:
    return Profile(
        name="t",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=(TapBinding(exchange),),
        redis_prefix=prefix,
        alert_rules=rules,
        **kwargs,
    )


@dataclass
class Seen:
    """What the parent received from one flow process."""

    states: list[RecorderState] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)
    actives: list[list[Alert]] = field(default_factory=list)
    statuses: list[LinkStatus] = field(default_factory=list)

    @property
    def state(self) -> RecorderState | None:
        return self.states[-1] if self.states else None

    @property
    def role(self) -> str | None:
        return self.states[-1].role if self.states else None

    def on_alerts(self, active: list[Alert], events: list[AlertEvent]) -> None:
        self.actives.append(active)
        self.events.extend(events)

    def written_through(self, second: int) -> bool:
        state = self.state
        return (
            state is not None
            and state.role == "writer"
            and state.last_written is not None
            and state.last_written >= second
        )


@pytest.fixture
async def flows() -> AsyncIterator[Callable[..., tuple[FlowProcess, Seen]]]:
    """Start flow processes; all are stopped at the end."""
    started: list[FlowProcess] = []

    def start(profile: Profile, **config: object) -> tuple[FlowProcess, Seen]:
        seen = Seen()
        flow = FlowProcess(
            ChildConfig(profile, capacity_s=600, **config),
            seen.statuses.append,
            on_alerts=seen.on_alerts,
            on_recorder=seen.states.append,
        )
        flow.start()
        started.append(flow)
        return flow, seen

    yield start
    for flow in started:
        await flow.stop()


async def stored_rows(client: aioredis.Redis, prefix: str, since: int) -> list[SecondRow]:
    return await HistoryStore(client, prefix).read_rows(since, int(time.time()) + 2)


def totals(rows: list[SecondRow]) -> dict[str, int]:
    counter: Counter[str] = Counter()
    for row in rows:
        counter.update(row.status_counts)
    return dict(counter)


def add(*batches: dict[str, int]) -> dict[str, int]:
    counter: Counter[str] = Counter()
    for batch in batches:
        counter.update(batch)
    return dict(counter)


async def publish_over_seconds(broker: Broker, batch: dict[str, int], seconds: int) -> None:
    """``batch`` in every one of ``seconds`` consecutive seconds."""
    for i in range(seconds):
        await broker.publish(batch, reason="acquirer timeout")
        if i < seconds - 1:
            await asyncio.sleep(1.0)


async def consumed_and_written(flow: FlowProcess, seen: Seen, expected: dict[str, int]) -> int:
    """Wait until ``flow`` consumed ``expected`` and its recorder wrote through that second."""
    await eventually(lambda: flow.mirror.totals_by_status() == expected, 30, "consumption")
    second = int(time.time())
    await eventually(lambda: seen.written_through(second), 20, f"writes through {second}")
    return second


def covering(flow: FlowProcess, seen: Seen) -> bool:
    """Whether ``flow``'s tap consumes and its recorder counts this second as whole."""
    state = seen.state
    return (
        flow.tap.ready.is_set()
        and state is not None
        and state.consuming_since is not None
        and time.time() >= state.consuming_since
    )


async def writer_ready(flow: FlowProcess, seen: Seen) -> None:
    await eventually(lambda: covering(flow, seen) and seen.role == "writer", 30, "a writer")


# --------------------------------------------------------------------------- history


@pytest.mark.integration
async def test_history_is_written_exactly_and_survives_the_writers_restart(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    broker: Broker,
    redis_client: aioredis.Redis,
    flows: Callable[..., tuple[FlowProcess, Seen]],
) -> None:
    since = int(time.time()) - 5
    profile = profile_for(amqp_url, redis_url, broker.exchange_name, prefix)
    first, seen1 = flows(profile)
    await writer_ready(first, seen1)

    batch = {"captured": 20, "failed": 4, "declined": 2}
    await publish_over_seconds(broker, batch, 3)
    expected1 = add(batch, batch, batch)
    await consumed_and_written(first, seen1, expected1)

    rows1 = await stored_rows(redis_client, prefix, since)
    assert totals(rows1) == expected1
    reasons: Counter[str] = Counter()
    for row in rows1:
        reasons.update(row.failure_reasons)
    assert reasons == {"acquirer timeout": 12}

    # Stopped, it releases the lease: the next writer need not wait for it to expire.
    await first.stop()
    assert await redis_client.get(f"{prefix}:history:lease") is None
    assert seen1.state is not None and seen1.state.role == "standby"

    second, seen2 = flows(profile)
    await writer_ready(second, seen2)
    batch2 = {"captured": 7, "refunded": 3}
    await publish_over_seconds(broker, batch2, 2)
    await consumed_and_written(second, seen2, add(batch2, batch2))

    rows2 = await stored_rows(redis_client, prefix, since)
    assert totals(rows2) == add(expected1, batch2, batch2)
    assert [r for r in rows2 if r.second <= rows1[-1].second] == rows1  # old seconds intact
    assert min(r.second for r in rows2 if "refunded" in r.status_counts) > rows1[-1].second


@pytest.mark.integration
async def test_two_collectors_count_once_and_hand_over_when_the_writer_stops(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    unique_prefix: str,
    broker: Broker,
    redis_client: aioredis.Redis,
    flows: Callable[..., tuple[FlowProcess, Seen]],
) -> None:
    since = int(time.time()) - 5
    # A 20 s window: the alert fires with the first batch and lasts through the hand-over.
    rule = FailureRateRule(threshold_pct=50, window_s=20, min_events=10, resolve_after_s=2)
    # A watched queue gives every second a row, so the writer stores each second
    # up to its stop and the new one back-fills only the seconds after it.
    profile = profile_for(
        amqp_url,
        redis_url,
        broker.exchange_name,
        prefix,
        (rule,),
        watch_queues=(await broker.declare_queue(f"{unique_prefix}work"),),
        depth_poll_interval_s=0.5,
    )
    a, seen_a = flows(profile)
    b, seen_b = flows(profile)
    await eventually(
        lambda: (
            covering(a, seen_a)
            and covering(b, seen_b)
            and {seen_a.role, seen_b.role} == {"writer", "standby"}
        ),
        30,
        "one writer and one standby",
    )
    (writer, seen_w), (standby, seen_s) = sorted(
        [(a, seen_a), (b, seen_b)], key=lambda pair: pair[1].role != "writer"
    )
    assert seen_w.state is not None and seen_s.state is not None
    assert seen_s.state.holder == seen_w.state.writer_id
    assert await redis_client.get(f"{prefix}:history:lease") == seen_w.state.writer_id.encode()

    # Mostly failures: both see the alert fire; only the writer records it.
    batch = {"failed": 15, "captured": 5}
    await publish_over_seconds(broker, batch, 2)
    expected = add(batch, batch)
    await eventually(lambda: standby.mirror.totals_by_status() == expected, 30)
    await consumed_and_written(writer, seen_w, expected)
    assert totals(await stored_rows(redis_client, prefix, since)) == expected
    await eventually(lambda: bool(writer.alerts) and bool(standby.alerts), 20, "both firing")
    now = int(time.time())
    await eventually(lambda: seen_w.written_through(now + 1), 20)
    log = AlertLog(redis_client, prefix)
    assert [(e.rule, e.kind) for e in await log.read_range()] == [("failure_rate", "firing")]
    assert seen_s.role == "standby"

    # The writer stops: the standby takes over and writes the new seconds.
    await writer.stop()
    await eventually(lambda: seen_s.role == "writer", 30, "the hand-over")
    batch2 = {"captured": 30}
    await publish_over_seconds(broker, batch2, 2)
    await consumed_and_written(standby, seen_s, add(expected, batch2, batch2))
    assert totals(await stored_rows(redis_client, prefix, since)) == add(expected, batch2, batch2)

    # The alert fired while the new writer stood by; it records the resolution
    # (the captured events bring the rate under the threshold).
    await eventually(lambda: not standby.alerts, 30, "the alert to resolve")
    later = int(time.time()) + 1
    await eventually(lambda: seen_s.written_through(later), 20)
    assert [(e.rule, e.kind) for e in await log.read_range(newest_first=False)] == [
        ("failure_rate", "firing"),
        ("failure_rate", "resolved"),
    ]


@pytest.mark.integration
async def test_alerts_left_firing_in_the_log_are_resolved_by_the_next_writer(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    broker: Broker,
    redis_client: aioredis.Redis,
    flows: Callable[..., tuple[FlowProcess, Seen]],
) -> None:
    # A collector stopped while these fired: nobody recorded their end.
    log = AlertLog(redis_client, prefix)
    stale = time.time() - 600
    await log.extend(
        [
            AlertEvent(stale, "failure_rate", "firing", 40.0, "failure rate 40 %", "critical"),
            AlertEvent(stale + 1, "retired_rule", "firing", 1.0, "a rule since removed"),
        ]
    )
    rule = FailureRateRule(threshold_pct=50, window_s=4, min_events=5, resolve_after_s=1)
    flow, seen = flows(profile_for(amqp_url, redis_url, broker.exchange_name, prefix, (rule,)))
    await writer_ready(flow, seen)
    await broker.publish({"captured": 20})  # a healthy flow: the engine does not fire

    def resolved() -> list[tuple[str, str]]:
        return [(e.rule, e.kind) for e in events if e.kind == "resolved"]

    events: list[AlertEvent] = []

    async def read() -> None:
        events[:] = await log.read_range(newest_first=False)

    deadline = time.monotonic() + 30
    while len(resolved()) < 2 and time.monotonic() < deadline:
        await read()
        await asyncio.sleep(0.5)
    assert sorted(resolved()) == [("failure_rate", "resolved"), ("retired_rule", "resolved")]
    assert all("took over the alert log" in e.message for e in events if e.kind == "resolved")
    assert not flow.alerts
    # Nothing more is recorded once the log and the engine agree.
    await asyncio.sleep(2.0)
    await read()
    assert len(events) == 4


@pytest.mark.integration
async def test_a_writer_with_a_held_consumer_writes_no_zeros_over_the_flow(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    unique_prefix: str,
    broker: Broker,
    redis_client: aioredis.Redis,
    flows: Callable[..., tuple[FlowProcess, Seen]],
) -> None:
    since = int(time.time()) - 5
    watched = await broker.declare_queue(f"{unique_prefix}work")
    # A watched queue: every second has a known depth, so a writer that did not
    # look at the tap would write rows with zero events.
    profile = profile_for(
        amqp_url,
        redis_url,
        broker.exchange_name,
        prefix,
        watch_queues=(watched,),
        depth_poll_interval_s=0.5,
    )
    a, seen_a = flows(profile)
    await writer_ready(a, seen_a)
    held, seen_held = flows(profile, hold_consume=True)
    await eventually(lambda: held.tap.bound.is_set() and seen_held.role == "standby", 30)

    batch1 = {"captured": 12, "failed": 3}
    await publish_over_seconds(broker, batch1, 2)
    await consumed_and_written(a, seen_a, add(batch1, batch1))
    await a.stop()
    assert seen_a.state is not None and seen_a.state.last_written is not None
    a_wrote_through = seen_a.state.last_written

    # The held console takes the lease, but has consumed nothing: it writes nothing.
    await eventually(lambda: seen_held.role == "writer", 30, "the held console to take over")
    c, seen_c = flows(profile)
    await eventually(lambda: covering(c, seen_c) and seen_c.role == "standby", 30)
    batch2 = {"captured": 9}
    await publish_over_seconds(broker, batch2, 2)
    await eventually(lambda: c.mirror.totals_by_status() == add(batch2, batch2), 30)
    now = int(time.time())
    await eventually(lambda: seen_held.written_through(now), 20)
    rows = await stored_rows(redis_client, prefix, since)
    assert totals(rows) == add(batch1, batch1)
    assert [r.second for r in rows if r.second > a_wrote_through] == []

    # When it stops, the console that saw the flow fills the gap it left.
    await held.stop()
    await eventually(lambda: seen_c.role == "writer", 30, "the hand-over")
    await eventually(lambda: seen_c.written_through(now), 20)
    assert totals(await stored_rows(redis_client, prefix, since)) == add(
        batch1, batch1, batch2, batch2
    )


@pytest.mark.integration
async def test_redis_down_leaves_the_tap_and_the_alerts_alone_and_recording_resumes(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    broker: Broker,
    redis_client: aioredis.Redis,
    flows: Callable[..., tuple[FlowProcess, Seen]],
) -> None:
    since = int(time.time()) - 5
    proxy = TcpProxy(6379)
    db_url = redis_url.replace(":6379", f":{proxy.port}")
    rule = FailureRateRule(threshold_pct=50, window_s=60, min_events=5, resolve_after_s=2)
    profile = profile_for(amqp_url, db_url, broker.exchange_name, prefix, (rule,))
    flow, seen = flows(profile, backoff=(0.2,))
    try:
        await eventually(lambda: covering(flow, seen) and seen.role == "unavailable", 30)
        assert seen.state is not None and "Redis" in seen.state.detail
        await broker.publish({"failed": 10})
        await eventually(lambda: flow.mirror.totals_by_status() == {"failed": 10}, 30)
        await eventually(lambda: bool(flow.alerts), 20, "the alert, Redis or not")
        assert [e.kind for e in seen.events] == ["firing"]

        await proxy.start()
        await eventually(lambda: seen.role == "writer", 30, "recording to resume")
        # What it saw while Redis was away is written when it takes the lease.
        now = int(time.time())
        await eventually(lambda: seen.written_through(now - 1), 20)
        assert totals(await stored_rows(redis_client, prefix, since)) == {"failed": 10}
        # The firing happened while it was not holding: not recorded.
        assert await AlertLog(redis_client, prefix).read_range() == []
    finally:
        await flow.stop()
        await proxy.stop()


# --------------------------------------------------------------------------- alerts


@pytest.mark.integration
async def test_every_rule_fires_and_resolves_once_on_a_flow_through_the_broker(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    unique_prefix: str,
    broker: Broker,
    redis_client: aioredis.Redis,
) -> None:
    watched = await broker.declare_queue(f"{unique_prefix}work")
    rules: tuple[AlertRule, ...] = (
        FailureRateRule(threshold_pct=50, window_s=5, min_events=10, resolve_after_s=2),
        DeadLetterRateRule(per_minute=30, window_s=5, resolve_after_s=2),
        QueueDepthRule(watched, max_depth=10, step_s=5, resolve_after_s=2),
        LatencyRule(p99_ms=5000, window_s=5, min_seconds=2, resolve_after_s=2),
        FlowStoppedRule(silent_s=4, resolve_after_s=2),
    )
    names = [rule.name for rule in rules]
    profile = profile_for(
        amqp_url,
        redis_url,
        broker.exchange_name,
        prefix,
        rules,
        watch_queues=(watched,),
        depth_poll_interval_s=0.5,
    )
    seen = Seen()
    flow = LiveFlow(
        profile, seen.statuses.append, on_alerts=seen.on_alerts, on_recorder=seen.states.append
    )
    steady = True

    async def background() -> None:  # a healthy flow: 10 fresh "captured" events a second
        while True:
            if steady:
                await broker.publish({"captured": 5})
            await asyncio.sleep(0.5)

    def fired(rule: str) -> bool:
        return any(e.rule == rule and e.kind == "firing" for e in seen.events)

    def resolved(rule: str) -> bool:
        return any(e.rule == rule and e.kind == "resolved" for e in seen.events)

    publisher: asyncio.Task[None] | None = None
    try:
        await flow.start()
        await eventually(lambda: flow.tap.ready.is_set() and flow.recorder is not None, 30)
        await eventually(
            lambda: seen.role == "writer" and time.time() >= (seen.state.consuming_since or 1e12),
            30,
        )
        publisher = asyncio.create_task(background())

        # Dead letters: 8 in 5 s is 96 a minute; they resolve while the rest goes on.
        await broker.publish(
            {"failed": 8}, headers={"x-death": [{"count": 1, "reason": "rejected"}]}
        )
        await eventually(lambda: fired("dead_letter_rate"), 20, "dead letters")

        # Failure rate: a burst of failures.
        for _ in range(3):
            await broker.publish({"failed": 30})
            await asyncio.sleep(1.0)
        await eventually(lambda: fired("failure_rate"), 20, "failure rate")
        await eventually(lambda: resolved("failure_rate"), 30, "failure rate resolved")

        # Latency: events created 20 s ago.
        for _ in range(4):
            await broker.publish({"captured": 3}, age_s=20)
            await asyncio.sleep(1.0)
        await eventually(lambda: fired("latency_p99"), 20, "latency")
        await eventually(lambda: resolved("latency_p99"), 30, "latency resolved")

        # Queue depth: a watched queue fills past its maximum, then is purged.
        for i in range(15):
            await broker.channel.default_exchange.publish(
                aio_pika.Message(f"m{i}".encode()), routing_key=watched
            )
        await eventually(lambda: fired(f"queue_depth:{watched}"), 20, "queue depth")
        queue = await broker.channel.get_queue(watched)
        await queue.purge()
        await eventually(lambda: resolved(f"queue_depth:{watched}"), 30, "queue depth resolved")

        await eventually(lambda: resolved("dead_letter_rate"), 30, "dead letters resolved")

        # The flow stops, then comes back.
        steady = False
        await eventually(lambda: fired("flow_stopped"), 20, "flow stopped")
        steady = True
        await eventually(lambda: resolved("flow_stopped"), 20, "flow stopped resolved")
        assert not flow.alerts

        # Once each, in the log as the parent saw them.
        kinds = Counter((e.rule, e.kind) for e in seen.events)
        assert kinds == {(name, kind): 1 for name in names for kind in ("firing", "resolved")}
        later = int(time.time()) + 1
        await eventually(lambda: seen.written_through(later), 20)
        logged = await AlertLog(redis_client, prefix).read_range(newest_first=False)
        assert Counter((e.rule, e.kind) for e in logged) == kinds
        assert [(e.rule, e.kind, e.ts_ms) for e in logged] == [
            (e.rule, e.kind, e.ts_ms) for e in seen.events
        ]
        assert flow.recorder is not None and flow.recorder.role == "writer"
    finally:
        if publisher is not None:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
        await flow.stop()
