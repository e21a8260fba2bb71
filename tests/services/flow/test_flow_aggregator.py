"""Per-second buckets, frames and headline numbers, driven by a fake clock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.flow.aggregator import OTHER_STATUS, FlowAggregator
from services.flow.types import LATENCY_PERCENTILES

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **kw: object) -> FlowAggregator:
    return FlowAggregator(clock=clock, **kw)  # type: ignore[arg-type]


def counts_by_name(frame, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    return frame.status_counts[frame.status_names.index(name)]


def test_exact_totals_and_frame_sums(clock: FakeClock) -> None:
    agg = make(clock)
    expected: dict[str, int] = {}
    rng = np.random.default_rng(7)
    for i in range(20_000):
        clock.now = T0 + i * 0.003  # 60 s of traffic
        status = ("captured", "failed", "refunded", "authorized")[int(rng.integers(4))]
        expected[status] = expected.get(status, 0) + 1
        agg.record_event(status, float(rng.uniform(1, 100)))
    assert agg.totals_by_status() == expected
    frame = agg.frame(120)
    assert sorted(frame.status_names) == sorted(expected)
    assert frame.status_counts.sum() == sum(expected.values())
    for name, n in expected.items():
        assert counts_by_name(frame, name).sum() == n
    assert frame.headline.total_events == sum(expected.values())


def test_frame_shapes_and_nans(clock: FakeClock) -> None:
    agg = make(clock)
    frame = agg.frame(30)
    assert frame.seconds == 30
    assert frame.t[-1] == math.floor(T0)
    assert np.all(np.diff(frame.t) == 1.0)
    assert frame.status_names == ()
    assert frame.status_counts.shape == (0, 30)
    assert frame.dead_letters.shape == (30,)
    assert frame.latency_ms.shape == (len(LATENCY_PERCENTILES), 30)
    assert np.isnan(frame.latency_ms).all()
    assert frame.queue_depths.shape == (0, 30)

    agg.record_event("captured", None)
    agg.record_depth("q.a", 5)
    frame = agg.frame(10)
    assert frame.status_counts.shape == (1, 10)
    assert frame.status_counts[0, -1] == 1
    assert np.isnan(frame.latency_ms[:, -1]).all()  # no latency sample
    assert frame.queue_names == ("q.a",)
    assert frame.queue_depths[0, -1] == 5
    assert np.isnan(frame.queue_depths[0, :-1]).all()
    assert frame.status_counts.dtype == np.float64


def test_frame_arrays_are_copies(clock: FakeClock) -> None:
    agg = make(clock)
    agg.record_event("ok", 5.0)
    clock.now += 1
    frame = agg.frame(5)
    frame.status_counts[:] = 99
    frame.dead_letters[:] = 99
    assert agg.frame(5).status_counts.sum() == 1


def test_rollover_across_seconds(clock: FakeClock) -> None:
    agg = make(clock)
    clock.now = T0 + 0.1
    agg.record_event("ok", 10.0)
    agg.record_event("ok", 10.0)
    clock.now = T0 + 0.9
    agg.record_event("failed", 20.0)
    agg.record_dead_letter()
    clock.now = T0 + 1.2
    agg.record_event("ok", 30.0)
    clock.now = T0 + 4.5  # seconds 2 and 3 have nothing
    agg.record_event("ok", None)
    agg.record_dead_letter()
    agg.record_dead_letter()
    frame = agg.frame(5)
    assert list(frame.t) == [T0 + s for s in range(5)]
    assert list(counts_by_name(frame, "ok")) == [2, 1, 0, 0, 1]
    assert list(counts_by_name(frame, "failed")) == [1, 0, 0, 0, 0]
    assert list(frame.dead_letters) == [1, 0, 0, 0, 2]
    p50 = frame.latency_ms[0]
    assert p50[0] == pytest.approx(10.0, rel=0.04)
    assert p50[1] == pytest.approx(30.0, rel=0.04)
    assert np.isnan(p50[2:]).all()


def test_frame_advances_with_the_clock_alone(clock: FakeClock) -> None:
    agg = make(clock)
    agg.record_event("ok", 1.0)
    clock.now += 3
    frame = agg.frame(4)
    assert frame.t[-1] == T0 + 3
    assert list(frame.status_counts[0]) == [1, 0, 0, 0]


def test_capacity_wraparound(clock: FakeClock) -> None:
    agg = make(clock, capacity_s=20)
    for sec in range(50):
        clock.now = T0 + sec + 0.5
        for _ in range(sec):
            agg.record_event("ok", float(sec + 1))
    frame = agg.frame(20)
    assert list(frame.t) == [T0 + s for s in range(30, 50)]
    assert list(frame.status_counts[0]) == list(range(30, 50))
    assert agg.frame(1000).seconds == 20  # clamped to the capacity
    assert agg.totals_by_status() == {"ok": sum(range(50))}
    # Latency of each wrapped second is that second's, not a stale one.
    assert frame.latency_ms[0, 0] == pytest.approx(31.0, rel=0.04)


def test_long_idle_gap_leaves_no_stale_data(clock: FakeClock) -> None:
    agg = make(clock, capacity_s=30)
    agg.record_event("ok", 1.0)
    agg.record_depth("q", 7)
    clock.now += 30 * 5 + 0.25  # several whole rings later, exact wrap alignment
    frame = agg.frame(30)
    assert frame.status_counts.sum() == 0
    assert np.isnan(frame.queue_depths).all()
    assert np.isnan(frame.latency_ms).all()


def test_latency_percentiles(clock: FakeClock) -> None:
    agg = make(clock)
    for ms in range(1, 1001):
        agg.record_event("ok", float(ms))
    frame = agg.frame(1)
    p50, p95, p99 = frame.latency_ms[:, -1]
    assert p50 == pytest.approx(500, rel=0.04)
    assert p95 == pytest.approx(950, rel=0.04)
    assert p99 == pytest.approx(990, rel=0.04)


def test_latency_sampling_is_bounded_and_unbiased(clock: FakeClock) -> None:
    agg = make(clock)
    n = 200_000
    values = np.linspace(1.0, 2000.0, n)
    for value in values:
        agg.record_event("ok", float(value))
    assert len(agg._cur_latency) <= 8192
    p50, p95, p99 = agg.frame(1).latency_ms[:, -1]
    assert p50 == pytest.approx(1000, rel=0.05)
    assert p95 == pytest.approx(1900, rel=0.05)
    assert p99 == pytest.approx(1980, rel=0.05)
    assert agg.totals_by_status() == {"ok": n}


def test_zero_and_extreme_latencies(clock: FakeClock) -> None:
    agg = make(clock)
    agg.record_event("ok", 0.0)
    agg.record_event("ok", 0.0)
    agg.record_event("ok", 1e12)
    p50, _, p99 = agg.frame(1).latency_ms[:, -1]
    assert p50 == 0.0
    assert p99 == 1e7  # the top bin


def test_headline(clock: FakeClock) -> None:
    agg = make(
        clock, failure_statuses=("failed", "Declined"), dead_letter_queues=("dlq.a", "dlq.b")
    )
    for sec in range(12):
        clock.now = T0 + sec + 0.5
        for i in range(10):
            status = "failed" if i < 2 else "declined" if i == 2 else "captured"
            agg.record_event(status, 100.0 if i else 1000.0)
    clock.now = T0 + 12.1
    agg.record_event("captured", 5.0)  # current partial second: not in the headline window
    agg.record_depth("dlq.a", 4)
    agg.record_depth("other.q", 100)
    agg.record_tap_dropped(3)
    agg.record_tap_dropped(2)
    head = agg.frame(60).headline
    assert head.events_per_s == 10.0
    assert head.failure_rate_pct == pytest.approx(30.0)
    assert head.dlq_depth == 4
    assert head.latency_p99_ms == pytest.approx(1000, rel=0.04)
    assert head.tap_dropped == 5
    assert head.total_events == 121

    agg.record_depth("dlq.b", 6)
    assert agg.headline().dlq_depth == 10
    agg.record_depth("dlq.a", None)  # went missing: unknown, not its old depth
    assert agg.headline().dlq_depth == 6


def test_headline_before_ten_seconds_and_when_idle(clock: FakeClock) -> None:
    agg = make(clock, dead_letter_queues=("dlq",))
    head = agg.headline()
    assert head.events_per_s == 0.0
    assert head.failure_rate_pct is None
    assert head.dlq_depth is None
    assert head.latency_p99_ms is None
    for _ in range(8):
        agg.record_event("ok", None)
    clock.now += 2  # two complete seconds so far
    head = agg.headline()
    assert head.events_per_s == 4.0
    assert head.failure_rate_pct == 0.0
    assert head.latency_p99_ms is None
    clock.now += 60
    head = agg.headline()
    assert head.events_per_s == 0.0
    assert head.failure_rate_pct is None
    assert head.total_events == 8


def test_depths_are_held_briefly(clock: FakeClock) -> None:
    agg = make(clock, depth_hold_s=3)
    agg.record_depth("q", 11)
    clock.now += 2
    agg.record_event("ok", None)
    clock.now += 6
    frame = agg.frame(9)
    depths = frame.queue_depths[0]
    assert list(depths[:4]) == [11, 11, 11, 11]
    assert np.isnan(depths[4:]).all()
    agg.record_depth("q", None)
    assert np.isnan(agg.frame(1).queue_depths[0, -1])


def test_status_axis_grows_and_caps(clock: FakeClock) -> None:
    agg = make(clock, max_statuses=20)
    for i in range(50):
        agg.record_event(f"s{i}", None)
        if i % 7 == 0:
            clock.now += 1
    totals = agg.totals_by_status()
    assert len(totals) == 21
    assert totals[OTHER_STATUS] == 30
    assert sum(totals.values()) == 50
    frame = agg.frame(60)
    assert frame.status_names[:20] == tuple(f"s{i}" for i in range(20))
    assert frame.status_counts.sum() == 50
    assert len(agg._status_rows) == 21  # overflowed names are not remembered


def test_version_changes_on_every_record(clock: FakeClock) -> None:
    agg = make(clock)
    versions = [agg.version]
    agg.record_event("ok", None)
    versions.append(agg.version)
    agg.record_dead_letter()
    versions.append(agg.version)
    agg.record_depth("q", 1)
    versions.append(agg.version)
    agg.record_tap_dropped(1)
    versions.append(agg.version)
    assert versions == sorted(set(versions))
    agg.frame(10)
    assert agg.version == versions[-1]


def test_clock_stepping_back_keeps_counting(clock: FakeClock) -> None:
    agg = make(clock)
    clock.now = T0 + 5
    agg.record_event("ok", None)
    clock.now = T0 + 2  # NTP stepped the clock back
    agg.record_event("ok", None)
    agg.record_dead_letter()
    assert agg.totals_by_status() == {"ok": 2}
    frame = agg.frame(3)
    assert frame.t[-1] == T0 + 5
    assert frame.status_counts[0, -1] == 2
    assert frame.dead_letters[-1] == 1


def test_failure_reasons_per_finished_second(clock: FakeClock) -> None:
    agg = make(clock, capacity_s=20, max_reasons=2)
    start = int(clock.now)
    agg.record_event("failed", None, "acquirer timeout")
    agg.record_event("failed", None, "acquirer timeout")
    agg.record_event("captured", None)
    clock.now += 1
    agg.record_event("failed", None, "risk engine down")
    agg.record_event("failed", None, "schema")  # a third distinct reason: "other"
    assert agg.failure_reasons(start, start + 1) == {start: {"acquirer timeout": 2}}
    assert start + 1 not in agg.failure_reasons(start, start + 10)  # still filling
    clock.now += 1
    assert agg.failure_reasons(start, start + 10) == {
        start: {"acquirer timeout": 2},
        start + 1: {"risk engine down": 1, "other": 1},
    }
    clock.now += 30  # past the ring's capacity: old seconds are gone
    agg.record_event("failed", None, "acquirer timeout")
    clock.now += 1
    assert list(agg.failure_reasons(0, 2**40)) == [start + 32]
