"""A selection made through a filter does not outlive it: changing or clearing the search,
a filter or the group filter clears the selection, so an action never reaches rows the
operator did not see selected; a re-sort or a refresh keeps it, by entry."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from services.workbench.index import EntryIndex
from services.workbench.model import EntrySummary
from tests.helpers.screens import show
from tests.helpers.summaries import realistic_summaries
from widgets.workbench.browser import SEARCH_DEBOUNCE_MS, FailedPaymentsView
from widgets.workbench.table_model import COLUMN_NAMES


def _view(qtbot) -> tuple[FailedPaymentsView, list[EntrySummary]]:
    rows = realistic_summaries(2000, seed=1)
    index = EntryIndex()
    index.add(rows)
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1280, 800)
    qtbot.wait(10)
    return view, rows


def _click_group(qtbot, view: FailedPaymentsView, row: int) -> None:
    panel = view.group_panel.list
    rect = panel.visualItemRect(panel.topLevelItem(row))
    qtbot.mouseClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _click_row(qtbot, view: FailedPaymentsView, row: int, modifier=Qt.KeyboardModifier.NoModifier):
    point = view.table.visualRect(view.model.index(row, 1)).center()
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, modifier, point)


def _nothing_selected(view: FailedPaymentsView) -> bool:
    return (
        not view.selected_entry_ids()
        and view.selected_label.text() == ""
        and not any(a.isEnabled() for a in view.actions_by_name.values())
    )


def test_select_all_in_group_then_clearing_the_group_filter_clears_the_selection(qtbot):
    view, rows = _view(qtbot)
    _click_group(qtbot, view, 0)  # the largest failure group
    group = view.model.rowCount()
    assert 0 < group < len(rows)
    qtbot.mouseClick(view.group_panel.select_all_button, Qt.MouseButton.LeftButton)
    assert len(view.selected_entry_ids()) == group
    assert view.selected_label.text() == f"{group:,} selected"
    assert all(a.isEnabled() for a in view.actions_by_name.values())

    _click_group(qtbot, view, 0)  # again: every group shown
    assert view.model.rowCount() == len(rows)
    assert _nothing_selected(view)  # the group's rows are not left selected among the rest

    _click_group(qtbot, view, 0)
    qtbot.mouseClick(view.group_panel.select_all_button, Qt.MouseButton.LeftButton)
    assert len(view.selected_entry_ids()) == group
    qtbot.mouseClick(view.filter_bar.clear_button, Qt.MouseButton.LeftButton)  # "Clear"
    assert view.model.rowCount() == len(rows) and _nothing_selected(view)


def test_typing_a_search_clears_the_selection_a_sort_keeps_it(qtbot):
    view, _rows = _view(qtbot)
    _click_row(qtbot, view, 1)
    _click_row(qtbot, view, 4, Qt.KeyboardModifier.ShiftModifier)
    chosen = set(view.selected_entry_ids())
    assert len(chosen) == 4

    header = view.table.horizontalHeader()  # a re-sort shows the same rows: kept
    amount = COLUMN_NAMES.index("amount")
    middle = header.sectionViewportPosition(amount) + header.sectionSize(amount) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(middle, 8))
    assert view.query.sort_key == "amount"
    assert set(view.selected_entry_ids()) == chosen

    before = view.model.rowCount()
    qtbot.keyClicks(view.search_box, "payments")  # a filter: the selection goes
    qtbot.waitUntil(lambda: view.model.rowCount() != before, timeout=SEARCH_DEBOUNCE_MS * 20)
    assert _nothing_selected(view)

    _click_row(qtbot, view, 0)
    assert len(view.selected_entry_ids()) == 1
    view.search_box.clear()  # back to every row: not a selection made among fewer
    qtbot.waitUntil(lambda: view.model.rowCount() == before, timeout=SEARCH_DEBOUNCE_MS * 20)
    assert _nothing_selected(view)
