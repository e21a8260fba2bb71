"""Alert rules: what a profile's ``[[alerts]]`` tables configure, and their defaults.

Rules are frozen dataclasses whose fields map one to one onto a profile table
(``rule_from_table(kind, table)``; ``RULE_KINDS`` names the kinds). Every rule
has a ``name`` (unique within an engine), a ``severity`` and ``resolve_after_s``.
The flow judges them (``services.flow.alert_engine``); this module has no Redis
in it, so the configuration can load rules without pulling a client library in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

Severity = Literal["warning", "critical"]

_SEVERITIES: Final = ("warning", "critical")

# --------------------------------------------------------------------------- rules


def _check_common(rule: Any) -> None:
    if not rule.name:
        raise ValueError(f"{type(rule).__name__}: name must not be empty")
    if rule.severity not in _SEVERITIES:
        raise ValueError(f"{rule.name}: severity must be one of {_SEVERITIES}")
    if rule.resolve_after_s < 0:
        raise ValueError(f"{rule.name}: resolve_after_s must be >= 0")


def _positive(rule_name: str, key: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{rule_name}: {key} must be > 0, not {value!r}")


@dataclass(frozen=True)
class FailureRateRule:
    """Fires while failures are more than ``threshold_pct`` % of the events in the window.

    Over the last ``window_s`` complete seconds: ``100 * failures / events``,
    failures being the events whose status is one of ``failure_statuses``
    (case-insensitive). With fewer than ``min_events`` events the rate is not
    judged (the condition is false, the value unknown).
    """

    threshold_pct: float = 5.0
    window_s: int = 60
    min_events: int = 20
    failure_statuses: tuple[str, ...] = ("failed",)
    name: str = "failure_rate"
    severity: Severity = "critical"
    resolve_after_s: float = 30.0

    def __post_init__(self) -> None:
        _check_common(self)
        _positive(self.name, "window_s", self.window_s)
        if not 0 <= self.threshold_pct < 100:
            raise ValueError(f"{self.name}: threshold_pct must be in [0, 100)")
        if self.min_events < 1:
            raise ValueError(f"{self.name}: min_events must be >= 1")

    @property
    def needs_s(self) -> int:
        return int(self.window_s)


@dataclass(frozen=True)
class DeadLetterRateRule:
    """Fires while dead letters arrive faster than ``per_minute`` a minute.

    The rate is the arrivals of the last ``window_s`` complete seconds (default
    a minute), scaled to a minute.
    """

    per_minute: int = 100
    window_s: int = 60
    name: str = "dead_letter_rate"
    severity: Severity = "warning"
    resolve_after_s: float = 30.0

    def __post_init__(self) -> None:
        _check_common(self)
        if self.per_minute < 0:
            raise ValueError(f"{self.name}: per_minute must be >= 0")
        _positive(self.name, "window_s", self.window_s)

    @property
    def needs_s(self) -> int:
        return int(self.window_s)


@dataclass(frozen=True)
class QueueDepthRule:
    """Fires while a queue is deeper than ``max_depth`` or has been growing.

    Deeper: the latest known depth in the window (the newest complete second
    with a polled depth, at most ``step_s`` seconds old) is above ``max_depth``.

    Growing: the last ``growing_for_s + step_s`` complete seconds are cut into
    ``growing_for_s / step_s + 1`` consecutive steps of ``step_s`` seconds; the
    queue is growing when every step has at least one polled depth and each
    step's mean depth is higher than the previous step's by more than
    ``min_rise`` messages, i.e. the depth rose in every one of the last
    ``growing_for_s / step_s`` steps (with the defaults: every minute's average
    more than 10 above the previous minute's, 5 times in a row). ``min_rise``
    keeps a flat queue's noise from reading as growth. ``growing_for_s`` must
    be a multiple of ``step_s``.

    At least one of ``max_depth`` and ``growing_for_s`` must be set. The
    name defaults to ``queue_depth:<queue>``.
    """

    queue: str
    max_depth: int | None = None
    growing_for_s: int | None = None
    step_s: int = 60
    min_rise: float = 10.0
    name: str = ""
    severity: Severity = "warning"
    resolve_after_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.queue:
            raise ValueError("QueueDepthRule: queue must not be empty")
        if not self.name:
            object.__setattr__(self, "name", f"queue_depth:{self.queue}")
        _check_common(self)
        if self.max_depth is None and self.growing_for_s is None:
            raise ValueError(f"{self.name}: set max_depth, growing_for_s or both")
        if self.max_depth is not None and self.max_depth < 0:
            raise ValueError(f"{self.name}: max_depth must be >= 0")
        _positive(self.name, "step_s", self.step_s)
        if self.min_rise < 0:
            raise ValueError(f"{self.name}: min_rise must be >= 0")
        if self.growing_for_s is not None and (
            self.growing_for_s <= 0 or self.growing_for_s % self.step_s
        ):
            raise ValueError(
                f"{self.name}: growing_for_s must be a positive multiple of step_s ({self.step_s})"
            )

    @property
    def needs_s(self) -> int:
        if self.growing_for_s is None:
            return int(self.step_s)
        return int(self.growing_for_s + self.step_s)


@dataclass(frozen=True)
class LatencyRule:
    """Fires while the typical p99 latency of the window is above ``p99_ms``.

    The value is the median of the per-second p99 latencies over the last
    ``window_s`` complete seconds, over the seconds that had a latency sample;
    so the rule fires when more than half of those seconds had a p99 above the
    threshold, and one slow second does not. With fewer than ``min_seconds``
    sampled seconds the latency is not judged.
    """

    p99_ms: float = 2000.0
    window_s: int = 60
    min_seconds: int = 10
    name: str = "latency_p99"
    severity: Severity = "warning"
    resolve_after_s: float = 30.0

    def __post_init__(self) -> None:
        _check_common(self)
        _positive(self.name, "p99_ms", self.p99_ms)
        _positive(self.name, "window_s", self.window_s)
        if not 1 <= self.min_seconds <= self.window_s:
            raise ValueError(f"{self.name}: min_seconds must be in [1, window_s]")

    @property
    def needs_s(self) -> int:
        return int(self.window_s)


@dataclass(frozen=True)
class FlowStoppedRule:
    """Fires when no event at all (status event or dead letter) came for ``silent_s`` seconds.

    Silence is counted from the end of the last second with an event the engine
    has ever seen, to the current second. Before the first event the flow has
    not started, and the rule never fires (an idle demo before its start).
    """

    silent_s: int = 30
    name: str = "flow_stopped"
    severity: Severity = "critical"
    resolve_after_s: float = 30.0

    def __post_init__(self) -> None:
        _check_common(self)
        _positive(self.name, "silent_s", self.silent_s)

    @property
    def needs_s(self) -> int:
        return 1


@dataclass(frozen=True)
class NewFailureGroupRule:
    """Fires once when a failure group never seen in the retention window reaches
    ``min_entries`` parked entries (see :mod:`services.alerts.new_groups`).

    Judged where entries are parked (the parker), not on the flow: the failure
    group is the normalised cause of a parked payment. Recorded in the alert log
    once, however many parkers or consoles run, as a firing and its resolution at
    the same moment (an event, not a state). The recorded rule name is
    ``<name>:<group digest>``.
    """

    min_entries: int = 5
    name: str = "new_failure_group"
    severity: Severity = "warning"
    resolve_after_s: float = 0.0
    baseline_s: float = 120.0
    """Groups first seen within this long of the first parking counted (a fresh store, the
    demo's start: every group of the ordinary traffic is "new" then) are the baseline,
    never alerted: "new" needs something seen before."""

    def __post_init__(self) -> None:
        _check_common(self)
        if self.min_entries < 1:
            raise ValueError(f"{self.name}: min_entries must be >= 1")
        if self.baseline_s < 0:
            raise ValueError(f"{self.name}: baseline_s must be >= 0")


AlertRule = FailureRateRule | DeadLetterRateRule | QueueDepthRule | LatencyRule | FlowStoppedRule
"""The rules the flow judges (services.flow.alert_engine)."""

RULE_KINDS: Final[Mapping[str, type[AlertRule]]] = {
    "failure_rate": FailureRateRule,
    "dead_letter_rate": DeadLetterRateRule,
    "queue_depth": QueueDepthRule,
    "latency": LatencyRule,
    "flow_stopped": FlowStoppedRule,
}


PARKING_RULE_KINDS: Final[Mapping[str, type[NewFailureGroupRule]]] = {
    "new_failure_group": NewFailureGroupRule,
}
"""The rules judged where entries are parked."""


def rule_from_table(kind: str, table: Mapping[str, Any]) -> AlertRule:
    """Build a rule from a profile table whose keys are the rule's field names.

    Raises ``ValueError`` for an unknown kind, an unknown or missing key, or a
    value the rule refuses.
    """
    cls = RULE_KINDS.get(kind)
    if cls is None:
        known = ", ".join([*RULE_KINDS, *PARKING_RULE_KINDS])
        raise ValueError(f"unknown alert rule kind {kind!r} (known: {known})")
    rule: AlertRule = _build(cls, kind, table)
    return rule


def failure_group_rule_from_table(table: Mapping[str, Any]) -> NewFailureGroupRule:
    """The ``new_failure_group`` rule from a profile table (``ValueError`` as above)."""
    rule: NewFailureGroupRule = _build(NewFailureGroupRule, "new_failure_group", table)
    return rule


def _build(cls: Any, kind: str, table: Mapping[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"alert rule {kind!r}: unknown keys {', '.join(unknown)}")
    values = dict(table)
    if "failure_statuses" in values:
        values["failure_statuses"] = tuple(values["failure_statuses"])
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        raise ValueError(f"alert rule {kind!r}: {exc}") from None


def default_rules(
    failure_statuses: Iterable[str],
    dead_letter_queues: Iterable[str],
    watch_queues: Iterable[str],
) -> tuple[AlertRule, ...]:
    """The rules a profile without an alerts table gets.

    Failure rate above 5 % over 60 s (at least 20 events), more than 100 dead
    letters a minute, median p99 latency above 2 s over 60 s, no event for
    30 s; a dead-letter queue deeper than 1,000 or growing for 5 minutes (the
    parker is not draining it); a watched queue deeper than 10,000 or growing
    for 5 minutes. A queue both watched and a dead-letter queue gets the
    dead-letter rule.
    """
    rules: list[AlertRule] = [
        FailureRateRule(failure_statuses=tuple(failure_statuses)),
        DeadLetterRateRule(),
        LatencyRule(),
        FlowStoppedRule(),
    ]
    seen: set[str] = set()
    for queue in dead_letter_queues:
        if queue not in seen:
            seen.add(queue)
            rules.append(QueueDepthRule(queue, max_depth=1_000, growing_for_s=300))
    for queue in watch_queues:
        if queue not in seen:
            seen.add(queue)
            rules.append(QueueDepthRule(queue, max_depth=10_000, growing_for_s=300))
    return tuple(rules)
