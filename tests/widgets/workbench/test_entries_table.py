"""EntriesTable while entries arrive: it follows at the top, otherwise holds still behind a bar."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QScrollBar

from services.workbench.index import EntryIndex
from services.workbench.model import EntryState
from tests.helpers.screens import save_screenshot, show
from tests.helpers.summaries import NOW_MS, realistic_summaries
from widgets.workbench.browser import FailedPaymentsView
from widgets.workbench.table_model import COLUMN_NAMES, STATE_LABELS

HOURS_7 = 7 * 3600 * 1000  # realistic_summaries spans six hours before its now_ms


def _view(qtbot) -> FailedPaymentsView:
    index = EntryIndex()
    index.add(realistic_summaries(600, seed=3))
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1400, 700)
    qtbot.wait(10)
    return view


def _arrive(qtbot, view: FailedPaymentsView, count: int, seed: int) -> None:
    """Entries parked just now, added the way the app adds them: index, then a throttled refresh."""
    rows = view.model.rowCount()
    newer = realistic_summaries(count, seed=seed, now_ms=NOW_MS + (seed % 100) * HOURS_7)
    view.index.add(newer)
    view.request_refresh()
    qtbot.waitUntil(lambda: view.model.rowCount() == rows + count)


def _row_at(view: FailedPaymentsView, y: int) -> str:
    return view.model.entry_id_at(view.table.rowAt(y))


def _click_row(qtbot, view: FailedPaymentsView, row: int) -> QPoint:
    point = view.table.visualRect(view.model.index(row, 1)).center()
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=point)
    return point


def test_scrolled_with_a_selection_the_rows_hold_still_and_the_bar_counts_arrivals(qtbot, tmp_path):
    view = _view(qtbot)
    table = view.table
    table.verticalScrollBar().setValue(40)  # the operator scrolled down a little
    mouse = _click_row(qtbot, view, 44)
    selected = view.selected_entry_ids()
    top, under_mouse = _row_at(view, 0), _row_at(view, mouse.y())
    assert len(selected) == 1 and under_mouse == selected[0]

    for burst in (1, 2, 3):  # an incident: entries keep arriving at the top
        _arrive(qtbot, view, 10, seed=100 + burst)

    assert view.selected_entry_ids() == selected
    assert _row_at(view, 0) == top
    assert _row_at(view, mouse.y()) == under_mouse  # a click now lands on the same entry
    bar = table.new_entries_bar
    assert bar.isVisible() and bar.text() == "▲  30 new entries — show"
    save_screenshot(view, tmp_path, "payops_new_entries_bar.png")

    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton)
    assert table.verticalScrollBar().value() == 0
    newest = max(view.index.row(r).dead_lettered_at_ms for r in range(len(view.index)))
    assert view.model.summary_at(table.rowAt(0)).dead_lettered_at_ms == newest
    assert not bar.isVisible()
    assert view.selected_entry_ids() == selected


def test_the_new_entries_bar_covers_no_row(qtbot):
    view = _view(qtbot)
    table = view.table
    mouse = _click_row(qtbot, view, 0)  # the top row selected: its payment id under the bar
    _arrive(qtbot, view, 12, seed=501)
    bar = table.new_entries_bar
    assert bar.isVisible() and bar.text() == "▲  12 new entries — show"
    area = table.viewport()
    rows = area.rect().translated(area.mapTo(view, area.rect().topLeft()))
    drawn = bar.rect().translated(bar.mapTo(view, bar.rect().topLeft()))
    assert not drawn.intersects(rows), (drawn, rows)
    assert _row_at(view, mouse.y()) == view.selected_entry_ids()[0]
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton)  # where it is laid out, it still shows
    assert table.verticalScrollBar().value() == 0 and not bar.isVisible()


def test_at_the_top_with_a_selection_new_rows_wait_above(qtbot):
    view = _view(qtbot)
    _click_row(qtbot, view, 2)
    selected, top = view.selected_entry_ids(), _row_at(view, 0)

    _arrive(qtbot, view, 7, seed=201)

    assert view.selected_entry_ids() == selected
    assert _row_at(view, 0) == top  # the clicked row did not slide away
    assert view.table.new_entries_bar.text() == "▲  7 new entries — show"
    _arrive(qtbot, view, 1, seed=202)
    assert view.table.new_entries_bar.text() == "▲  8 new entries — show"


def test_at_the_top_with_nothing_selected_the_table_follows(qtbot):
    view = _view(qtbot)
    assert not view.selected_entry_ids()

    _arrive(qtbot, view, 5, seed=301)

    assert view.table.verticalScrollBar().value() == 0
    newest = view.index.row(len(view.index) - 1).dead_lettered_at_ms
    assert view.model.summary_at(0).dead_lettered_at_ms >= newest
    assert not view.table.new_entries_bar.isVisible()


def test_scrolling_back_to_the_top_shows_the_new_rows_and_hides_the_bar(qtbot):
    view = _view(qtbot)
    view.table.verticalScrollBar().setValue(20)
    _arrive(qtbot, view, 4, seed=401)
    assert view.table.new_entries_bar.isVisible()

    view.table.verticalScrollBar().triggerAction(QScrollBar.SliderAction.SliderToMinimum)

    assert view.table.verticalScrollBar().value() == 0
    assert not view.table.new_entries_bar.isVisible()


def test_the_state_column_fits_every_state_though_only_parked_rows_are_shown(qtbot):
    """Sized while every row is Parked, the pill must still hold "Cancelled" once an
    operator acts (it showed "Cancellec")."""
    index = EntryIndex()
    index.add([replace(s, state=EntryState.PARKED) for s in realistic_summaries(50, seed=5)])
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1600, 700)
    qtbot.wait(10)
    table = view.table
    metrics = table.fontMetrics()
    state = COLUMN_NAMES.index("state")
    widest = max(metrics.horizontalAdvance(label) for label in STATE_LABELS.values())
    assert table.columnWidth(state) >= widest + 22  # the pill: 14 px of ends, 8 px of margins
