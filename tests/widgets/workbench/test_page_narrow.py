"""The failed-payments page at 1280x800 with the detail pane opened: only the cause gives
up room (the group panel folds while the pane is open), the filter bar fits, and widths
remembered from an earlier run do not cut amounts or outcomes."""

from __future__ import annotations

import time

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

from services.outcomes.model import Outcome
from services.workbench.columns import TABLE_HIDDEN
from services.workbench.index import EntryIndex
from tests.helpers.screens import save_screenshot, show
from tests.helpers.summaries import realistic_summaries
from widgets.main_window import MainWindow
from widgets.workbench.page import WorkbenchPage
from widgets.workbench.table_model import COLUMN_NAMES, COLUMNS

IMPORTANT = [n for n in COLUMN_NAMES if n not in TABLE_HIDDEN]


def _window(qtbot, width: int, height: int, settings: dict | None = None) -> MainWindow:
    index = EntryIndex()
    index.add(realistic_summaries(3000, seed=7, now_ms=int(time.time() * 1000)))
    window = MainWindow()
    window.workbench.apply_view_settings(settings)
    window.workbench.table_view.set_index(index)
    window.tabs.setCurrentWidget(window.workbench)
    window.resize(width, height)
    show(qtbot, window)
    qtbot.waitUntil(lambda: window.workbench.width() > width * 0.9)
    qtbot.wait(20)
    return window


def _cut(page: WorkbenchPage) -> set[str]:
    """Columns with a visible cell the table elides, or that end past the viewport."""
    table = page.table_view.table
    model, style, header = table.model(), table.style(), table.horizontalHeader()
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    cut = set()
    for position, column in enumerate(COLUMNS):
        if header.isSectionHidden(position):
            continue
        if header.sectionViewportPosition(position) + header.sectionSize(position) > (
            table.viewport().width()
        ):
            cut.add(column.name)
        for row in range(table.rowAt(0), table.rowAt(table.viewport().height() - 1) + 1):
            index = model.index(row, position)
            option = QStyleOptionViewItem()
            table.initViewItemOption(option)
            option.rect = table.visualRect(index)
            table.itemDelegateForIndex(index).initStyleOption(option, index)
            width = QFontMetricsF(option.font).horizontalAdvance(option.text)
            if column.name == "state":
                room = option.rect.width() - 8 - 14
            else:
                area = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, table)
                room = area.width() - 2 * margin
            if width > room:
                cut.add(column.name)
    return cut


def _whole(widget) -> bool:
    return widget.isVisible() and widget.visibleRegion().boundingRect().size() == widget.size()


def test_at_1280_the_opened_pane_takes_room_from_the_cause_alone(qtbot, tmp_path):
    window = _window(qtbot, 1280, 800)
    page, view = window.workbench, window.workbench.table_view
    assert not page.detail_open
    qtbot.mouseClick(page.detail_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.detail_open)
    qtbot.wait(20)
    save_screenshot(window, tmp_path, "payops_workbench_1280x800_opened.png")

    assert page.detail.width() >= page.detail.minimumSizeHint().width()
    assert view.table.shown_columns() == IMPORTANT
    assert _cut(page) <= {"cause"}
    assert not view.table.horizontalScrollBar().isVisible()
    assert view.group_panel_folded  # no room for it beside the table and the pane
    bar = view.filter_bar  # every filter whole: no sideways scrolling
    assert not view.filter_scroll.horizontalScrollBar().isVisible()
    assert _whole(bar.amount_max) and _whole(bar.clear_button)

    qtbot.mouseClick(page.detail_button, Qt.MouseButton.LeftButton)  # folded: groups back
    assert not page.detail_open and not view.group_panel_folded
    assert view.group_panel.width() >= view.group_panel.minimumWidth()
    assert _cut(page) <= {"cause"}
    assert _whole(bar.clear_button)


def test_widths_from_an_earlier_run_do_not_cut_amounts_or_outcomes(qtbot):
    narrow = {"columns": {"widths": {"amount": 50, "outcome": 50, "origin_queue": 60}}}
    window = _window(qtbot, 1280, 800, narrow)
    page, table = window.workbench, window.workbench.table_view.table
    header = table.horizontalHeader()
    amount = COLUMN_NAMES.index("amount")
    middle = header.sectionViewportPosition(amount) + header.sectionSize(amount) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(middle, 8))
    assert page.table_view.query.sort_key == "amount"  # the largest amounts on top
    assert _cut(page) <= {"cause"}
    outcome = header.sectionSize(COLUMN_NAMES.index("outcome"))
    widest = max(table.fontMetrics().horizontalAdvance(o.label) for o in Outcome)
    assert outcome > widest  # "succeeded" whole once an action ends


def test_a_pane_restored_open_at_1280_folds_the_groups_and_cuts_no_column(qtbot):
    window = _window(qtbot, 1280, 800, {"detail_open": True, "detail_width": 460})
    page, view = window.workbench, window.workbench.table_view
    qtbot.waitUntil(lambda: page.detail_open)
    assert page.detail.width() >= page.detail.minimumSizeHint().width()
    assert view.group_panel_folded  # as when the operator opens it at this width
    assert view.table.shown_columns() == IMPORTANT
    assert _cut(page) <= {"cause"}
    assert not view.table.horizontalScrollBar().isVisible()

    qtbot.mouseClick(page.detail_button, Qt.MouseButton.LeftButton)  # folded: groups back
    assert not page.detail_open and not view.group_panel_folded
    assert page.view_settings()["detail_open"] is False
