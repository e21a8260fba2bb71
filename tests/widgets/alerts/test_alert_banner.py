"""AlertBanner: hidden without alerts, the worst alert first, count, colours, buttons."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from services.alerts.model import Alert
from tests.helpers.zones import local_zone
from widgets.alerts.banner import AlertBanner, since_text

NOW = 1_732_457_100.0


def alert(rule="failure_rate", severity="critical", since=NOW - 130, value=41.2, message=""):
    return Alert(rule, severity, since, value, message or f"{rule} is bad")


@pytest.fixture
def banner(qtbot):
    widget = AlertBanner(clock=lambda: NOW)
    qtbot.addWidget(widget)
    widget.resize(1000, widget.height())
    return widget


def test_hidden_while_no_alert_fires(banner):
    assert banner.isHidden()
    banner.show_alerts([alert()])
    assert not banner.isHidden()
    banner.show_alerts([])
    assert banner.isHidden()
    assert banner.top_alert is None
    assert banner.severity == ""


def test_the_critical_alert_comes_first_with_the_count_of_the_others(banner):
    banner.show_alerts(
        [
            alert("dead_letter_rate", "warning", since=NOW - 900),  # oldest, but a warning
            alert("queue_depth:payments.dlq", "critical", since=NOW - 30),
            alert(
                "failure_rate",
                "critical",
                since=NOW - 130,
                message="failure rate 41.2 % over 60 s (threshold 5 %)",
            ),
        ]
    )
    assert [a.rule for a in banner.alerts] == [
        "failure_rate",  # critical and the oldest of the critical ones
        "queue_depth:payments.dlq",
        "dead_letter_rate",
    ]
    assert banner.severity == "critical"
    assert banner.property("severity") == "critical"
    assert banner.badge.text() == "CRITICAL"
    assert banner.message_label.full_text() == "failure rate 41.2 % over 60 s (threshold 5 %)"
    assert banner.more_label.text() == "+2 more"
    assert not banner.more_label.isHidden()
    stamp = time.strftime("%H:%M:%S %Z", time.localtime(NOW - 130))
    assert banner.since_label.text() == f"since {stamp} (2m ago)"
    tooltip = banner.toolTip()
    for rule in ("failure_rate", "queue_depth:payments.dlq", "dead_letter_rate"):
        assert rule in tooltip


def test_warnings_alone_turn_it_amber_and_one_alert_has_no_count(banner):
    banner.show_alerts([alert("dead_letter_rate", "warning")])
    assert banner.severity == "warning"
    assert banner.property("severity") == "warning"
    assert banner.badge.text() == "WARNING"
    assert banner.more_label.isHidden()


def test_a_clearing_alert_says_so(banner):
    banner.show_alerts([Alert("failure_rate", "critical", NOW - 60, 3.0, "x", NOW - 10)])
    assert banner.since_label.text().endswith("· clearing")


def test_since_shows_the_date_for_another_day():
    assert since_text(NOW - 2 * 86400, NOW).startswith("since 20")
    assert "(2d 0h ago)" in since_text(NOW - 2 * 86400, NOW)
    assert since_text(NOW - 5, NOW).endswith("(5s ago)")


def test_the_buttons_emit_their_intents(banner, qtbot):
    banner.show_alerts([alert()])
    banner.show()
    qtbot.waitExposed(banner)
    with qtbot.waitSignal(banner.show_alerts_requested, timeout=1000):
        qtbot.mouseClick(banner.show_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(banner.export_incident_requested, timeout=1000):
        qtbot.mouseClick(banner.export_button, Qt.MouseButton.LeftButton)
    assert "Alt+4" in banner.show_button.toolTip()
    assert "Ctrl+E" in banner.export_button.toolTip()


def test_the_height_never_changes_and_long_messages_are_elided(banner, qtbot):
    banner.show_alerts([alert()])
    banner.show()
    qtbot.waitExposed(banner)
    height = banner.height()
    long_message = "failure rate 41.2 % over 60 s (threshold 5 %) " * 10
    banner.show_alerts(
        [alert(message=long_message), alert("b", "warning"), alert("c", since=NOW - 5)]
    )
    qtbot.waitUntil(lambda: banner.message_label.text().endswith("…"))
    assert banner.height() == height
    assert banner.message_label.full_text() == long_message
    banner.show_alerts([alert("dead_letter_rate", "warning")])
    assert banner.height() == height


def test_the_banner_names_the_zone(banner, monkeypatch: pytest.MonkeyPatch) -> None:
    with local_zone(monkeypatch, "Europe/Berlin"):  # NOW is 2024-11-24 14:05:00 UTC
        banner.show_alerts([alert(since=NOW - 130)])
        assert banner.since_label.text().startswith("since 15:02:50 CET (2m")
        assert since_text(NOW - 2 * 86400, NOW).startswith("since 2024-11-22 15:05:00 CET (")
