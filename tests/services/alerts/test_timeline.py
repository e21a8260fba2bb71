"""Alert events over time: merged sources, the marks on the plots, the incident window."""

from __future__ import annotations

from services.alerts.model import Alert, AlertEvent, AlertMark
from services.alerts.timeline import alert_marks, incident_window, merged_events

T0 = 1_700_000_000


def event(ts: float, rule: str, kind: str, severity: str = "critical") -> AlertEvent:
    return AlertEvent(ts, rule, kind, 1.0, f"{rule} {kind}", severity)  # type: ignore[arg-type]


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


# --------------------------------------------------------------------------- incident window


def test_incident_window_covers_the_latest_firing_to_its_resolution() -> None:
    events = [
        event(T0 + 100, "a", "firing"),
        event(T0 + 200, "a", "resolved"),  # an earlier, separate incident
        event(T0 + 1000, "b", "firing"),
        event(T0 + 1300, "b", "resolved"),
    ]
    assert incident_window(events[::-1], now=T0 + 5000) == (
        (T0 + 1000) * 1000 - 300_000,
        (T0 + 1300) * 1000,
    )


def test_incident_window_runs_to_now_while_firing_and_joins_overlapping_alerts() -> None:
    events = [
        event(T0 + 900, "a", "firing"),
        event(T0 + 1000, "b", "firing"),
        event(T0 + 1100, "a", "resolved"),
        event(T0 + 1200, "c", "firing"),  # the latest, overlapping b, still firing
    ]
    assert incident_window(events, now=T0 + 1500) == (
        (T0 + 900) * 1000 - 300_000,
        (T0 + 1500) * 1000,
    )
    events.append(event(T0 + 1400, "b", "resolved"))
    events.append(event(T0 + 1450, "c", "resolved"))
    assert incident_window(events, now=T0 + 5000, lead_ms=0) == (
        (T0 + 900) * 1000,
        (T0 + 1450) * 1000,
    )


def test_incident_window_without_a_firing() -> None:
    assert incident_window([], now=T0) is None
    assert incident_window([event(T0, "a", "resolved")], now=T0 + 10) is None


def test_a_new_group_alert_at_the_start_does_not_pull_the_incident_back_to_it() -> None:
    # The trial: new-failure-group alerts (a firing and its resolve at one millisecond)
    # at the console's start left a firing open to now, so the "Incident" range ran from
    # the start (01:02) instead of the incident (01:09-01:12), and every plot was shaded.
    group = "new_failure_group:1f087a5954f6"
    events = [
        event(T0 + 10, group, "resolved"),  # as the log, newest first, may list them
        event(T0 + 10, group, "firing"),
        event(T0 + 420, "failure_rate", "firing"),
        event(T0 + 600, "failure_rate", "resolved"),
    ]
    assert incident_window(events, now=T0 + 900, lead_ms=0) == (
        (T0 + 420) * 1000,
        (T0 + 600) * 1000,
    )
    marks = alert_marks(merged_events(events), [], since_s=T0)
    assert sorted((m.start_s, m.end_s, m.rule) for m in marks) == [
        (T0 + 10, T0 + 10, group),
        (T0 + 420, T0 + 600, "failure_rate"),
    ]
