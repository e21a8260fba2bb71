"""The browser through a load in many batches (as the console's full load feeds it):
rows are inserted, not reset into the table; at the end the table, the group panel,
the filters and the search show what a view built on the loaded index shows; select
all stays one range and keeps its entries while rows keep coming."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from services.workbench.index import EntryIndex
from services.workbench.model import EntryState, EntrySummary
from tests.helpers.summaries import realistic_summaries
from widgets.workbench.browser import SEARCH_DEBOUNCE_MS, FailedPaymentsView
from widgets.workbench.group_panel import GroupByPanel, _GroupBarDelegate
from widgets.workbench.table_model import COLUMN_NAMES

BATCH = 150


@pytest.fixture
def rows() -> list[EntrySummary]:
    """Oldest first, as the store's full load reads them."""
    return sorted(realistic_summaries(3000, seed=21), key=lambda s: s.parked_at_ms)


def make_view(qtbot, index: EntryIndex) -> FailedPaymentsView:
    view = FailedPaymentsView(index)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    qtbot.waitExposed(view)
    return view


def start_load(qtbot, rows: list[EntrySummary]) -> tuple[FailedPaymentsView, EntryIndex]:
    """A view showing the first page (the newest rows), its load about to run."""
    index = EntryIndex()
    index.add(rows[-200:])
    view = make_view(qtbot, index)
    view.set_loading(len(index), len(rows))
    return view, index


def load(view: FailedPaymentsView, index: EntryIndex, rows: list[EntrySummary], qtbot) -> None:
    """Every row in batches, a refresh after each (the first page is read again)."""
    for start in range(0, len(rows), BATCH):
        index.add(rows[start : start + BATCH])
        view.set_loading(min(len(index), len(rows) - 1), len(rows))
        view.refresh()
        qtbot.wait(1)  # the group panel's own step runs when due


def finish_load(view: FailedPaymentsView, index: EntryIndex, qtbot) -> None:
    view.refresh()
    view.set_loading(len(index), len(index))
    qtbot.wait(200)  # the group panel's own step (50 ms after the refresh)


def panel_rows(panel: GroupByPanel) -> list[tuple]:
    return [
        (
            item.text(0),
            item.text(1),
            item.toolTip(0),
            item.data(0, _GroupBarDelegate.STATS_ROLE),
            item.isSelected(),
        )
        for item in panel.group_items()
    ]


def shown_ids(view: FailedPaymentsView) -> list[str]:
    return view.model.entry_ids_at(range(view.model.rowCount()))


def click_group(qtbot, view: FailedPaymentsView, position: int) -> None:
    item = view.group_panel.group_items()[position]
    rect = view.group_panel.list.visualItemRect(item)
    qtbot.mouseClick(view.group_panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_a_load_inserts_rows_into_the_table_and_never_resets_it(qtbot, rows):
    view, index = start_load(qtbot, rows)
    resets, inserted = [], []
    view.model.modelReset.connect(lambda: resets.append(1))
    view.model.rowsInserted.connect(lambda _parent, first, last: inserted.append(last - first + 1))
    load(view, index, rows, qtbot)
    assert resets == []
    assert sum(inserted) == len(rows) - 200
    assert np.array_equal(view.model.result, index.query(view.query))
    # a state change is no append: the query runs again
    index.update_state(rows[5].entry_id, EntryState.CANCELLED, "alice")
    view.refresh()
    assert resets == [1]


@pytest.mark.parametrize("by", ["failure_group", "merchant", "state"])
def test_after_a_load_the_group_panel_shows_what_a_full_recompute_shows(qtbot, rows, by):
    view, index = start_load(qtbot, rows)
    view.group_panel.set_by(by)
    load(view, index, rows, qtbot)
    finish_load(view, index, qtbot)
    fresh = make_view(qtbot, index)  # counts every row at once
    fresh.group_panel.set_by(by)
    assert len(index) == len(rows)
    assert panel_rows(view.group_panel) == panel_rows(fresh.group_panel)
    assert view.group_panel.note.text() == fresh.group_panel.note.text()
    assert view.count_label.text() == f"{len(rows):,} of {len(rows):,} entries"


def test_search_filters_and_select_all_during_a_load_match_a_full_recompute(qtbot, rows):
    view, index = start_load(qtbot, rows)
    load(view, index, rows[:1200], qtbot)
    # the operator searches while the load runs: the search box, after its debounce
    qtbot.keyClicks(view.search_box, "e")
    qtbot.wait(SEARCH_DEBOUNCE_MS + 100)
    assert view.query.text == "e"
    load(view, index, rows[1200:2000], qtbot)
    assert shown_ids(view) == index.entry_ids(index.query(view.query))
    # then clicks the largest group in the panel: the table shows only it
    finish_load(view, index, qtbot)
    click_group(qtbot, view, 0)
    chosen = view.query.failure_groups
    assert len(chosen) == 1
    # and selects every row shown with the keyboard: one range, not a row at a time
    view.table.setFocus()
    with qtbot.waitSignal(view.selection_changed, timeout=2000) as selected:
        qtbot.keyClick(view.table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    shown = view.model.rowCount()
    assert len(selected.args[0]) == shown > 0
    assert view.table.selected_spans() == [(0, shown - 1)]
    picked = set(view.selected_entry_ids())
    # the rest of the rows arrive: the selected entries stay selected, the new ones are not
    view.set_loading(len(index), len(rows))
    load(view, index, rows[2000:], qtbot)
    finish_load(view, index, qtbot)
    assert set(view.selected_entry_ids()) == picked
    assert shown_ids(view) == index.entry_ids(index.query(view.query))
    assert view.model.rowCount() > shown
    fresh = make_view(qtbot, index)
    fresh.set_query(view.query)
    qtbot.wait(10)
    assert shown_ids(fresh) == shown_ids(view)
    assert panel_rows(fresh.group_panel) == panel_rows(view.group_panel)


def test_a_new_entry_after_the_load_is_merged_in_order(qtbot, rows):
    view, index = start_load(qtbot, rows)
    load(view, index, rows, qtbot)
    finish_load(view, index, qtbot)
    header = view.table.horizontalHeader()
    amount = COLUMN_NAMES.index("amount")
    at = QPoint(header.sectionViewportPosition(amount) + 10, 5)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert view.query.sort_key == "amount"
    late = replace(rows[7], entry_id="f" * 20, amount="5.00", amount_value=5.0)
    index.add([late])
    view.refresh()
    assert np.array_equal(view.model.result, index.query(view.query))
    assert late.entry_id in shown_ids(view)
