"""The failed-payments page in the main window: what fits at 1600x1000 and 1366x768, the
column chooser, and the folding detail pane."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QApplication, QMenu, QStyle, QStyleOptionViewItem

from services.workbench.columns import TABLE_HIDDEN
from services.workbench.index import EntryIndex
from tests.helpers.detail_entries import (
    audit_records,
    death_headers,
    make_entry,
    payment_body,
    timeline_trace,
)
from tests.helpers.screens import right_click, save_screenshot, show
from tests.helpers.summaries import realistic_summaries
from tests.helpers.workbench_columns import assert_columns_fit
from widgets.main_window import MainWindow
from widgets.workbench.page import WorkbenchPage
from widgets.workbench.table_model import COLUMN_NAMES, COLUMNS

POPUP_WARNINGS = pytest.mark.qt_log_ignore(
    "This plugin does not support raise", "This plugin does not support grabbing"
)  # the offscreen platform on showing a popup menu: not ours
IMPORTANT = [n for n in COLUMN_NAMES if n not in TABLE_HIDDEN]


def _main_window(qtbot, width: int, height: int) -> MainWindow:
    index = EntryIndex()
    index.add(realistic_summaries(3000, seed=7, now_ms=int(time.time() * 1000)))
    window = MainWindow()
    window.workbench.table_view.set_index(index)
    window.tabs.setCurrentWidget(window.workbench)
    window.resize(width, height)
    show(qtbot, window)
    qtbot.waitUntil(lambda: window.workbench.width() > width * 0.9)
    qtbot.wait(20)
    return window


def _open_pane(qtbot, page: WorkbenchPage) -> None:
    """Open the detail pane by its button (at 1600x1000 it starts folded: the causes are long)."""
    if not page.detail_open:
        qtbot.mouseClick(page.detail_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.detail_open)
    qtbot.wait(20)


def _cut_cells(page: WorkbenchPage) -> list[tuple[str, str]]:
    """(column, text) of every visible cell whose text the table would elide: measured
    against the rectangle the style draws the text in, as the delegates paint it."""
    table = page.table_view.table
    model = table.model()
    style = table.style()
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    header = table.horizontalHeader()
    last = table.rowAt(table.viewport().height() - 1)
    cut = []
    for row in range(table.rowAt(0), (last if last >= 0 else model.rowCount() - 1) + 1):
        for position, column in enumerate(COLUMNS):
            if header.isSectionHidden(position):
                continue
            index = model.index(row, position)
            option = QStyleOptionViewItem()
            table.initViewItemOption(option)
            option.rect = table.visualRect(index)
            table.itemDelegateForIndex(index).initStyleOption(option, index)
            # fractional: Qt elides text a fraction of a pixel wider than its room
            width = QFontMetricsF(option.font).horizontalAdvance(option.text)
            if column.name == "state":  # the pill: text + 14 inside the cell less 8 (drawn
                room = option.rect.width() - 8 - 14  # whole, not elided, in its pill)
                width = option.fontMetrics.horizontalAdvance(option.text)
            else:
                area = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, table)
                room = area.width() - 2 * margin
            if width > room:
                cut.append((column.name, option.text))
    return cut


def _off_screen(page: WorkbenchPage) -> list[str]:
    """Shown columns not wholly inside the table's viewport."""
    table = page.table_view.table
    width = table.viewport().width()
    header = table.horizontalHeader()
    return [
        name
        for position, name in enumerate(COLUMN_NAMES)
        if not header.isSectionHidden(position)
        and header.sectionViewportPosition(position) + table.columnWidth(position) > width
    ]


@pytest.mark.parametrize(("width", "height", "detail"), [(1600, 1000, False), (1366, 768, False)])
def test_nothing_that_matters_is_cut(qtbot, tmp_path: Path, width, height, detail):
    # An incident's causes are long ("acquirer outage: acq-4 refused the connection
    # (10.20.0.14:8443)"): the table shows them whole at 1600 px and starts with the pane
    # folded; a narrower window elides the causes alone (their tooltip shows them whole).
    gives_way = set() if width >= 1600 else {"cause"}
    window = _main_window(qtbot, width, height)
    page = window.workbench
    view = page.table_view
    save_screenshot(window, tmp_path, f"payops_workbench_{width}x{height}.png")
    if keep := os.environ.get("PAYOPS_SCREENSHOT_DIR"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        name = f"payops_workbench_{width}x{height}.png"
        shutil.copy(tmp_path / name, Path(keep) / name)

    assert view.table.shown_columns() == IMPORTANT
    assert not _off_screen(page)
    assert not view.table.horizontalScrollBar().isVisible()
    assert {name for name, _text in _cut_cells(page)} <= gives_way
    header = view.table.horizontalHeader()  # "Dead-lettered (CET)": the zone is not cut
    title = view.table.model().headerData(0, Qt.Orientation.Horizontal)
    assert header.sectionSize(0) >= header.fontMetrics().horizontalAdvance(title) + 18 + 14
    assert not view.filter_scroll.horizontalScrollBar().isVisible()  # "Clear" whole
    assert view.filter_bar.clear_button.visibleRegion().boundingRect().width() == (
        view.filter_bar.clear_button.width()
    )
    # the pane folds where the window is too narrow for it and the table
    assert page.detail_open is detail
    assert page.detail_button.text() == ("Hide details  ▸" if detail else "◂  Show details")

    page.detail.show_entry(make_entry())  # an entry's header widens the pane: the table stays
    qtbot.wait(20)
    save_screenshot(window, tmp_path, f"payops_workbench_{width}x{height}_detail.png")
    assert not _off_screen(page)
    assert not view.table.horizontalScrollBar().isVisible()
    assert {name for name, _text in _cut_cells(page)} <= gives_way

    if width >= 1600:  # the pane opened by its button: the cause gives way (elided), and
        # the outcome and queue hide rather than narrow it below a readable width
        _open_pane(qtbot, page)
        save_screenshot(window, tmp_path, f"payops_workbench_{width}x{height}_opened.png")
        assert not _off_screen(page)
        assert not view.table.horizontalScrollBar().isVisible()
        assert {name for name, _text in _cut_cells(page)} <= {"cause"}
        assert_columns_fit(view.table)  # the cause readable: the outcome hides before
        assert not view.filter_scroll.horizontalScrollBar().isVisible()  # "Clear" whole too


def test_the_detail_pane_folds_and_opens_from_its_button_and_on_enter(qtbot):
    window = _main_window(qtbot, 1600, 1000)
    page = window.workbench
    assert not page.detail_open  # the long causes take the room: the pane starts folded
    qtbot.mouseClick(page.detail_button, Qt.MouseButton.LeftButton)
    assert page.detail_open and page.detail.width() > 300

    qtbot.mouseClick(page.detail_button, Qt.MouseButton.LeftButton)
    assert not page.detail_open and page.detail_button.text() == "◂  Show details"
    qtbot.mouseClick(page.detail_button, Qt.MouseButton.LeftButton)
    assert page.detail_open and page.detail.width() > 300

    table = page.table_view.table
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert not page.detail_open
    qtbot.mouseClick(
        table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=table.visualRect(table.model().index(3, 1)).center(),
    )
    qtbot.keyClick(table, Qt.Key.Key_Return)  # opening an entry opens the pane
    assert page.detail_open

    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    search = page.table_view.search_box
    qtbot.mouseClick(search, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(search, "acme")
    qtbot.keyClick(search, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert not page.detail_open  # typing in a field does not swallow the shortcut
    assert search.text() == "acme"


def _header_menu(qtbot, page: WorkbenchPage) -> QMenu:
    header = page.table_view.table.horizontalHeader()
    right_click(header.viewport(), QPoint(header.sectionViewportPosition(1) + 10, 8))
    menu = page.table_view.table.header_menu
    assert menu is not None
    qtbot.waitUntil(menu.isVisible)
    return menu


def _tick(menu: QMenu, title: str) -> None:
    action = next(a for a in menu.actions() if a.text() == title)
    action.trigger()
    menu.close()


@POPUP_WARNINGS
def test_the_header_menu_chooses_the_columns(qtbot):
    window = _main_window(qtbot, 1600, 1000)
    page = window.workbench
    table = page.table_view.table
    menu = _header_menu(qtbot, page)
    ticks = {a.text(): a.isChecked() for a in menu.actions() if a.isCheckable()}
    assert ticks == {c.title: c.name not in TABLE_HIDDEN for c in COLUMNS}
    assert not ticks["Reason"] and ticks["Cause"]  # the cause in place of the reason

    _tick(menu, "Routing key")
    _tick(_header_menu(qtbot, page), "Merchant")

    shown = table.shown_columns()
    assert "routing_key" in shown and "merchant" not in shown
    routing = table.columnWidth(COLUMN_NAMES.index("routing_key"))
    assert routing > table.fontMetrics().horizontalAdvance("payment.authorize.timeout")

    _tick(_header_menu(qtbot, page), "Reset columns")
    assert table.shown_columns() == IMPORTANT


@POPUP_WARNINGS
def test_view_settings_round_trip(qtbot):
    first = _main_window(qtbot, 1600, 1000)
    _tick(_header_menu(qtbot, first.workbench), "Amount")
    first.workbench.table_view.table.horizontalHeader().moveSection(3, 0)  # drag State first
    qtbot.mouseClick(first.workbench.detail_button, Qt.MouseButton.LeftButton)
    settings = first.workbench.view_settings()

    second = _main_window(qtbot, 1600, 1000)
    second.workbench.apply_view_settings(settings)
    assert second.workbench.table_view.table.shown_columns() == (
        first.workbench.table_view.table.shown_columns()
    )
    assert second.workbench.detail_open is first.workbench.detail_open is True
    second.workbench.apply_view_settings({"columns": {"hidden": ["nope"], "widths": "x"}})
    assert "amount" in second.workbench.table_view.table.shown_columns()  # the unknown ignored


def test_view_show_details_folds_the_pane_in_step_with_its_button(qtbot, tmp_path):
    window = _main_window(qtbot, 1600, 1000)
    page = window.workbench
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    shown = [a for a in view_menu.actions() if a.text() == "Show details"]
    assert len(shown) == 1, [a.text() for a in view_menu.actions()]
    action = shown[0]
    assert action.isCheckable() and action.shortcut().toString() == "Ctrl+D"
    assert not action.isChecked() and not page.detail_open  # folded: the causes are long
    action.trigger()
    assert action.isChecked() and page.detail_open

    action.trigger()  # what a click on the menu entry does
    assert not page.detail_open and not action.isChecked()
    assert page.detail_button.text() == "◂  Show details"
    save_screenshot(window, tmp_path, "payops_workbench_details_folded_from_menu.png")

    qtbot.mouseClick(page.detail_button, Qt.MouseButton.LeftButton)  # the button: menu follows
    assert page.detail_open and action.isChecked()
    page.table_view.table.setFocus()
    qtbot.keyClick(page.table_view.table, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert not page.detail_open and not action.isChecked()  # Ctrl+D is not ambiguous
    action.trigger()
    assert page.detail_open and action.isChecked()


def _tab_stops(qtbot, start, end, key=Qt.Key.Key_Tab, limit=25) -> list:
    """Press ``key`` on whatever has focus, from ``start`` until ``end`` has it: each stop."""
    start.setFocus()
    qtbot.waitUntil(start.hasFocus)
    stops = [start]
    while len(stops) == 1 or QApplication.focusWidget() is not end:
        assert len(stops) < limit, [type(w).__name__ for w in stops]
        qtbot.keyClick(QApplication.focusWidget(), key)
        stops.append(QApplication.focusWidget())
    return stops


def test_tab_walks_from_the_search_box_through_every_filter_to_the_table(qtbot):
    window = _main_window(qtbot, 1600, 1000)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    view = window.workbench.table_view
    bar = view.filter_bar
    expected = [
        view.search_box,
        *bar.buttons.values(),
        bar.dead_from,
        bar.dead_to,
        bar.presets,
        bar.amount_min,
        bar.amount_max,
        view.table,
    ]
    assert _tab_stops(qtbot, view.search_box, view.table) == expected  # both times "any"

    bar.set_last_minutes(60)  # times set: Tab still leaves the field, not its sections
    assert not bar.dead_from.is_any
    edit = bar.dead_from.lineEdit()  # "2026-12-03 10:02" whole, not "2026-12-03 10:0"
    assert edit.fontMetrics().horizontalAdvance(edit.text()) < edit.contentsRect().width()
    assert _tab_stops(qtbot, view.search_box, view.table) == expected
    backwards = _tab_stops(qtbot, bar.amount_max, view.search_box, Qt.Key.Key_Backtab)
    assert backwards == expected[-2::-1]

    # the sections still change with the arrow keys
    bar.dead_from.setFocus()
    qtbot.waitUntil(bar.dead_from.hasFocus)
    before = bar.dead_from.dateTime()
    qtbot.keyClick(bar.dead_from, Qt.Key.Key_Right)
    qtbot.keyClick(bar.dead_from, Qt.Key.Key_Up)
    assert bar.dead_from.dateTime() != before and bar.dead_from.hasFocus()


def _drawn_whole(label) -> bool:
    """``label`` shows its whole text: not elided, and no wider than the room it is drawn in."""
    full = label.full_text() if hasattr(label, "full_text") else label.text()
    room = label.contentsRect().width() - 2 * max(label.margin(), 0)
    return label.text() == full and label.fontMetrics().horizontalAdvance(full) <= room


def test_the_detail_header_shows_ids_and_facts_whole_at_the_default_width(qtbot, tmp_path):
    window = _main_window(qtbot, 1600, 1000)
    page = window.workbench
    rows = realistic_summaries(200, seed=3)  # an incident's rows: the longest queue and key
    row = max(rows, key=lambda r: len(r.origin_queue or "") + len(r.routing_key or ""))
    headers = death_headers()
    headers["x-death"][0].update(
        reason="delivery_limit", queue=row.origin_queue, **{"routing-keys": [row.routing_key]}
    )
    body = payment_body(payment_id="pay_17d5570756950439", merchant="Umbrella Pharmacy")
    page.detail.show_entry(make_entry(body, headers=headers, entry_id=row.entry_id))
    _open_pane(qtbot, page)
    assert page.detail_open and page.detail.width() < 480  # the default, narrow pane
    save_screenshot(page.detail, tmp_path, "payops_detail_header_default_width.png")

    detail = page.detail
    assert detail.payment_label.text() == "pay_17d5570756950439"
    assert _drawn_whole(detail.payment_label) and _drawn_whole(detail.entry_id_label)
    assert (
        detail.payment_label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    )
    cut = [key for key, label in detail.facts.items() if not _drawn_whole(label)]
    assert cut == [], [(k, detail.facts[k].full_text(), detail.facts[k].text()) for k in cut]
    assert detail.facts["routing_key"].full_text() == row.routing_key
    view = page.table_view  # and the table beside it: the cause readable, nothing cut
    assert_columns_fit(view.table)
    assert not _off_screen(page), _off_screen(page)
    assert not view.table.horizontalScrollBar().isVisible()


def test_tab_and_shift_tab_leave_the_entries_table_both_ways(qtbot):
    window = _main_window(qtbot, 1600, 1000)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    page = window.workbench
    view = page.table_view
    page.detail.show_entry(make_entry())  # the pane's tabs and buttons take focus too
    table = view.table
    table.setFocus()
    qtbot.waitUntil(table.hasFocus)
    qtbot.keyClick(table, Qt.Key.Key_Down)  # a current row: Tab must not walk its cells
    row = table.currentIndex().row()

    qtbot.keyClick(table, Qt.Key.Key_Backtab)
    assert QApplication.focusWidget() is view.filter_bar.amount_max  # the field before it
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is table
    assert table.currentIndex().row() == row

    qtbot.keyClick(table, Qt.Key.Key_Tab)
    after = QApplication.focusWidget()
    assert after is not table and after is not None
    assert page.isAncestorOf(after) and not view.filter_bar.isAncestorOf(after)
    qtbot.keyClick(after, Qt.Key.Key_Backtab)
    assert QApplication.focusWidget() is table  # and back again

    # the whole ring, forwards and backwards, is the same stops in reverse
    forwards = _tab_stops(qtbot, view.search_box, view.search_box, limit=60)
    backwards = _tab_stops(qtbot, view.search_box, view.search_box, Qt.Key.Key_Backtab, 60)
    assert table in forwards and len(set(forwards)) == len(forwards) - 1
    assert backwards == forwards[::-1]


def test_every_detail_tab_title_is_whole_and_on_screen_at_the_default_width(qtbot, tmp_path):
    window = _main_window(qtbot, 1600, 1000)
    detail = window.workbench.detail
    detail.show_entry(make_entry(headers=death_headers()))  # "Headers (n)", "x-death (2)"
    detail.show_audit(audit_records())  # "Audit (2)"
    detail.show_timeline(timeline_trace())  # "Timeline (6)"
    _open_pane(qtbot, window.workbench)
    assert window.workbench.detail_open and detail.width() < 480
    save_screenshot(detail, tmp_path, "payops_detail_tabs_default_width.png")
    bar = detail.tabs.tabBar()
    titles = [bar.tabText(i) for i in range(bar.count())]
    assert titles[2].startswith("Headers (") and titles[3] == "x-death (2)"
    assert titles[4:] == ["Audit (2)", "Timeline (6)"]
    metrics = bar.fontMetrics()
    for i, title in enumerate(titles):
        rect = bar.tabRect(i)
        assert rect.left() >= 0 and rect.right() < bar.width(), (title, rect, bar.width())
        assert metrics.horizontalAdvance(title) + 2 * 8 <= rect.width(), (title, rect)
    # and a click on the last one, where it is drawn, opens it
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(4).center())
    assert detail.tabs.currentIndex() == 4
