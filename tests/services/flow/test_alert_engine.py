"""The alert engine's transitions and hysteresis on a simulated flow.

The tests simulate a flow second by second: per-second series built with
numpy (normal → incident → recovery), an injected clock half-way through each
second, and at each second a frame of the recent past whose last column is the
current, still-filling second (as ``FlowAggregator.frame`` hands it over).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.alerts.rules import (
    DeadLetterRateRule,
    FailureRateRule,
    FlowStoppedRule,
    LatencyRule,
    QueueDepthRule,
)
from services.alerts.timeline import incident_window
from services.flow.alert_engine import AlertEngine
from services.flow.types import FlowFrame, Headline

T0 = 1_700_000_000
QUEUE = "payments.process"
HEADLINE = Headline(
    events_per_s=0.0,
    failure_rate_pct=None,
    dlq_depth=None,
    latency_p99_ms=None,
    tap_dropped=0,
    total_events=0,
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Flow:
    """A simulated flow: one column per second from T0 (statuses ok, failed)."""

    ok: np.ndarray
    failed: np.ndarray
    dead: np.ndarray
    p99: np.ndarray
    depth: np.ndarray

    @classmethod
    def quiet(cls, seconds: int) -> Flow:
        return cls(
            ok=np.zeros(seconds),
            failed=np.zeros(seconds),
            dead=np.zeros(seconds),
            p99=np.full(seconds, np.nan),
            depth=np.full(seconds, np.nan),
        )

    @classmethod
    def steady(cls, seconds: int, rate: float = 100.0, seed: int = 7) -> Flow:
        """Normal traffic: ``rate`` events/s, ~1 % failed, p99 ~300 ms, a small queue."""
        rng = np.random.default_rng(seed)
        total = rng.poisson(rate, seconds).astype(np.float64)
        failed = rng.binomial(total.astype(np.int64), 0.01).astype(np.float64)
        return cls(
            ok=total - failed,
            failed=failed,
            dead=rng.poisson(0.1, seconds).astype(np.float64),
            p99=rng.normal(300.0, 30.0, seconds),
            depth=np.clip(rng.normal(50.0, 10.0, seconds), 0, None).round(),
        )

    def frame(self, sec: int, window: int) -> FlowFrame:
        """The frame at second index ``sec``: ``window`` complete seconds plus ``sec`` itself."""
        lo = max(0, sec - window)
        cols = slice(lo, sec + 1)
        p99 = self.p99[cols]
        return FlowFrame(
            t=(T0 + np.arange(lo, sec + 1)).astype(np.float64),
            status_names=("ok", "failed"),
            status_counts=np.vstack((self.ok[cols], self.failed[cols])),
            dead_letters=self.dead[cols].copy(),
            latency_ms=np.vstack((p99 / 3, p99 / 1.5, p99)),
            queue_names=(QUEUE,),
            queue_depths=self.depth[cols][np.newaxis, :].copy(),
            headline=HEADLINE,
        )


def run(
    engine: AlertEngine, clock: Clock, flow: Flow, start: int = 0, stop: int | None = None
) -> list[AlertEvent]:
    """Evaluate once per simulated second, half-way through it; all transitions."""
    events: list[AlertEvent] = []
    for sec in range(start, flow.ok.shape[0] if stop is None else stop):
        clock.now = T0 + sec + 0.5
        events.extend(engine.evaluate(flow.frame(sec, engine.window_s)))
    return events


def kinds(events: list[AlertEvent]) -> list[tuple[str, str]]:
    return [(e.rule, e.kind) for e in events]


def at(event: AlertEvent) -> float:
    """An event's second index in the simulation."""
    return event.ts - 0.5 - T0


def engine_for(*rules: object) -> tuple[AlertEngine, Clock]:
    clock = Clock(T0)
    return AlertEngine(rules, clock), clock  # type: ignore[arg-type]


# --------------------------------------------------------------------------- failure rate


def test_failure_rate_fires_during_an_incident_and_resolves_after_recovery() -> None:
    flow = Flow.steady(480)
    incident = slice(120, 240)
    flow.failed[incident] = np.round((flow.ok[incident] + flow.failed[incident]) * 0.2)
    flow.ok[incident] = np.round(flow.failed[incident] * 4)
    engine, clock = engine_for(FailureRateRule())

    events = run(engine, clock, flow, stop=200)
    assert kinds(events) == [("failure_rate", "firing")]
    # 20 % failures push a 60 s window past 5 % after ~13 seconds of incident
    assert 120 < at(events[0]) <= 140
    assert events[0].value is not None and events[0].value > 5
    (alert,) = engine.active()
    assert alert.rule == "failure_rate" and alert.severity == "critical"
    assert alert.since == events[0].ts and alert.clear_since is None
    assert alert.message == "failure rate 20.0 % over 60 s (threshold 5 %)"

    events = run(engine, clock, flow, start=200)
    assert kinds(events) == [("failure_rate", "resolved")]
    # the window drops under 5 % ~47 s after the incident, then 30 s of hysteresis
    assert 240 + 60 < at(events[0]) <= 240 + 90
    assert events[0].message.startswith("resolved: failure rate 1.")
    assert engine.active() == []


def test_failure_rate_is_not_judged_on_too_few_events() -> None:
    flow = Flow.quiet(300)
    flow.failed[::4] = 1  # 15 events a minute, all failed
    engine, clock = engine_for(FailureRateRule(min_events=20))
    assert run(engine, clock, flow) == []


def test_failure_rate_matches_statuses_case_insensitively() -> None:
    flow = Flow.steady(120)
    engine, clock = engine_for(FailureRateRule(failure_statuses=("OK",)))
    events = run(engine, clock, flow)
    assert kinds(events) == [("failure_rate", "firing")]  # 99 % "failures"


def test_a_rate_hovering_at_the_threshold_does_not_flap() -> None:
    # 100 events/s; 20 s at 4 % failed, 20 s at 6 %, ...: the 60 s rate wobbles
    # around 5 % (4.67 ↔ 5.33), never false for as long as 30 s.
    seconds = 600
    flow = Flow.quiet(seconds)
    phase = (np.arange(seconds) // 20) % 2
    flow.failed[:] = np.where(phase == 0, 4.0, 6.0)
    flow.ok[:] = 100.0 - flow.failed
    flow.failed[480:] = 0.0  # then it recovers for good
    flow.ok[480:] = 100.0

    engine, clock = engine_for(FailureRateRule())
    events = run(engine, clock, flow)
    assert kinds(events) == [("failure_rate", "firing"), ("failure_rate", "resolved")]
    assert at(events[1]) > 480

    flappy, clock = engine_for(FailureRateRule(resolve_after_s=0))
    flapped = run(flappy, clock, flow)
    assert len(flapped) > 10  # without hysteresis the same flow flaps


def test_the_current_partial_second_is_ignored() -> None:
    flow = Flow.steady(90)
    flow.failed[-1] = 1e6  # a huge, still-filling second
    engine, clock = engine_for(FailureRateRule(), DeadLetterRateRule())
    flow.dead[-1] = 1e6
    assert run(engine, clock, flow) == []


# --------------------------------------------------------------------------- dead letters


def test_dead_letter_rate_fires_and_resolves() -> None:
    flow = Flow.steady(400)
    flow.dead[100:160] = 2.0  # 120 a minute
    engine, clock = engine_for(DeadLetterRateRule(per_minute=30))

    events = run(engine, clock, flow)
    assert kinds(events) == [("dead_letter_rate", "firing"), ("dead_letter_rate", "resolved")]
    # more than 30 in 60 s after ~16 seconds of 2/s
    assert 100 < at(events[0]) <= 120
    assert events[0].message.endswith("in the last minute (threshold 30/min)")
    # the window holds <= 30 after ~45 s of recovery, plus 30 s of hysteresis
    assert 160 + 40 < at(events[1]) <= 160 + 80
    assert events[1].value is not None and events[1].value <= 30


def test_dead_letter_rate_over_a_shorter_window_is_scaled_to_a_minute() -> None:
    flow = Flow.steady(200)
    flow.dead[100:110] = 1.0  # 60 a minute, for 10 s
    engine, clock = engine_for(DeadLetterRateRule(per_minute=30, window_s=10, resolve_after_s=5))

    events = run(engine, clock, flow)
    assert kinds(events) == [("dead_letter_rate", "firing"), ("dead_letter_rate", "resolved")]
    # more than 30 a minute once 6 arrived within 10 s
    assert 105 <= at(events[0]) <= 108
    assert events[0].message.endswith("in the last 10 s (36/min) (threshold 30/min)")
    assert events[0].value == 36.0
    assert 110 + 5 < at(events[1]) <= 110 + 15


# --------------------------------------------------------------------------- latency


def test_latency_fires_on_a_slow_period_not_on_a_slow_second() -> None:
    flow = Flow.steady(500)
    flow.p99[50] = 60_000.0  # one very slow second
    flow.p99[100:103] = 10_000.0  # and a slow blip
    flow.p99[200:300] = 3_000.0
    flow.p99[250:260] = np.nan  # seconds without a latency sample are skipped
    engine, clock = engine_for(LatencyRule(p99_ms=2000, window_s=60))

    events = run(engine, clock, flow)
    assert kinds(events) == [("latency_p99", "firing"), ("latency_p99", "resolved")]
    # the median p99 of the window passes 2 s once half of its seconds are slow
    assert 200 + 25 < at(events[0]) <= 200 + 35
    assert events[0].message == "latency p99 3000 ms over 60 s (threshold 2000 ms)"
    assert 300 + 25 + 30 < at(events[1]) <= 300 + 35 + 30


def test_latency_is_not_judged_without_enough_samples() -> None:
    flow = Flow.quiet(200)
    flow.p99[::10] = 5_000.0  # 6 sampled seconds a minute
    engine, clock = engine_for(LatencyRule(min_seconds=10))
    assert run(engine, clock, flow) == []


# --------------------------------------------------------------------------- queue depth


def test_queue_depth_above_max_fires_and_resolves() -> None:
    flow = Flow.steady(300)
    flow.depth[100:150] = 6_000.0
    engine, clock = engine_for(QueueDepthRule(QUEUE, max_depth=5_000))

    events = run(engine, clock, flow)
    assert kinds(events) == [
        (f"queue_depth:{QUEUE}", "firing"),
        (f"queue_depth:{QUEUE}", "resolved"),
    ]
    assert at(events[0]) == 101  # the first complete second above the max
    assert events[0].message == f"queue {QUEUE} depth 6000 (max 5000)"
    assert at(events[1]) == 150 + 1 + 30


def test_queue_growing_for_minutes_is_detected() -> None:
    seconds = 900
    rng = np.random.default_rng(3)
    flow = Flow.steady(seconds)
    # flat, then +2/s for 7 minutes, then flat at the top; polling noise throughout
    rise = np.clip(np.arange(seconds) - 120, 0, 420) * 2.0
    flow.depth[:] = np.round(100.0 + rise + rng.normal(0, 5, seconds))
    flow.depth[1::2] = np.nan  # polled every other second
    engine, clock = engine_for(QueueDepthRule(QUEUE, growing_for_s=300))
    assert engine.window_s == 360 + 1

    events = run(engine, clock, flow)
    assert kinds(events) == [
        (f"queue_depth:{QUEUE}", "firing"),
        (f"queue_depth:{QUEUE}", "resolved"),
    ]
    # six minute-averages each > 10 above the previous: the oldest minute may be flat,
    # the next one must already hold some growth
    assert 120 + 240 <= at(events[0]) <= 120 + 300
    assert "growing for 5 min" in events[0].message
    # resolves once the two newest minutes are flat (after 600), plus 30 s
    assert 630 < at(events[1]) <= 720


def test_a_queue_that_drains_every_minute_is_not_growing() -> None:
    seconds = 900
    flow = Flow.steady(seconds)
    flow.depth[:] = (np.arange(seconds) % 60) * 10.0  # sawtooth: fills, then drains
    engine, clock = engine_for(QueueDepthRule(QUEUE, growing_for_s=300))
    assert run(engine, clock, flow) == []


def test_slow_growth_and_unknown_depths_are_not_growing() -> None:
    seconds = 900
    flow = Flow.steady(seconds)
    flow.depth[:] = np.arange(seconds) * 0.1  # 6 a minute: under min_rise (10 a step)
    engine, clock = engine_for(QueueDepthRule(QUEUE, growing_for_s=300))
    assert run(engine, clock, flow) == []
    faster, clock = engine_for(QueueDepthRule(QUEUE, growing_for_s=300, min_rise=5))
    assert kinds(run(faster, clock, flow)) == [(f"queue_depth:{QUEUE}", "firing")]

    flow.depth[:] = np.nan  # the queue is missing: its depth is never known
    engine, clock = engine_for(QueueDepthRule(QUEUE, max_depth=0, growing_for_s=60))
    assert run(engine, clock, flow) == []
    other, clock = engine_for(QueueDepthRule("not.polled", max_depth=0, growing_for_s=60))
    assert run(other, clock, Flow.steady(300)) == []


# --------------------------------------------------------------------------- flow stopped


def test_flow_stopped_never_fires_before_any_traffic() -> None:
    engine, clock = engine_for(FlowStoppedRule(silent_s=30))
    assert run(engine, clock, Flow.quiet(600)) == []
    assert engine.active() == []


def test_flow_stopped_fires_after_silence_and_resolves_when_events_return() -> None:
    flow = Flow.quiet(500)
    traffic = Flow.steady(500)
    for part in (slice(100, 200), slice(300, 500)):  # idle, flow, stop, flow again
        flow.ok[part] = traffic.ok[part]
    engine, clock = engine_for(FlowStoppedRule(silent_s=30))

    events = run(engine, clock, flow)
    assert kinds(events) == [("flow_stopped", "firing"), ("flow_stopped", "resolved")]
    # last busy second 199, silent from 200: 30 complete silent seconds at second 230
    assert at(events[0]) == 230
    assert events[0].message == "no events for 30 s (threshold 30 s)"
    assert at(events[1]) == 300 + 1 + 30


def test_dead_letters_alone_are_traffic() -> None:
    flow = Flow.quiet(100)
    flow.dead[10] = 1.0
    engine, clock = engine_for(FlowStoppedRule(silent_s=30))
    events = run(engine, clock, flow)
    assert [at(e) for e in events] == [41]


# --------------------------------------------------------------------------- engine


def test_active_lists_critical_first_and_marks_a_pending_resolution() -> None:
    flow = Flow.steady(200)
    flow.dead[50:130] = 3.0
    flow.dead[130:] = 0.0
    flow.ok[130:] = 0.0
    flow.failed[130:] = 0.0
    engine, clock = engine_for(DeadLetterRateRule(), FlowStoppedRule(silent_s=30))
    run(engine, clock, flow, stop=185)
    alerts = engine.active()
    assert [a.rule for a in alerts] == ["flow_stopped", "dead_letter_rate"]
    assert alerts[0].value == 54.0  # silent since second 130
    dead = alerts[1]
    assert dead.since < alerts[0].since
    assert dead.clear_since is not None  # under 30 a minute again, not yet resolved


def test_engine_refuses_duplicate_names_and_reports_its_window() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        AlertEngine([LatencyRule(), LatencyRule()])
    assert AlertEngine([]).window_s == 2
    assert AlertEngine([FailureRateRule(window_s=120), FlowStoppedRule()]).window_s == 121


@pytest.mark.integration
async def test_engine_to_log_to_incident_window(log: AlertLog) -> None:
    flow = Flow.steady(600)
    flow.failed[200:300] = 50.0
    engine, clock = engine_for(FailureRateRule(), DeadLetterRateRule())
    await log.extend(run(engine, clock, flow))

    stored = await log.read_range()
    assert kinds(stored) == [("failure_rate", "resolved"), ("failure_rate", "firing")]
    firing, resolved = stored[1], stored[0]
    assert incident_window(stored, now=T0 + 600) == (
        firing.ts_ms - 5 * 60 * 1000,
        resolved.ts_ms,
    )
