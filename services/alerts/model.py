"""What an alert is: a firing rule, a transition of a rule, and a mark on the time axis.

Plain frozen dataclasses with no Redis and no numpy in them, so the views
take them as they are (``widgets/`` may import this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.alerts.rules import Severity

AlertKind = Literal["firing", "resolved"]


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
    """A firing rule (e.g. ``failure_rate``), as the banner and the alerts panel show it."""

    rule: str
    severity: Severity
    since: float  # epoch seconds of the firing
    value: float | None  # the latest evaluated value (None: not known at the moment)
    message: str  # the message of the latest evaluation on which the condition held
    clear_since: float | None = None  # the condition has been false since then


@dataclass(frozen=True)
class AlertMark:
    """The span of one alert on the plots' time axis; ``end_s`` None while still firing."""

    start_s: float
    end_s: float | None
    rule: str
    severity: Severity

    @property
    def label(self) -> str:
        """The rule as the mark's label says it: ``queue_depth:payments.dlq`` whole, a new
        failure group without its digest (``new_failure_group:1f08…`` means nothing on a
        plot, and several of them at once overlapped into an unreadable line; the
        tooltip and the alert log name the group)."""
        name, _, _ = self.rule.partition(":")
        return "new failure group" if name == "new_failure_group" else self.rule
