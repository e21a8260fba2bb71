"""AuditPanel: newest first, live appends, filters by text, field and action; masked detail."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from services.workbench.model import AuditRecord
from tests.helpers.images import pixels
from widgets.common import colors
from widgets.workbench.audit_panel import (
    ALL_ACTIONS,
    AuditPanel,
    AuditQuery,
    AuditTableModel,
    RecordRole,
    format_local_time,
)
from widgets.workbench.job_panel import JobStatus

BASE_MS = 1_714_740_000_000
PAN = "4111111111111111"
OPERATORS = ("alice", "bob", "carol")
ACTIONS = ("retry", "requeue", "cancel")


def record(
    i: int,
    *,
    operator: str | None = None,
    action: str | None = None,
    entry_ids: tuple[str, ...] | None = None,
    result: str = "ok",
    detail: str = "",
) -> AuditRecord:
    ts = BASE_MS + i * 60_000
    return AuditRecord(
        ts=ts,
        operator=operator or OPERATORS[i % 3],
        host=f"ops-{i % 2 + 1}.corp",
        action=action or ACTIONS[i % 3],
        entry_ids=entry_ids or (f"01900a1b2c3d{i:08d}",),
        target="payments.process",
        result=result,
        detail=detail,
        action_id=f"act-{i}",
        stream_id=f"{ts}-0",
    )


SPECIAL = {
    4: {"result": "failed", "detail": "unroutable: NO_ROUTE"},
    7: {"entry_ids": ("01900a1b2c3d00000001", "01900a1b2c3d00000002", "x3")},
    9: {"detail": f"customer asked, card {PAN} cvv=918"},
}


def records(n: int = 12) -> list[AuditRecord]:
    return [record(i, **SPECIAL.get(i, {})) for i in range(n)]


@pytest.fixture
def panel(qtbot):
    widget = AuditPanel()
    qtbot.addWidget(widget)
    widget.resize(1100, 420)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown_ids(panel: AuditPanel) -> list[str]:
    return [r.action_id for r in panel.shown_records()]


def test_records_are_shown_newest_first(panel):
    shuffled = records()
    shuffled = shuffled[5:] + shuffled[:5]
    panel.show_records(shuffled)
    assert shown_ids(panel) == [f"act-{i}" for i in reversed(range(12))]
    assert panel.count_label.text() == "12 records"
    table = panel.table
    first = [table.model().index(0, c).data() for c in range(table.model().columnCount())]
    assert first[0] == format_local_time(BASE_MS + 11 * 60_000)
    assert first[1:7] == [
        "carol",
        "ops-2.corp",
        "cancel",
        "01900a1b2c3d00000011",
        "payments.process",
        "ok",
    ]
    headers = [
        table.model().headerData(c, Qt.Orientation.Horizontal)
        for c in range(table.model().columnCount())
    ]
    assert headers == [
        "Time",
        "Operator",
        "Host",
        "Action",
        "Entries",
        "Target",
        "Result",
        "Detail",
    ]


def test_many_entries_are_counted_with_the_ids_in_the_tooltip(panel):
    panel.show_records(records())
    model = panel.model
    row = [model.record(r).action_id for r in range(model.rowCount())].index("act-7")
    entries = model.index(row, model.columns.index("entries"))
    assert entries.data() == "3 entries"
    assert "01900a1b2c3d00000002" in entries.data(Qt.ItemDataRole.ToolTipRole)


def test_detail_is_masked(panel):
    panel.show_records(records())
    model = panel.model
    row = [model.record(r).action_id for r in range(model.rowCount())].index("act-9")
    detail = model.index(row, model.columns.index("detail"))
    for text in (detail.data(), detail.data(Qt.ItemDataRole.ToolTipRole)):
        assert PAN not in text and "918" not in text
        assert "411111******1111" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("alice", ["act-9", "act-6", "act-3", "act-0"]),
        ("operator:bob", ["act-10", "act-7", "act-4", "act-1"]),
        ("action:retry", ["act-9", "act-6", "act-3", "act-0"]),
        ("action:retry operator:alice", ["act-9", "act-6", "act-3", "act-0"]),
        ("action:retry operator:bob", []),
        ("entry:00000002", ["act-7", "act-2"]),
        ("01900a1b2c3d00000005", ["act-5"]),
        ("NO_ROUTE", ["act-4"]),
        ("result:fail", ["act-4"]),
        ("host:ops-2 cancel", ["act-11", "act-5"]),
        ("act-10", ["act-10"]),
    ],
)
def test_filter_box(panel, qtbot, query, expected):
    panel.show_records(records())
    qtbot.keyClicks(panel.filter_edit, query)
    assert shown_ids(panel) == expected
    if expected:
        assert panel.count_label.text() == f"{len(expected)} of 12 records"
        assert panel.stack.currentWidget() is panel.table
    else:
        assert panel.stack.currentWidget() is panel.empty_label
        assert panel.empty_label.text() == "No records match the filter"


def test_action_combo(panel):
    panel.show_records(records())
    combo = panel.action_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        ALL_ACTIONS,
        "Cancel",
        "Requeue",
        "Retry",
    ]
    combo.setCurrentIndex(combo.findData("requeue"))
    assert shown_ids(panel) == ["act-10", "act-7", "act-4", "act-1"]
    panel.set_filter_text("operator:bob")
    assert shown_ids(panel) == ["act-10", "act-7", "act-4", "act-1"]
    panel.set_filter_text("operator:carol")
    assert shown_ids(panel) == []
    combo.setCurrentIndex(0)
    assert shown_ids(panel) == ["act-11", "act-8", "act-5", "act-2"]


def test_append_records_adds_new_ones_on_top_once(panel):
    panel.show_records(records(6))
    panel.append_records([record(6), record(7)])
    assert shown_ids(panel)[:3] == ["act-7", "act-6", "act-5"]
    panel.append_records([record(7)])  # the same stream id again
    assert panel.model.rowCount() == 8
    assert panel.count_label.text() == "8 records"


def test_append_an_older_record_keeps_the_order(panel):
    panel.show_records([record(5), record(9)])
    panel.append_records([record(7)])
    assert shown_ids(panel) == ["act-9", "act-7", "act-5"]


def test_a_new_action_appears_in_the_combo(panel):
    panel.show_records(records(3))
    panel.append_records([record(20, action="purge")])
    combo = panel.action_combo
    assert combo.findData("purge") >= 0


def test_filter_applies_to_appended_records(panel):
    panel.show_records(records(3))
    panel.set_filter_text("operator:dave")
    panel.append_records([record(30, operator="dave")])
    assert shown_ids(panel) == ["act-30"]


def test_empty_panel_says_so(panel):
    panel.show_records([])
    assert panel.stack.currentWidget() is panel.empty_label
    assert panel.empty_label.text() == "No actions recorded yet"
    assert panel.count_label.text() == "0 records"


def test_double_click_on_one_entry_emits_its_id(panel, qtbot):
    panel.show_records(records())
    index = panel.proxy.index(0, 0)
    with qtbot.waitSignal(panel.entry_activated) as blocker:
        panel.on_table_double_clicked(index)
    assert blocker.args == ["01900a1b2c3d00000011"]
    assert index.data(RecordRole).action_id == "act-11"


def test_query_parsing():
    query = AuditQuery.parse("operator:Alice  NO_ROUTE id:0190 weird:thing")
    assert query.fields == (("operator", "alice"), ("entries", "0190"))
    assert query.words == ("no_route", "weird:thing")


def test_model_caps_the_number_of_records():
    model = AuditTableModel(max_records=5)
    model.set_records(records(8))
    assert model.rowCount() == 5
    model.append_records([record(100)])
    assert model.rowCount() == 5
    assert model.record(0).action_id == "act-100"


def test_audit_panel_screenshot(panel, qtbot, tmp_path: Path):
    panel.show_records(records(14))
    panel.append_records([record(14, action="retry", result="failed", detail="nacked")])
    qtbot.wait(30)
    path = tmp_path / "payops_audit.png"
    assert panel.grab().save(str(path))
    shutil.copy(path, "/tmp/payops_audit.png")
    image = QImage(str(path))
    assert (image.width(), image.height()) == (1100, 420)
    assert np.unique(pixels(image)).size > 100


# --------------------------------------------------------------------------- result colours


def test_results_are_coloured_by_outcome_and_shown_whole(qtbot, tmp_path):
    """ "failed 0" is a success; the Result column shows the whole result (and its tooltip)."""
    from PySide6.QtGui import QColor

    from widgets.common import colors

    results = {
        "requeued 1,234, skipped 0, failed 0": colors.GREEN,
        "retried 3, skipped 2, failed 0": colors.AMBER,
        "cancelled 0, skipped 0, failed 2": colors.RED,
        "requeued 2, skipped 0, failed 0, stopped by the operator (3 not attempted)": colors.AMBER,
        "released 3, in doubt 0": colors.GREEN,
        "released 0, in doubt 1": colors.RED,
        "delivered: done": colors.GREEN,
        "republish: failed": colors.RED,
    }
    panel = AuditPanel()
    qtbot.addWidget(panel)
    panel.resize(1366, 420)
    panel.show()
    qtbot.waitExposed(panel)
    panel.show_records([record(i, result=r) for i, r in enumerate(results)])
    view = panel.table
    model = view.model()
    column = panel.model.columns.index("result")
    started = record(99, result="started")
    panel.append_records([started])
    shown: dict[str, QColor | None] = {}
    for row in range(model.rowCount()):
        index = model.index(row, column)
        shown[index.data()] = index.data(Qt.ItemDataRole.ForegroundRole)
        assert index.data(Qt.ItemDataRole.ToolTipRole) == index.data()
    for result, colour in results.items():
        assert shown[result] == QColor(colour), result
    assert shown["started"] is None  # neither good nor bad yet

    common = "requeued 1,234, skipped 0, failed 0"
    needed = view.fontMetrics().horizontalAdvance(common) + 12
    assert view.horizontalHeader().sectionSize(column) >= needed
    save_shot = tmp_path / "audit_results.png"
    assert panel.grab().save(str(save_shot))
    shutil.copy(save_shot, "/tmp/audit_results.png")


def test_the_audit_page_lists_each_jobs_outcome_summary(panel):
    jobs = [
        JobStatus(
            "0193b000000000aa01",
            "done",
            selected=200,
            outcomes={"succeeded": 180, "failed_again": 12, "pending": 8},
            action="requeue",
            operator="alice",
            created_ms=1_764_856_990_000,
        ),
        JobStatus(
            "0193a000000000bb02",
            "paused",
            "canary: 3 of 10 failed again (30 % > 20 %)",
            40,
            {"succeeded": 7, "failed_again": 3},
            action="retry",
            operator="bob",
            created_ms=1_764_856_000_000,
        ),
    ]
    panel.jobs_table.show_jobs(jobs)
    model = panel.jobs_table.jobs_model
    assert panel.jobs_table.isVisible() and model.rowCount() == 2
    outcomes = model.columns.index("outcomes")
    assert model.index(0, outcomes).data() == "180 succeeded, 12 failed again, 8 pending"
    state = model.index(1, model.columns.index("state")).data()
    assert state.startswith("paused by itself: canary")
    assert model.index(1, model.columns.index("operator")).data() == "bob"
    red = model.index(0, outcomes).data(Qt.ItemDataRole.ForegroundRole)
    assert red.name() == colors.RED.lower()
