"""Convert the alert services' values into what the alert widgets show."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.alerts.engine import Alert, AlertEvent
from widgets.alerts.types import ActiveAlert, AlertLogRow, AlertMark


def active_alert(alert: Alert) -> ActiveAlert:
    """A firing rule as the banner and the alerts panel show it."""
    return ActiveAlert(
        rule=alert.rule,
        severity=alert.severity,
        since=alert.since,
        value=alert.value,
        message=alert.message,
        clear_since=alert.clear_since,
    )


def log_row(event: AlertEvent) -> AlertLogRow:
    """One recorded transition as a row of the alert log."""
    return AlertLogRow(
        ts=event.ts,
        rule=event.rule,
        kind=event.kind,
        severity=event.severity,
        value=event.value,
        message=event.message,
    )


def merged_events(*sources: Iterable[AlertEvent]) -> list[AlertEvent]:
    """The events of every source once (same rule, kind and second), oldest first."""
    seen: set[tuple[str, str, int]] = set()
    merged: list[AlertEvent] = []
    for event in sorted((e for source in sources for e in source), key=lambda e: e.ts):
        key = (event.rule, event.kind, int(event.ts))
        if key not in seen:
            seen.add(key)
            merged.append(event)
    return merged


def alert_marks(
    events: Sequence[AlertEvent], active: Sequence[Alert], since_s: float
) -> list[AlertMark]:
    """The spans the plots shade: each firing to its resolution, or open while active.

    ``events`` oldest first. Spans that ended before ``since_s`` are left out.
    A firing the engine no longer reports as active and that has no recorded
    resolution is closed at its last known moment (it resolved while this
    console was not recording).
    """
    marks: list[AlertMark] = []
    open_at: dict[str, AlertEvent] = {}
    for event in events:
        if event.kind == "firing":
            open_at.setdefault(event.rule, event)
            continue
        firing = open_at.pop(event.rule, None)
        if firing is not None and event.ts >= since_s:
            marks.append(AlertMark(firing.ts, event.ts, event.rule, firing.severity))
    active_rules = {alert.rule: alert for alert in active}
    for rule, firing in open_at.items():
        if rule in active_rules:
            continue
        marks.append(AlertMark(firing.ts, firing.ts, rule, firing.severity))
    for alert in active:
        start = open_at[alert.rule].ts if alert.rule in open_at else alert.since
        marks.append(AlertMark(min(start, alert.since), None, alert.rule, alert.severity))
    return [m for m in marks if m.end_s is None or m.end_s >= since_s]
