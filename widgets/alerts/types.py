"""Plain data the alert views take: active alerts, log rows and marks on the plots.

The widgets know nothing of ``services.alerts.engine`` (it imports redis); the app
converts its ``Alert`` / ``AlertEvent`` values into these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

Severity = Literal["warning", "critical"]
AlertKind = Literal["firing", "resolved"]

SEVERITY_RANK: Final[dict[str, int]] = {"critical": 0, "warning": 1}
"""Most severe first: sort by ``SEVERITY_RANK[severity]``."""


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """A rule firing now (e.g. ``failure_rate``, ``queue_depth:payments.dlq``)."""

    rule: str
    severity: Severity
    since: float  # epoch seconds of the firing
    value: float | None  # the latest evaluated value; None when not known
    message: str  # e.g. "failure rate 41.2 % over 60 s (threshold 5 %)"
    clear_since: float | None = None  # the condition has been false since then (resolving)


@dataclass(frozen=True, slots=True)
class AlertLogRow:
    """One recorded transition of a rule."""

    ts: float  # epoch seconds
    rule: str
    kind: AlertKind
    severity: Severity
    value: float | None
    message: str


@dataclass(frozen=True, slots=True)
class AlertMark:
    """The span of one alert on the plots' time axis; ``end_s`` None while still firing."""

    start_s: float
    end_s: float | None
    rule: str
    severity: Severity


def most_severe_first(alerts: Iterable[ActiveAlert]) -> list[ActiveAlert]:
    """Critical before warning, then the oldest first, then by rule name."""
    return sorted(alerts, key=lambda a: (SEVERITY_RANK.get(a.severity, 9), a.since, a.rule))


def format_value(value: float | None) -> str:
    """An alert's value for a table cell: "41.2", "1,250", "0.0123"; "—" when unknown."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def format_age(seconds: float) -> str:
    """How long ago, briefly: "12s", "4m", "2h 05m", "3d 4h"."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"
