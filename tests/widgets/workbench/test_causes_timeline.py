"""The workbench by cause, driven as a person does: the Cause column and its tooltip, the
group panel's failure groups (click, select all, right-click actions), the Timeline tab,
a payment page, and a payment id entered in the search box."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMenu

from services.workbench.index import EntryIndex
from services.workbench.model import EntryState, EntrySummary
from tests.helpers.detail_entries import make_entry, timeline_trace
from tests.helpers.screens import right_click, save_screenshot
from tests.helpers.summaries import realistic_summaries
from widgets.workbench.browser import SEARCH_DEBOUNCE_MS, FailedPaymentsView
from widgets.workbench.detail import EntryDetailPane
from widgets.workbench.group_panel import GroupByPanel
from widgets.workbench.table_model import COLUMN_NAMES

POPUP_WARNINGS = pytest.mark.qt_log_ignore(
    "This plugin does not support raise", "This plugin does not support grabbing"
)  # the offscreen platform on showing a popup menu: not ours
NOW_MS = int(time.time() * 1000)
OUTAGE = "acquirer outage: acq-# refused the connection (#)"


@pytest.fixture
def rows() -> list[EntrySummary]:
    return realistic_summaries(1500, seed=11, now_ms=NOW_MS)


@pytest.fixture
def view(qtbot, rows) -> FailedPaymentsView:
    index = EntryIndex()
    index.add(rows)
    widget = FailedPaymentsView(index)
    qtbot.addWidget(widget)
    widget.resize(1500, 900)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _items(panel: GroupByPanel) -> dict[str, object]:
    return {item.data(0, Qt.ItemDataRole.UserRole): item for item in panel.group_items()}


def _click_item(qtbot, panel: GroupByPanel, value: str) -> None:
    item = _items(panel)[value]
    rect = panel.list.visualItemRect(item)
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_the_cause_column_shows_the_cause_and_says_where_it_came_from(view, rows):
    cause = COLUMN_NAMES.index("cause")
    model = view.model
    assert not view.table.horizontalHeader().isSectionHidden(cause)
    assert view.table.horizontalHeader().isSectionHidden(COLUMN_NAMES.index("reason"))
    flow_row = next(
        r for r in range(model.rowCount()) if model.summary_at(r).cause_source == "flow"
    )
    summary = model.summary_at(flow_row)
    assert model.index(flow_row, cause).data() == summary.cause
    tip = model.index(flow_row, cause).data(Qt.ItemDataRole.ToolTipRole)
    assert "From the payment's failure event on the flow" in tip
    assert f"Failure group: {summary.failure_group}" in tip
    reason_row = next(
        r for r in range(model.rowCount()) if model.summary_at(r).cause_source == "dead_letter"
    )
    tip = model.index(reason_row, cause).data(Qt.ItemDataRole.ToolTipRole)
    assert "From the dead-letter reason" in tip


def test_failure_groups_show_their_numbers_and_a_click_filters_to_one(qtbot, view, rows):
    panel = view.group_panel
    assert panel.by == "failure_group" and panel.choice.currentText() == "Cause"
    items = _items(panel)
    outage = [r for r in rows if r.failure_group == OUTAGE]
    assert items[OUTAGE].text(1) == f"{len(outage):,}"
    lines = items[OUTAGE].data(0, Qt.ItemDataRole.UserRole + 11)
    open_eur = sum(
        r.amount_value or 0
        for r in outage
        if r.currency == "EUR" and r.state in (EntryState.PARKED, EntryState.CLAIMED)
    )
    assert f"{open_eur:,.2f}\u00a0EUR" in lines[0] and lines[0].endswith("at risk")
    merchants = len({r.merchant for r in outage if r.merchant})
    assert lines[1].startswith(f"{merchants:,} merchants · ")
    tip = items[OUTAGE].toolTip(0)
    assert "At risk: " in tip and f"Merchants affected: {merchants}" in tip
    assert "First seen" in tip and "Causes from the flow's failure events" in tip

    _click_item(qtbot, panel, OUTAGE)
    assert view.query.failure_groups == {OUTAGE}
    assert view.model.rowCount() == len(outage)
    with qtbot.waitSignal(view.selection_changed, timeout=2000) as selected:
        qtbot.mouseClick(panel.select_all_button, Qt.MouseButton.LeftButton)
    assert sorted(selected.args[0]) == sorted(r.entry_id for r in outage)
    _click_item(qtbot, panel, OUTAGE)  # again: every group
    assert view.query.failure_groups == frozenset()
    assert view.model.rowCount() == len(rows)


@POPUP_WARNINGS
def test_a_failure_groups_menu_acts_on_the_whole_group(qtbot, view, rows):
    panel = view.group_panel
    item = _items(panel)[OUTAGE]
    right_click(panel.list.viewport(), panel.list.visualItemRect(item).center())
    menu = panel.context_menu
    assert isinstance(menu, QMenu)
    count = sum(r.failure_group == OUTAGE for r in rows)
    requeue = next(a for a in menu.actions() if a.text().startswith("Requeue all"))
    assert requeue.text() == f"Requeue all {count:,} in “{OUTAGE}”"
    with qtbot.waitSignal(view.action_requested, timeout=1000) as requested:
        requeue.trigger()
    menu.close()
    name, target = requested.args
    assert name == "requeue" and target.count == count
    assert target.query.failure_groups == {OUTAGE}
    assert "cause" in target.description


@POPUP_WARNINGS
def test_right_click_on_a_cause_shows_only_its_failure_group(qtbot, view):
    cause = COLUMN_NAMES.index("cause")
    row = next(r for r in range(50) if view.model.summary_at(r).failure_group == OUTAGE)
    right_click(view.table.viewport(), view.table.visualRect(view.model.index(row, cause)).center())
    menu = view.context_menu
    assert isinstance(menu, QMenu)
    only = next(a for a in menu.actions() if a.text().startswith("Show only cause"))
    assert OUTAGE in only.text()
    only.trigger()
    menu.close()
    assert view.query.failure_groups == {OUTAGE}


@POPUP_WARNINGS
def test_reason_routing_key_and_last_operator_are_in_the_column_chooser(qtbot, view):
    header = view.table.horizontalHeader()
    right_click(header.viewport(), QPoint(header.sectionViewportPosition(1) + 10, 8))
    menu = view.table.header_menu
    assert isinstance(menu, QMenu)
    ticks = {a.text(): a for a in menu.actions() if a.isCheckable()}
    assert ticks["Cause"].isChecked()
    for title in ("Reason", "Routing key", "Last operator"):
        assert not ticks[title].isChecked()
    ticks["Reason"].trigger()
    menu.close()
    assert "reason" in view.table.shown_columns()


def test_enter_on_one_word_in_the_search_box_asks_for_that_payments_timeline(qtbot, view):
    search = view.search_box
    qtbot.mouseClick(search, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(view.payment_entered, timeout=1000) as entered:
        qtbot.keyClicks(search, "pay_42abc")
        qtbot.keyClick(search, Qt.Key.Key_Return)
    assert entered.args == ["pay_42abc"]
    assert view.query.text == "pay_42abc"  # and the table is filtered to it, as ever
    search.clear()
    with qtbot.assertNotEmitted(view.payment_entered, wait=100):
        qtbot.keyClicks(search, "acme books")  # words: a search, not a payment id
        qtbot.keyClick(search, Qt.Key.Key_Return)


def test_the_timeline_tab_tells_the_payments_whole_story(qtbot, tmp_path: Path):
    pane = EntryDetailPane()
    qtbot.addWidget(pane)
    pane.resize(620, 800)
    pane.show()
    qtbot.waitExposed(pane)
    pane.show_entry(make_entry())
    bar = pane.tabs.tabBar()
    titles = [bar.tabText(i) for i in range(bar.count())]
    assert titles[-1] == "Timeline"  # nothing known yet
    pane.show_timeline(timeline_trace())
    index = pane.tabs.indexOf(pane.timeline)
    assert bar.tabText(index) == "Timeline (6)"
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    assert pane.tabs.currentWidget() is pane.timeline
    save_screenshot(pane, tmp_path, "payops_detail_timeline.png")
    rows = pane.timeline.rows()
    assert [r[1] for r in rows] == [
        "requested",
        "failed",
        "dead-lettered",
        "parked",
        "requeue",
        "captured (replayed)",
    ]
    assert rows[1][3] == "acquirer timeout after 3012 ms on acq-7"
    assert rows[2][3] == "rejected in payments.process"
    assert rows[4][2:] == ("alice", "acquirer back; requeued 1 · then captured")
    assert "." not in rows[2][0].split()[-1]  # an x-death time: to the second only
    assert "parked entries: requeued in payments.dlq" in pane.timeline.note.text()

    other = make_entry(entry_id="01900a1b2c3d00000002")
    pane.show_entry(other)  # another entry: its story is not known yet
    assert bar.tabText(index) == "Timeline"


def test_a_payment_with_no_parked_entry_shows_its_timeline_alone(qtbot):
    pane = EntryDetailPane()
    qtbot.addWidget(pane)
    pane.resize(620, 800)
    pane.show()
    pane.show_payment(timeline_trace("pay_flow_only", parked=False))
    assert pane.stack.currentWidget() is pane.payment_page
    assert pane.payment_title.text() == "pay_flow_only · not in the workbench"
    assert [r[1] for r in pane.payment_timeline.rows()] == ["requested", "failed", "dead-lettered"]
    assert "not parked" in pane.payment_timeline.note.text()


def test_a_long_detail_wraps_in_the_timeline_instead_of_being_cut(qtbot, tmp_path: Path):
    pane = EntryDetailPane()
    qtbot.addWidget(pane)
    pane.resize(440, 700)
    pane.show()
    qtbot.waitExposed(pane)
    pane.show_entry(make_entry())
    pane.show_timeline(timeline_trace())  # filled while another tab is in front
    bar = pane.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(bar.count() - 1).center())
    table = pane.timeline.table
    qtbot.waitUntil(lambda: table.rowHeight(4) > table.rowHeight(0))  # the action's note wraps
    save_screenshot(pane, tmp_path, "payops_detail_timeline_narrow.png")
    detail = table.item(4, 3)
    column = table.columnWidth(3)
    lines = table.rowHeight(4) // table.fontMetrics().lineSpacing()
    assert lines * column >= table.fontMetrics().horizontalAdvance(detail.text())


def test_a_live_change_right_after_a_filter_choice_does_not_undo_it(qtbot, view, rows):
    # The flow tells a cause after parking (an op=cause change) while the operator's choice
    # waits for the search debounce: the refresh that change brings applies the choice.
    reason = view.filter_bar.buttons["reason"]
    reason.choose({"expired"})  # what a click in the filter's menu does
    view.refresh()  # the live change, before the debounce ran out
    assert view.query.reasons == {"expired"}
    assert reason.text() == "Reason: expired"
    qtbot.wait(SEARCH_DEBOUNCE_MS + 50)
    assert view.query.reasons == {"expired"}
    assert view.model.rowCount() == sum(r.reason == "expired" for r in rows)


def test_a_cause_and_a_timeline_detail_with_control_characters_read_as_escapes(qtbot):
    """A dead letter whose reason holds an ESC sequence, a NUL and a card number (found on
    screen in the Xvfb trial: the table's Cause cell and the Timeline's detail drew the
    ESC and NUL as boxes): both show them as ``\\xNN``, the card number masked."""
    reason = "rejected\x1b[31m card 4111 1111 1111 1111\x00 by acq"
    shown = "rejected\\x1b[31m card 411111******1111\\x00 by acq"
    row = replace(realistic_summaries(1, seed=5, now_ms=NOW_MS)[0], cause=reason, reason=reason)
    index = EntryIndex()
    index.add([row])
    view = FailedPaymentsView(index)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    model = view.model
    for name in ("cause", "reason"):
        cell = model.index(0, COLUMN_NAMES.index(name))
        assert cell.data() == shown, name
        assert shown in cell.data(Qt.ItemDataRole.ToolTipRole)

    pane = EntryDetailPane()
    qtbot.addWidget(pane)
    pane.show()
    qtbot.waitExposed(pane)
    pane.show_entry(make_entry())
    trace = timeline_trace()
    steps = list(trace.steps)
    steps[2] = replace(steps[2], detail=f"{reason} in payments.\x00auth")
    pane.show_timeline(replace(trace, steps=tuple(steps)))
    index_of = pane.tabs.indexOf(pane.timeline)
    bar = pane.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index_of).center())
    detail = pane.timeline.rows()[2][3]
    assert detail == f"{shown} in payments.\\x00auth"
