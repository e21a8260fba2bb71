"""Alert rules over the live flow, the engine that turns frames into alerts, and their log.

Rules are frozen dataclasses whose fields map one to one onto a profile table
(``rule_from_table(kind, table)``; ``RULE_KINDS`` names the kinds). Every rule
has a ``name`` (unique within an engine), a ``severity`` and ``resolve_after_s``.

The engine looks only at *complete* seconds: columns of a ``FlowFrame`` with
``t >= int(clock())`` (the current, still-filling second) are ignored, so a
frame from ``FlowAggregator.frame`` and a frame read back from history are
judged alike. A rule's window of ``w`` seconds is the ``w`` complete seconds
``[now - w, now)``; ``AlertEngine.window_s`` is the frame length to ask for.

Hysteresis: a rule fires on the first evaluation whose condition holds, and
resolves only once its condition has been false on every evaluation for
``resolve_after_s`` seconds (default 30); a true evaluation in between keeps
it firing. ``evaluate`` returns the transitions only.

Redis key layout of ``AlertLog`` (``P`` is the profile's ``redis_prefix``)::

    P:alerts    STREAM  ts (epoch ms), rule, kind (firing|resolved), severity,
                        value ("" when unknown), message (XADD MAXLEN ~ 100000)

Stream ids carry the event time: an event is added as ``<ts ms>-*``, so range
queries by stream id are queries by event time. An event older than the
stream's newest entry (a writer with a clock behind another's) is added with
the server's time instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.alerts.rules import (
    RULE_KINDS,
    AlertRule,
    DeadLetterRateRule,
    FailureRateRule,
    FlowStoppedRule,
    LatencyRule,
    QueueDepthRule,
    Severity,
    default_rules,
    rule_from_table,
)
from services.flow.types import LATENCY_PERCENTILES, FlowFrame

AlertKind = Literal["firing", "resolved"]

__all__ = [  # the rules are re-exported: callers import them from here too
    "ALERTS_MAXLEN",
    "INCIDENT_LEAD_MS",
    "RULE_KINDS",
    "Alert",
    "AlertEngine",
    "AlertEvent",
    "AlertKind",
    "AlertLog",
    "AlertRule",
    "DeadLetterRateRule",
    "FailureRateRule",
    "FlowStoppedRule",
    "LatencyRule",
    "QueueDepthRule",
    "Severity",
    "default_rules",
    "incident_window",
    "rule_from_table",
]

ALERTS_MAXLEN: Final = 100_000
INCIDENT_LEAD_MS: Final = 5 * 60 * 1000
"""How far before an incident's first firing ``incident_window`` starts."""

_P99_ROW: Final = LATENCY_PERCENTILES.index(99)
_READ_PAGE: Final = 1000

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class AlertEvent:
    """One transition of a rule: it started firing or it resolved."""

    ts: float  # epoch seconds
    rule: str
    kind: AlertKind
    value: float | None
    message: str
    severity: Severity = "warning"

    @property
    def ts_ms(self) -> int:
        return round(self.ts * 1000)


@dataclass(frozen=True)
class Alert:
    """A firing rule, as the banner and the alerts panel show it."""

    rule: str
    severity: Severity
    since: float  # epoch seconds of the firing
    value: float | None  # the latest evaluated value (None: not known at the moment)
    message: str  # the message of the latest evaluation on which the condition held
    clear_since: float | None = None  # the condition has been false since then


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


# --------------------------------------------------------------------------- log


class AlertLog:
    """Alert transitions in the Redis stream ``{prefix}:alerts`` (see the module docstring).

    Works with clients created with or without ``decode_responses``.
    """

    def __init__(self, redis: aioredis.Redis, prefix: str, maxlen: int = ALERTS_MAXLEN) -> None:
        self.redis = redis
        self.prefix = prefix
        self.key = f"{prefix}:alerts"
        self._maxlen = maxlen

    async def append(self, event: AlertEvent) -> str:
        """Record one event; returns its stream id."""
        fields: dict[str | bytes, str | bytes | int] = {
            "ts": event.ts_ms,
            "rule": event.rule,
            "kind": event.kind,
            "severity": event.severity,
            "value": "" if event.value is None else repr(float(event.value)),
            "message": event.message,
        }
        try:
            stream_id = await self.redis.xadd(
                self.key,
                cast(Any, fields),
                id=f"{event.ts_ms}-*",
                maxlen=self._maxlen,
                approximate=True,
            )
        except ResponseError as exc:
            if "equal or smaller" not in str(exc):
                raise
            stream_id = await self.redis.xadd(
                self.key, cast(Any, fields), maxlen=self._maxlen, approximate=True
            )
        return _text(stream_id)

    async def extend(self, events: Iterable[AlertEvent]) -> list[str]:
        """Record several events in order; returns their stream ids."""
        return [await self.append(event) for event in events]

    async def read_range(
        self,
        from_ms: int | None = None,
        to_ms: int | None = None,
        *,
        newest_first: bool = True,
        count: int | None = None,
    ) -> list[AlertEvent]:
        """Events with ``from_ms <= time <= to_ms`` (either end open when None).

        Newest first by default; at most ``count`` events (the newest ones when
        newest first, the oldest ones otherwise).
        """
        low = "-" if from_ms is None else str(int(from_ms))
        high = "+" if to_ms is None else str(int(to_ms))
        events: list[AlertEvent] = []
        while count is None or len(events) < count:
            page = _READ_PAGE if count is None else min(_READ_PAGE, count - len(events))
            if newest_first:
                reply = _entries(
                    await self.redis.xrevrange(self.key, max=high, min=low, count=page)
                )
            else:
                reply = _entries(await self.redis.xrange(self.key, min=low, max=high, count=page))
            events.extend(_event(data) for _, data in reply)
            if len(reply) < page:
                break
            last = _text(reply[-1][0])
            if newest_first:
                high = "(" + last
            else:
                low = "(" + last
        return events


def _entries(reply: Any) -> list[tuple[str | bytes, dict[Any, Any]]]:
    return cast(list[tuple[str | bytes, dict[Any, Any]]], reply or [])


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _event(data: Mapping[Any, Any]) -> AlertEvent:
    fields = {_text(k): _text(v) for k, v in data.items()}
    kind = fields.get("kind")
    severity = fields.get("severity")
    value = fields.get("value", "")
    return AlertEvent(
        ts=int(fields.get("ts", "0")) / 1000.0,
        rule=fields.get("rule", ""),
        kind="resolved" if kind == "resolved" else "firing",
        value=float(value) if value else None,
        message=fields.get("message", ""),
        severity="critical" if severity == "critical" else "warning",
    )


# --------------------------------------------------------------------------- incidents


def incident_window(
    events: Sequence[AlertEvent],
    now: float | None = None,
    lead_ms: int = INCIDENT_LEAD_MS,
) -> tuple[int, int] | None:
    """The time range (epoch ms) a snapshot of the latest incident should cover.

    Each firing is paired with the next resolution of its rule (or ``now``
    when it has none: still firing). The incident is the run of overlapping
    firing intervals that holds the most recent firing; the window runs from
    its first firing minus ``lead_ms`` (5 minutes) to its last resolution, or
    to ``now`` while any of it is still firing. None when there is no firing.
    The events may come in any order; a resolution whose firing is not among
    them is ignored.
    """
    now_ms = round((time.time() if now is None else now) * 1000)
    ordered = sorted(events, key=lambda e: (e.ts, e.kind != "resolved"))
    open_since: dict[str, int] = {}
    intervals: list[tuple[int, int]] = []
    for event in ordered:
        if event.kind == "firing":
            open_since.setdefault(event.rule, event.ts_ms)
        elif event.rule in open_since:
            intervals.append((open_since.pop(event.rule), event.ts_ms))
    intervals.extend((start, max(start, now_ms)) for start in open_since.values())
    if not intervals:
        return None
    intervals.sort()
    start, end = intervals[-1]
    # Walk back through earlier intervals that overlap the incident.
    for earlier_start, earlier_end in reversed(intervals[:-1]):
        if earlier_end >= start:
            start = min(start, earlier_start)
            end = max(end, earlier_end)
    return start - lead_ms, end
