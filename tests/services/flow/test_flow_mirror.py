"""The parent's mirror of the child's aggregator, fed as the child feeds it."""

from __future__ import annotations

import numpy as np

from services.flow.aggregator import FlowAggregator
from services.flow.mirror import FlowMirror
from services.flow.types import FlowFrame


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def assert_same_frame(a: FlowFrame, b: FlowFrame, first_s: float = -np.inf) -> None:
    """``a`` (the mirror) shows ``b`` (the aggregator); before ``first_s``, the first
    second the child reported, the mirror shows gaps where the aggregator says 0."""
    np.testing.assert_array_equal(a.t, b.t)
    assert a.status_names == b.status_names
    reported = a.t >= first_s
    assert (
        np.isnan(a.status_counts[:, ~reported]).all() and np.isnan(a.dead_letters[~reported]).all()
    )
    assert not b.dead_letters[~reported].any()
    np.testing.assert_array_equal(a.status_counts[:, reported], b.status_counts[:, reported])
    np.testing.assert_array_equal(a.dead_letters[reported], b.dead_letters[reported])
    np.testing.assert_array_equal(a.latency_ms, b.latency_ms)
    assert a.queue_names == b.queue_names
    np.testing.assert_array_equal(a.queue_depths, b.queue_depths)
    assert a.headline == b.headline


def test_the_mirror_fed_as_the_child_feeds_it_builds_the_aggregators_frames() -> None:
    clock = Clock(1_000_000.2)
    sent = int(clock())
    agg = FlowAggregator(capacity_s=120, dead_letter_queues=("dlq",), clock=clock)
    mirror = FlowMirror(capacity_s=120)

    first: list[float] = []

    def update() -> None:  # what FlowChild._queue_update sends
        nonlocal sent
        now = int(clock())
        frame = agg.frame(min(120, max(1, now - sent + 2)))
        first.append(float(frame.t[0]))
        mirror.apply(frame, agg.totals_by_status())
        sent = int(frame.t[-1])

    rng = np.random.default_rng(7)
    statuses = [f"s{i}" for i in range(5)]
    for step in range(400):
        for _ in range(int(rng.integers(0, 20))):
            agg.record_event(
                statuses[int(rng.integers(0, len(statuses)))], float(rng.random() * 50)
            )
        if step % 7 == 0:
            agg.record_dead_letter()
            agg.record_depth("dlq", step)
        if step % 11 == 0:
            agg.record_depth(f"q{step % 3}", step * 2)
        # Updates at ~15 Hz, with a stall of a few seconds now and then.
        clock.now += 5.0 if step % 97 == 0 else 1 / 15
        if step % 3:
            update()
    update()
    for window in (1, 2, 10, 60, 120, 500):
        assert_same_frame(mirror.frame(window), agg.frame(window), first[0])
    assert mirror.totals_by_status() == agg.totals_by_status()
    assert mirror.headline() == agg.headline()


def test_an_empty_mirror_gives_an_empty_frame() -> None:
    frame = FlowMirror(capacity_s=60).frame(30)
    assert frame.seconds == 30
    assert frame.status_names == () and frame.status_counts.shape == (0, 30)
    # Nothing reported: every second is a gap, not zero traffic.
    assert np.all(np.isnan(frame.dead_letters)) and np.all(np.isnan(frame.latency_ms))


def test_seeding_with_history_fills_only_the_seconds_the_child_has_not_reported() -> None:
    clock = Clock(2_000_000.5)
    history = FlowAggregator(capacity_s=120, clock=clock)
    for _ in range(60):  # a minute of history: 3 captured and 1 failed a second
        for status in ("captured", "captured", "captured", "failed"):
            history.record_event(status, 10.0)
        history.record_depth("dlq", 7)
        clock.now += 1
    stored = history.frame(61).finished()  # as read back from Redis

    mirror = FlowMirror(capacity_s=120)
    clock.now -= 10
    live = FlowAggregator(capacity_s=120, clock=clock)  # started 10 s ago
    for _ in range(10):
        live.record_event("captured", 5.0)
        clock.now += 1
    mirror.apply(live.frame(12), live.totals_by_status())
    latest = int(mirror.frame(1).t[-1])
    before = mirror.version

    filled = mirror.seed(stored)

    assert mirror.version > before
    frame = mirror.frame(61)
    assert int(frame.t[-1]) == latest  # the mirror still ends where the child is
    captured = frame.status_counts[frame.status_names.index("captured")]
    failed = frame.status_counts[frame.status_names.index("failed")]
    # Seconds the child reported keep the live counts; earlier ones come from history.
    assert np.all(captured[-11:-1] == 1) and np.all(failed[-12:] == 0)
    seeded = frame.t < latest - 11
    assert np.all(captured[seeded] == 3) and np.all(failed[seeded] == 1)
    assert filled == int(np.count_nonzero(stored.t < latest - 11))
    assert mirror.totals_by_status() == live.totals_by_status()
    assert mirror.seed(stored) == 0  # nothing left to fill
