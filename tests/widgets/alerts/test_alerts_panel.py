"""AlertsPanel: active alerts, the log newest first, filters, colours, empty states, intents."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from services.alerts.model import Alert, AlertEvent
from tests.helpers.zones import local_zone
from widgets.alerts.panel import AlertsPanel, RowRole
from widgets.common import colors

NOW = 1_732_457_100.0

LOG = [
    AlertEvent(NOW - 3000, "latency_p99", "firing", 1720.0, "p99 1,720 ms", "warning"),
    AlertEvent(NOW - 2400, "latency_p99", "resolved", None, "p99 back to normal", "warning"),
    AlertEvent(NOW - 130, "failure_rate", "firing", 41.2, "failure rate 41.2 %", "critical"),
    AlertEvent(NOW - 600, "queue_depth:payments.dlq", "firing", 1204.0, "dlq deep", "critical"),
]


@pytest.fixture
def panel(qtbot):
    widget = AlertsPanel(clock=lambda: NOW)
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    return widget


@pytest.fixture
def shown(panel, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow)
    return panel


def cell(view, row, column_name, role=Qt.ItemDataRole.DisplayRole):
    model = view.model()
    source = getattr(model, "sourceModel", lambda: model)()
    return model.index(row, source.columns.index(column_name)).data(role)


def test_empty_states(panel):
    assert panel.active_stack.currentWidget() is panel.no_active_label
    assert panel.active_count.text() == "0"
    assert panel.log_stack.currentWidget() is panel.log_empty
    assert panel.empty_text() == "No alerts recorded in the last 24 h"
    assert panel.log_count.text() == "0 events"


def test_active_alerts_most_severe_then_oldest_first(panel):
    panel.show_active(
        [
            Alert("dead_letter_rate", "warning", NOW - 900, 44.0, "44 dead letters"),
            Alert("queue_depth:payments.dlq", "critical", NOW - 30, 1204.0, "dlq deep"),
            Alert("failure_rate", "critical", NOW - 130, 41.2, "failure rate 41.2 %"),
        ]
    )
    table = panel.active_table
    assert panel.active_stack.currentWidget() is table
    assert panel.active_count.text() == "3"
    assert panel.active_count.property("severity") == "critical"
    rules = [cell(table, r, "rule") for r in range(3)]
    assert rules == ["failure_rate", "queue_depth:payments.dlq", "dead_letter_rate"]
    assert cell(table, 0, "value") == "41.2"
    assert cell(table, 1, "value") == "1,204"
    assert cell(table, 0, "since").endswith("(2m ago)")
    assert cell(table, 0, "message") == "failure rate 41.2 %"
    assert cell(table, 0, "severity", Qt.ItemDataRole.ForegroundRole) == QColor(colors.RED)
    assert cell(table, 2, "severity", Qt.ItemDataRole.ForegroundRole) == QColor(colors.AMBER)

    panel.show_active([])
    assert panel.active_stack.currentWidget() is panel.no_active_label


def test_the_log_is_newest_first_with_every_column(panel):
    panel.show_log(LOG)
    table = panel.log_table
    assert [r.ts for r in panel.shown_log()] == sorted((r.ts for r in LOG), reverse=True)
    assert cell(table, 0, "rule") == "failure_rate"
    assert cell(table, 0, "kind") == "▲ firing"
    assert cell(table, 0, "severity") == "● critical"
    assert cell(table, 0, "value") == "41.2"
    resolved = next(r for r in range(4) if cell(table, r, "kind") == "✓ resolved")
    assert cell(table, resolved, "value") == "—"
    assert panel.log_count.text() == "4 events"
    assert panel.log_stack.currentWidget() is table


def test_rows_are_coloured_by_severity(panel):
    panel.show_log(LOG)
    table = panel.log_table
    rows = {(r.rule, r.kind): i for i, r in enumerate(panel.shown_log())}
    critical = rows[("failure_rate", "firing")]
    warning = rows[("latency_p99", "firing")]
    resolved = rows[("latency_p99", "resolved")]
    background = Qt.ItemDataRole.BackgroundRole
    foreground = Qt.ItemDataRole.ForegroundRole
    critical_bg = cell(table, critical, "message", background)
    warning_bg = cell(table, warning, "message", background)
    resolved_bg = cell(table, resolved, "message", background)
    assert len({critical_bg.name(), warning_bg.name(), resolved_bg.name()}) == 3
    assert critical_bg.red() > critical_bg.green()  # a wash of red
    assert cell(table, critical, "kind", foreground) == QColor(colors.RED)
    assert cell(table, warning, "kind", foreground) == QColor(colors.AMBER)
    assert cell(table, resolved, "kind", foreground) == QColor(colors.GREEN)


def test_filters_by_text_severity_and_kind(panel):
    panel.show_log(LOG)
    panel.set_filter_text("dlq")
    assert [r.rule for r in panel.shown_log()] == ["queue_depth:payments.dlq"]
    assert panel.log_count.text() == "1 of 4 events"

    panel.set_filter_text("")
    panel.severity_combo.setCurrentIndex(panel.severity_combo.findData("warning"))
    assert {r.severity for r in panel.shown_log()} == {"warning"}
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("resolved"))
    assert [(r.rule, r.kind) for r in panel.shown_log()] == [("latency_p99", "resolved")]

    panel.severity_combo.setCurrentIndex(panel.severity_combo.findData("critical"))
    assert panel.shown_log() == []
    assert panel.log_stack.currentWidget() is panel.log_empty
    assert panel.empty_text() == "No alert events match the filter"

    panel.severity_combo.setCurrentIndex(0)
    panel.kind_combo.setCurrentIndex(0)
    assert len(panel.shown_log()) == 4


def test_refresh_export_and_double_click_emit_intents(shown, qtbot):
    with qtbot.waitSignal(shown.refresh_requested, timeout=1000):
        qtbot.keyClick(shown, Qt.Key.Key_F5)
    with qtbot.waitSignal(shown.refresh_requested, timeout=1000):
        qtbot.mouseClick(shown.refresh_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(shown.export_incident_requested, timeout=1000):
        qtbot.mouseClick(shown.export_button, Qt.MouseButton.LeftButton)

    shown.show_log(LOG)
    index = shown.log_proxy.index(0, 0)
    with qtbot.waitSignal(shown.time_activated, timeout=1000) as blocker:
        shown.log_table.doubleClicked.emit(index)
    assert blocker.args == [index.data(RowRole).ts]


def test_ctrl_f_puts_the_cursor_in_the_filter(shown, qtbot):
    shown.log_table.setFocus()
    qtbot.keyClick(shown, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(shown.filter_edit.hasFocus)


def test_the_log_can_be_sorted_by_a_column(panel):
    panel.show_log(LOG)
    column = panel.log_model.columns.index("value")
    panel.log_table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
    assert [r.value for r in panel.shown_log()] == [1720.0, 1204.0, 41.2, None]


def test_times_name_the_zone(panel, monkeypatch: pytest.MonkeyPatch) -> None:
    with local_zone(monkeypatch, "Europe/Berlin"):  # NOW is 2024-11-24 14:05:00 UTC
        panel.show_log(LOG)
        panel.show_active([Alert("failure_rate", "critical", NOW - 130, 41.2, "failure rate")])
        assert cell(panel.log_table, 0, "time") == "2024-11-24 15:02:50 CET"
        assert cell(panel.active_table, 0, "since").startswith("15:02:50 CET (")
