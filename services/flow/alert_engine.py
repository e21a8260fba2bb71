"""The alert engine: turns flow frames into firing and resolved alerts.

The engine looks only at *complete* seconds: columns of a ``FlowFrame`` with
``t >= int(clock())`` (the current, still-filling second) are ignored, so a
frame from ``FlowAggregator.frame`` and a frame read back from history are
judged alike. A rule's window of ``w`` seconds is the ``w`` complete seconds
``[now - w, now)``; ``AlertEngine.window_s`` is the frame length to ask for.
The rules are ``services.alerts.rules``; the alerts and their transitions are
``services.alerts.model``; their log in Redis is ``services.alerts.log``.

Hysteresis: a rule fires on the first evaluation whose condition holds, and
resolves only once its condition has been false on every evaluation for
``resolve_after_s`` seconds (default 30); a true evaluation in between keeps
it firing. ``evaluate`` returns the transitions only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from services.alerts.model import Alert, AlertEvent
from services.alerts.rules import (
    AlertRule,
    DeadLetterRateRule,
    FailureRateRule,
    FlowStoppedRule,
    LatencyRule,
    QueueDepthRule,
)
from services.flow.types import LATENCY_PERCENTILES, FlowFrame

_P99_ROW: Final = LATENCY_PERCENTILES.index(99)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Check:
    breached: bool
    value: float | None
    message: str


@dataclass
class _State:
    since: float
    value: float | None
    message: str
    clear_since: float | None = None


class AlertEngine:
    """Evaluates rules on successive frames and reports firing/resolved transitions.

    Not thread-safe: call it from one thread (the GUI's frame timer, or a
    collector's loop). See the module docstring for windows and hysteresis.
    """

    def __init__(self, rules: Iterable[AlertRule], clock: Callable[[], float] = time.time) -> None:
        self._rules = tuple(rules)
        names = [rule.name for rule in self._rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate alert rule names: {', '.join(duplicates)}")
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._last_event_sec: int | None = None

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        return self._rules

    @property
    def window_s(self) -> int:
        """How many seconds a frame must span for every rule (plus the partial second)."""
        return max((rule.needs_s for rule in self._rules), default=1) + 1

    def active(self) -> list[Alert]:
        """The firing alerts, critical first, then oldest first."""
        alerts = [
            Alert(
                rule=rule.name,
                severity=rule.severity,
                since=state.since,
                value=state.value,
                message=state.message,
                clear_since=state.clear_since,
            )
            for rule in self._rules
            if (state := self._states.get(rule.name)) is not None
        ]
        alerts.sort(key=lambda a: (a.severity != "critical", a.since))
        return alerts

    def evaluate(self, frame: FlowFrame) -> list[AlertEvent]:
        """Judge every rule on ``frame``; the transitions it caused, in rule order."""
        now = float(self._clock())
        now_sec = math.floor(now)
        complete = frame.t < now_sec
        self._note_traffic(frame, complete)
        events: list[AlertEvent] = []
        for rule in self._rules:
            check = self._check(rule, frame, complete, now_sec)
            event = self._transition(rule, check, now)
            if event is not None:
                events.append(event)
        return events

    # -- internals -------------------------------------------------------------

    def _transition(self, rule: AlertRule, check: _Check, now: float) -> AlertEvent | None:
        state = self._states.get(rule.name)
        if check.breached:
            if state is None:
                self._states[rule.name] = _State(now, check.value, check.message)
                return AlertEvent(
                    now, rule.name, "firing", check.value, check.message, rule.severity
                )
            state.value, state.message, state.clear_since = check.value, check.message, None
            return None
        if state is None:
            return None
        state.value = check.value
        if state.clear_since is None:
            state.clear_since = now
        if now - state.clear_since < rule.resolve_after_s:
            return None
        del self._states[rule.name]
        return AlertEvent(
            now, rule.name, "resolved", check.value, f"resolved: {check.message}", rule.severity
        )

    def _note_traffic(self, frame: FlowFrame, complete: npt.NDArray[np.bool_]) -> None:
        per_second = frame.dead_letters + frame.status_counts.sum(axis=0)
        busy = frame.t[complete & (per_second > 0)]
        if busy.size:
            latest = int(busy.max())
            if self._last_event_sec is None or latest > self._last_event_sec:
                self._last_event_sec = latest

    def _check(
        self, rule: AlertRule, frame: FlowFrame, complete: npt.NDArray[np.bool_], now_sec: int
    ) -> _Check:
        def window(seconds: int) -> npt.NDArray[np.bool_]:
            return complete & (frame.t >= now_sec - seconds)

        if isinstance(rule, FailureRateRule):
            return _failure_rate(rule, frame, window(rule.window_s))
        if isinstance(rule, DeadLetterRateRule):
            count = float(frame.dead_letters[window(rule.window_s)].sum())
            rate = count * 60.0 / rule.window_s
            if rule.window_s == 60:
                message = f"dead letters {count:g} in the last minute"
            else:
                message = f"dead letters {count:g} in the last {rule.window_s} s ({rate:.3g}/min)"
            return _Check(
                rate > rule.per_minute,
                rate,
                f"{message} (threshold {rule.per_minute}/min)",
            )
        if isinstance(rule, QueueDepthRule):
            return _queue_depth(rule, frame, complete, now_sec)
        if isinstance(rule, LatencyRule):
            return _latency(rule, frame, window(rule.window_s))
        return self._flow_stopped(rule, now_sec)

    def _flow_stopped(self, rule: FlowStoppedRule, now_sec: int) -> _Check:
        if self._last_event_sec is None:
            return _Check(False, None, "no events yet: the flow has not started")
        silent = float(max(0, now_sec - (self._last_event_sec + 1)))
        return _Check(
            silent >= rule.silent_s,
            silent,
            f"no events for {silent:g} s (threshold {rule.silent_s} s)",
        )


def _failure_rate(rule: FailureRateRule, frame: FlowFrame, in_window: Any) -> _Check:
    counts = frame.status_counts[:, in_window]
    total = float(counts.sum())
    statuses = {s.lower() for s in rule.failure_statuses}
    rows = [i for i, name in enumerate(frame.status_names) if name.lower() in statuses]
    failures = float(counts[rows].sum()) if rows else 0.0
    if total < rule.min_events:
        return _Check(
            False,
            None,
            f"failure rate not judged: {total:g} events over {rule.window_s} s "
            f"(fewer than {rule.min_events})",
        )
    rate = failures / total * 100.0
    return _Check(
        rate > rule.threshold_pct,
        rate,
        f"failure rate {rate:.1f} % over {rule.window_s} s (threshold {rule.threshold_pct:g} %)",
    )


def _latency(rule: LatencyRule, frame: FlowFrame, in_window: Any) -> _Check:
    p99 = frame.latency_ms[_P99_ROW, in_window]
    sampled = p99[~np.isnan(p99)]
    if sampled.size < rule.min_seconds:
        return _Check(
            False,
            None,
            f"latency p99 not judged: {sampled.size} seconds with samples over "
            f"{rule.window_s} s (fewer than {rule.min_seconds})",
        )
    value = float(np.median(sampled))
    return _Check(
        value > rule.p99_ms,
        value,
        f"latency p99 {value:.0f} ms over {rule.window_s} s (threshold {rule.p99_ms:g} ms)",
    )


def _queue_depth(
    rule: QueueDepthRule, frame: FlowFrame, complete: npt.NDArray[np.bool_], now_sec: int
) -> _Check:
    if rule.queue not in frame.queue_names:
        return _Check(False, None, f"queue {rule.queue} depth unknown")
    depths = frame.queue_depths[frame.queue_names.index(rule.queue)]
    recent = complete & (frame.t >= now_sec - rule.step_s) & ~np.isnan(depths)
    current = float(depths[recent][np.argmax(frame.t[recent])]) if recent.any() else None

    if rule.max_depth is not None and current is not None and current > rule.max_depth:
        return _Check(True, current, f"queue {rule.queue} depth {current:g} (max {rule.max_depth})")
    if rule.growing_for_s is not None:
        steps = rule.growing_for_s // rule.step_s + 1
        means = _step_means(
            frame.t, depths, complete, now_sec=now_sec, step_s=rule.step_s, steps=steps
        )
        if means is not None and bool(np.all(np.diff(means) > rule.min_rise)):
            minutes = rule.growing_for_s / 60
            return _Check(
                True,
                current,
                f"queue {rule.queue} growing for {minutes:g} min: "
                f"{means[0]:.0f} → {means[-1]:.0f} (step average)",
            )
    shown = "unknown" if current is None else f"{current:g}"
    limit = "" if rule.max_depth is None else f" (max {rule.max_depth})"
    return _Check(False, current, f"queue {rule.queue} depth {shown}{limit}")


def _step_means(
    t: FloatArray,
    depths: FloatArray,
    complete: npt.NDArray[np.bool_],
    *,
    now_sec: int,
    step_s: int,
    steps: int,
) -> FloatArray | None:
    """Mean depth of each of the last ``steps`` steps, oldest first; None if one has no sample."""
    start = now_sec - steps * step_s
    known = complete & (t >= start) & ~np.isnan(depths)
    index = ((t[known] - start) // step_s).astype(np.intp)
    counts = np.bincount(index, minlength=steps)
    if counts.shape[0] != steps or not bool(np.all(counts > 0)):
        return None
    sums = np.bincount(index, weights=depths[known], minlength=steps)
    means: FloatArray = sums / counts
    return means
