"""HistoryStore and HistoryLease against the real Redis; rows from a real FlowAggregator."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import numpy as np
import pytest
import redis.asyncio as aioredis

from services.flow.aggregator import FlowAggregator
from services.flow.history import (
    BUCKET_S,
    HistoryLease,
    HistoryStore,
    SecondRow,
    bucket_start,
    pack_row,
    rows_from_frame,
    unpack_row,
)

pytestmark = pytest.mark.integration

HOUR0 = 1_699_999_200  # an hour boundary
T0 = HOUR0 + 100


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def other_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def store(redis_client: aioredis.Redis, prefix: str) -> HistoryStore:
    return HistoryStore(
        redis_client, prefix, failure_statuses=("failed",), dead_letter_queues=("payments.dlq",)
    )


def row(
    second: int,
    counts: dict[str, int] | None = None,
    dead: int = 0,
    depths: dict[str, int | None] | None = None,
    latency: tuple[float | None, float | None, float | None] = (None, None, None),
) -> SecondRow:
    return SecondRow(
        second=second,
        status_counts=counts or {},
        dead_letters=dead,
        queue_depths=depths or {},
        latency_ms=latency,
    )


# --------------------------------------------------------------------------- packing


def test_pack_round_trip_keeps_none_and_exact_floats() -> None:
    original = row(
        T0,
        {"captured": 12, "failed": 3},
        dead=2,
        depths={"payments.dlq": 7, "payments.process": None},
        latency=(0.1 + 0.2, 95.123456789, None),
    )
    assert unpack_row(T0, pack_row(original)) == original
    with_reasons = SecondRow(
        T0, {"failed": 3}, 0, {}, (None, None, None), {"acquirer timeout": 2, "schema": 1}
    )
    assert unpack_row(T0, pack_row(with_reasons)) == with_reasons


def test_rows_written_before_reasons_were_kept_still_read() -> None:
    old = b'[{"failed": 2}, 1, {"q": 3}, [1.0, 2.0, null]]'
    assert unpack_row(T0, old) == SecondRow(T0, {"failed": 2}, 1, {"q": 3}, (1.0, 2.0, None))


def test_rows_from_frame_carries_the_failure_reasons() -> None:
    clock = FakeClock(T0 + 0.5)
    agg = FlowAggregator(capacity_s=60, clock=clock)
    agg.record_event("failed", 5.0, "acquirer outage")
    agg.record_event("failed", 5.0, "acquirer outage")
    clock.now += 1
    frame = agg.frame(5)
    reasons = agg.failure_reasons(T0 - 10, T0 + 1)
    rows = rows_from_frame(frame, T0 + 1, since_second=T0, reasons=reasons)
    assert [(r.second, r.failure_reasons) for r in rows] == [(T0, {"acquirer outage": 2})]


def test_bucket_start_is_the_hour() -> None:
    assert bucket_start(HOUR0) == HOUR0
    assert bucket_start(HOUR0 + BUCKET_S - 1) == HOUR0
    assert bucket_start(HOUR0 + BUCKET_S) == HOUR0 + BUCKET_S


# --------------------------------------------------------------------------- store


async def test_write_read_round_trip_is_exact(store: HistoryStore) -> None:
    rows = [
        row(
            T0,
            {"captured": 10, "failed": 2},
            dead=1,
            depths={"payments.dlq": 4, "payments.process": 100},
            latency=(12.5, 80.25, 120.125),
        ),
        row(T0 + 1, {"captured": 11, "refunded": 1}, depths={"payments.dlq": 5}),
        row(
            T0 + 2,
            {"failed": 4, "authorized": 9},
            dead=3,
            depths={"payments.dlq": None, "payments.process": 98},
            latency=(1.0, None, 3.0),
        ),
    ]
    await store.write_seconds(rows)
    assert await store.read_rows(T0, T0 + 3) == rows

    frame = await store.read_range(T0, T0 + 3)
    assert frame.t.tolist() == [T0, T0 + 1, T0 + 2]
    assert frame.status_names == ("captured", "failed", "refunded", "authorized")
    assert frame.status_counts.tolist() == [[10, 11, 0], [2, 0, 4], [0, 1, 0], [0, 0, 9]]
    assert frame.dead_letters.tolist() == [1, 0, 3]
    assert frame.queue_names == ("payments.dlq", "payments.process")
    np.testing.assert_array_equal(frame.queue_depths, [[4, 5, np.nan], [100, np.nan, 98]])
    np.testing.assert_array_equal(
        frame.latency_ms, [[12.5, np.nan, 1.0], [80.25, np.nan, np.nan], [120.125, np.nan, 3.0]]
    )

    head = frame.headline
    assert head.total_events == 10 + 2 + 11 + 1 + 4 + 9
    assert head.events_per_s == pytest.approx(37 / 3)
    assert head.failure_rate_pct == pytest.approx(6 / 37 * 100)
    assert head.latency_p99_ms == 120.125  # the highest per-second p99 in the window
    assert head.dlq_depth == 5  # the last known depth of the dead-letter queue
    assert head.tap_dropped == 0


async def test_headline_covers_the_last_ten_seconds(store: HistoryStore) -> None:
    await store.write_seconds(
        [row(T0 + i, {"failed": 100}, latency=(1.0, 2.0, 999.0)) for i in range(5)]
        + [row(T0 + i, {"captured": 10}, latency=(1.0, 2.0, 3.0)) for i in range(20, 30)]
    )
    frame = await store.read_range(T0, T0 + 30)
    assert frame.headline.events_per_s == 10.0
    assert frame.headline.failure_rate_pct == 0.0
    assert frame.headline.latency_p99_ms == 3.0
    assert frame.headline.total_events == 600
    assert frame.headline.dlq_depth is None


async def test_seconds_nobody_recorded_read_as_gaps_and_quiet_ones_as_zero(
    store: HistoryStore,
) -> None:
    await store.write_seconds(
        [
            row(T0 + 2, {"captured": 5}, dead=1, depths={"q": 3}, latency=(1.0, 2.0, 3.0)),
            row(T0 + 3, {}),  # recorded, and quiet
        ]
    )
    frame = await store.read_range(T0, T0 + 5)
    assert frame.seconds == 5
    assert frame.t.tolist() == [T0 + i for i in range(5)]
    gap = [0, 1, 4]
    assert np.isnan(frame.status_counts[:, gap]).all() and np.isnan(frame.dead_letters[gap]).all()
    assert frame.status_counts[0, 2:4].tolist() == [5, 0]
    assert frame.dead_letters[2:4].tolist() == [1, 0]
    assert frame.headline.total_events == 5
    assert np.isnan(frame.latency_ms[:, [0, 1, 3, 4]]).all()
    assert np.isnan(frame.queue_depths[0, [0, 1, 3, 4]]).all()

    empty = await store.read_range(T0 + 100, T0 + 160)
    assert empty.seconds == 60
    assert empty.status_names == () and empty.queue_names == ()
    assert empty.status_counts.shape == (0, 60)
    assert empty.queue_depths.shape == (0, 60)
    assert np.isnan(empty.dead_letters).all()  # nobody recorded: a gap
    assert empty.headline.events_per_s == 0.0
    assert empty.headline.failure_rate_pct is None
    assert empty.headline.latency_p99_ms is None
    assert (await store.read_range(T0, T0)).seconds == 0


async def test_rewriting_a_second_replaces_it(
    store: HistoryStore, redis_client: aioredis.Redis, other_client: aioredis.Redis, prefix: str
) -> None:
    first = [row(T0 + i, {"captured": 10, "failed": 1}, dead=1) for i in range(3)]
    await store.write_seconds(first)
    await store.write_seconds(first)  # a retried batch
    # A second writer (another console seeing the same flow) writes the same seconds.
    other = HistoryStore(other_client, prefix)
    await other.write_seconds([row(T0 + 1, {"captured": 12, "failed": 1}, dead=1)])

    frame = await store.read_range(T0, T0 + 3)
    assert frame.status_counts.sum(axis=1).tolist() == [32, 3]
    assert frame.dead_letters.tolist() == [1, 1, 1]
    assert await redis_client.hlen(store.bucket_key(T0)) == 3


async def test_buckets_expire_after_retention_plus_an_hour(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = HistoryStore(redis_client, prefix, retention_s=600)
    await store.write_seconds([row(T0, {"a": 1}), row(T0 + BUCKET_S, {"a": 1})])
    for second in (T0, T0 + BUCKET_S):
        ttl = await redis_client.ttl(store.bucket_key(second))
        assert 600 + BUCKET_S - 5 <= ttl <= 600 + BUCKET_S
    assert store.bucket_key(T0) == f"{prefix}:history:h:{HOUR0}"

    default = HistoryStore(redis_client, prefix)
    await default.write_seconds([row(T0 + 5, {"a": 1})])
    ttl = await redis_client.ttl(default.bucket_key(T0))
    assert 86_400 + BUCKET_S - 5 <= ttl <= 86_400 + BUCKET_S


async def test_iter_range_streams_hour_buckets_in_order(
    store: HistoryStore, redis_client: aioredis.Redis
) -> None:
    start, end = HOUR0 + 1800, HOUR0 + 3 * BUCKET_S + 600  # spans four buckets
    written = [row(s, {"captured": 1 + (s % 7)}, dead=s % 2) for s in range(start, end, 61)]
    await store.write_seconds(written)
    keys = {store.bucket_key(r.second) for r in written}
    assert len(keys) == 4
    assert await redis_client.exists(*keys) == 4

    chunks = [frame async for frame in store.iter_range(start, end)]
    assert [c.seconds for c in chunks] == [3600, 3600, 2400]
    assert [int(c.t[0]) for c in chunks] == [start + i * 3600 for i in range(3)]
    t = np.concatenate([c.t for c in chunks])
    assert np.array_equal(t, np.arange(start, end, dtype=np.float64))
    total = sum(int(np.nansum(c.status_counts)) for c in chunks)
    assert total == sum(r.status_counts["captured"] for r in written)
    dead = sum(int(np.nansum(c.dead_letters)) for c in chunks)
    assert dead == sum(r.dead_letters for r in written)

    whole = await store.read_range(start, end)
    assert np.array_equal(
        np.concatenate([c.status_counts for c in chunks], axis=1),
        whole.status_counts,
        equal_nan=True,
    )

    small = [c.seconds async for c in store.iter_range(start, start + 25, chunk_s=10)]
    assert small == [10, 10, 5]


# --------------------------------------------------------------------------- lease


async def test_two_writers_racing_for_the_lease_one_wins(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, prefix: str
) -> None:
    for round_ in range(5):
        a = HistoryLease(redis_client, prefix, f"console-{round_}")
        b = HistoryLease(other_client, prefix, f"collect-{round_}")
        got = await asyncio.gather(a.acquire(), b.acquire())
        assert sorted(got) == [False, True]
        winner, loser = (a, b) if got[0] else (b, a)
        assert await a.holder() == winner.holder_id
        assert await winner.acquire()  # the holder may acquire again (extends)
        assert not await loser.acquire()
        assert await winner.release()


async def test_only_the_holder_renews_or_releases(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, prefix: str
) -> None:
    holder = HistoryLease(redis_client, prefix, "console-a", ttl_s=10)
    other = HistoryLease(other_client, prefix, "console-b", ttl_s=10)
    assert not await holder.renew()  # nobody holds it yet
    assert await holder.acquire()
    assert not await other.renew()
    assert not await other.release()
    assert await holder.holder() == "console-a"
    assert 9_000 < await redis_client.pttl(holder.key) <= 10_000

    await redis_client.pexpire(holder.key, 2_000)
    assert await holder.renew()
    assert await redis_client.pttl(holder.key) > 9_000

    assert await holder.release()
    assert await holder.holder() is None
    assert not await holder.release()
    assert await other.acquire()
    assert await holder.holder() == "console-b"


async def test_an_expired_lease_lets_another_writer_take_over(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, prefix: str
) -> None:
    crashed = HistoryLease(redis_client, prefix, "crashed", ttl_s=0.3)
    waiting = HistoryLease(other_client, prefix, "waiting", ttl_s=0.3)
    assert await crashed.acquire()
    assert not await waiting.acquire()
    await asyncio.sleep(0.5)  # the holder stopped renewing
    assert await waiting.acquire()
    assert not await crashed.renew()
    assert not await crashed.release()
    assert await waiting.holder() == "waiting"


def test_lease_rejects_bad_arguments(redis_client: aioredis.Redis, prefix: str) -> None:
    with pytest.raises(ValueError):
        HistoryLease(redis_client, "", "x")
    with pytest.raises(ValueError):
        HistoryLease(redis_client, prefix, "")
    with pytest.raises(ValueError):
        HistoryLease(redis_client, prefix, "x", ttl_s=0)
    with pytest.raises(ValueError):
        HistoryStore(redis_client, "a{b}")


# --------------------------------------------------------------------------- rows_from_frame


async def test_rows_from_a_real_aggregator_round_trip(store: HistoryStore) -> None:
    clock = FakeClock(T0 + 0.5)
    agg = FlowAggregator(clock=clock, dead_letter_queues=("payments.dlq",))
    clock.now = T0 + 1.0  # the first full second
    events: dict[int, list[tuple[str, float | None]]] = {
        0: [*[("captured", 10.0)] * 5, *[("failed", 40.0)] * 2],
        1: [*[("captured", 12.0)] * 3],
        # second 2: nothing at all
        3: [("refunded", None), ("failed", 200.0)],
        4: [*[("captured", 5.0)] * 4],  # the current, partial second
    }
    for offset in range(5):
        clock.now = T0 + 1 + offset + 0.1
        if offset == 0:
            agg.record_depth("payments.dlq", 7)
        if offset == 1:
            agg.record_dead_letter()
            agg.record_dead_letter()
        for status, latency in events.get(offset, []):
            agg.record_event(status, latency)
    current = T0 + 5
    frame = agg.frame(30)
    assert int(frame.t[-1]) == current

    assert rows_from_frame(frame, upto_second=current)[0].second < T0  # never observed
    rows = rows_from_frame(frame, upto_second=current, since_second=T0 + 1)
    by_second = {r.second: r for r in rows}
    assert current not in by_second  # the partial second is not written
    assert min(by_second) == T0 + 1
    assert by_second[T0 + 1].status_counts == {"captured": 5, "failed": 2}
    assert by_second[T0 + 1].queue_depths == {"payments.dlq": 7}
    assert by_second[T0 + 2].dead_letters == 2
    assert by_second[T0 + 2].status_counts == {"captured": 3}
    assert by_second[T0 + 3].status_counts == {}  # depth still held, no events
    assert by_second[T0 + 3].latency_ms == (None, None, None)
    assert by_second[T0 + 4].status_counts == {"refunded": 1, "failed": 1}
    p50, _p95, p99 = by_second[T0 + 1].latency_ms
    assert p50 == pytest.approx(10.0, rel=0.04) and p99 == pytest.approx(40.0, rel=0.04)

    await store.write_seconds(rows)
    finished = frame.finished()
    read = await store.read_range(int(finished.t[0]), current)
    assert read.t.tolist() == finished.t.tolist()
    seen = finished.t >= T0 + 1  # before: never observed, a gap when read back
    assert np.isnan(read.dead_letters[~seen]).all()
    for name in read.status_names:
        np.testing.assert_array_equal(
            read.status_counts[read.status_names.index(name)][seen],
            finished.status_counts[finished.status_names.index(name)][seen],
        )
    assert np.nansum(read.status_counts) == finished.status_counts.sum() == 12
    np.testing.assert_array_equal(read.dead_letters[seen], finished.dead_letters[seen])
    np.testing.assert_array_equal(read.latency_ms, finished.latency_ms)
    np.testing.assert_array_equal(
        read.queue_depths[read.queue_names.index("payments.dlq")],
        finished.queue_depths[finished.queue_names.index("payments.dlq")],
    )


def test_rows_from_frame_skips_seconds_before_since() -> None:
    clock = FakeClock(T0 + 0.7)
    agg = FlowAggregator(clock=clock)
    agg.record_event("captured", 1.0)  # the partial first second
    clock.now = T0 + 1.2
    agg.record_event("captured", 1.0)
    clock.now = T0 + 2.0
    frame = agg.frame(10)
    assert [r.second for r in rows_from_frame(frame, T0 + 2)][-2:] == [T0, T0 + 1]
    assert [r.second for r in rows_from_frame(frame, T0 + 2, since_second=T0 + 1)] == [T0 + 1]
    assert not math.isnan(frame.latency_ms[0, -2])
