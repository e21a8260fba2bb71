"""How the alert views show alerts: the most severe first, values and ages in brief."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

from services.alerts.model import Alert

SEVERITY_RANK: Final[dict[str, int]] = {"critical": 0, "warning": 1}
"""Most severe first: sort by ``SEVERITY_RANK[severity]``."""


def most_severe_first(alerts: Iterable[Alert]) -> list[Alert]:
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
