"""Alert values from the services turned into what the alert widgets show."""

from __future__ import annotations

from app.controllers.alert_views import active_alert, alert_marks, log_row, merged_events
from services.alerts.engine import Alert, AlertEvent
from widgets.alerts.types import AlertMark


def event(ts: float, rule: str, kind: str, severity: str = "critical") -> AlertEvent:
    return AlertEvent(ts, rule, kind, 1.0, f"{rule} {kind}", severity)  # type: ignore[arg-type]


def test_active_alert_and_log_row_keep_every_field() -> None:
    alert = Alert("failure_rate", "critical", 100.0, 41.2, "failure rate 41.2 %", 130.0)
    shown = active_alert(alert)
    assert (shown.rule, shown.severity, shown.since, shown.value, shown.message) == (
        "failure_rate",
        "critical",
        100.0,
        41.2,
        "failure rate 41.2 %",
    )
    assert shown.clear_since == 130.0
    row = log_row(event(5.0, "flow_stopped", "resolved", "warning"))
    assert (row.ts, row.rule, row.kind, row.severity) == (
        5.0,
        "flow_stopped",
        "resolved",
        "warning",
    )


def test_merged_events_drop_the_same_transition_seen_twice() -> None:
    local = [event(10.2, "a", "firing"), event(50.0, "a", "resolved")]
    logged = [event(10.7, "a", "firing"), event(30.0, "b", "firing")]
    merged = merged_events(local, logged)
    assert [(e.rule, e.kind, int(e.ts)) for e in merged] == [
        ("a", "firing", 10),
        ("b", "firing", 30),
        ("a", "resolved", 50),
    ]


def test_marks_span_firing_to_resolution_and_stay_open_while_active() -> None:
    events = [
        event(10, "old", "firing"),
        event(20, "old", "resolved"),
        event(100, "a", "firing"),
        event(160, "a", "resolved"),
        event(200, "b", "firing", "warning"),
    ]
    active = [Alert("b", "warning", 200.0, 3.0, "b firing")]
    marks = alert_marks(events, active, since_s=50)
    assert marks == [
        AlertMark(100, 160, "a", "critical"),
        AlertMark(200, None, "b", "warning"),
    ]
