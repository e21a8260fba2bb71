"""FailedPaymentsView with pytest-qt: search, filters, group-by, selection, actions, refresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QDateTime, Qt, QTimer
from PySide6.QtGui import QAction, QContextMenuEvent
from PySide6.QtWidgets import QApplication, QMenu

from services.workbench.index import EntryIndex
from services.workbench.model import EntryState, EntrySummary
from services.workbench.query import ActionTarget, Query
from tests.helpers.summaries import NOW_MS, realistic_summaries
from widgets.workbench.action_texts import READ_ONLY_TIP
from widgets.workbench.browser import SEARCH_DEBOUNCE_MS, FailedPaymentsView
from widgets.workbench.filter_bar import MultiSelectButton
from widgets.workbench.table_model import COLUMN_NAMES

POPUP_WARNINGS = pytest.mark.qt_log_ignore(
    "This plugin does not support raise", "This plugin does not support grabbing"
)  # the offscreen platform on showing a popup menu: not ours


@pytest.fixture
def rows() -> list[EntrySummary]:
    return realistic_summaries(2000, seed=1)


@pytest.fixture
def view(qtbot, rows) -> FailedPaymentsView:
    index = EntryIndex()
    index.add(rows)
    widget = FailedPaymentsView(index)
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown_ids(view: FailedPaymentsView) -> list[str]:
    return view.model.entry_ids_at(range(view.model.rowCount()))


def group_item(view: FailedPaymentsView, value):
    items = [
        view.group_panel.list.topLevelItem(i)
        for i in range(view.group_panel.list.topLevelItemCount())
    ]
    return next(item for item in items if item.data(0, Qt.ItemDataRole.UserRole) == value)


def click_group(qtbot, view: FailedPaymentsView, value) -> None:
    item = group_item(view, value)
    rect = view.group_panel.list.visualItemRect(item)
    qtbot.mouseClick(view.group_panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


# --------------------------------------------------------------------------- search and filters


def test_starts_with_every_row_newest_first(view, rows):
    assert view.model.rowCount() == len(rows)
    times = [view.model.summary_at(r).dead_lettered_at_ms for r in range(50)]
    assert times == sorted(times, reverse=True)
    assert view.count_label.text() == f"{len(rows):,} of {len(rows):,} entries"
    header = view.table.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        0,
        Qt.SortOrder.DescendingOrder,
    )


def test_typing_in_the_search_box_filters_after_the_debounce(qtbot, view, rows):
    target = rows[1234]
    assert target.payment_id
    qtbot.keyClicks(view.search_box, target.payment_id[4:14].upper())
    assert view.model.rowCount() == len(rows)  # not yet: the keystrokes are debounced
    started = time.perf_counter()
    qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=2000)
    assert time.perf_counter() - started >= SEARCH_DEBOUNCE_MS / 1000 * 0.5
    assert shown_ids(view) == [target.entry_id]
    assert view.count_label.text() == f"1 of {len(rows):,} entries"
    qtbot.keyClick(view.search_box, Qt.Key.Key_Escape)  # Esc clears the search at once
    assert view.model.rowCount() == len(rows)


def test_search_matches_merchants_and_several_words(qtbot, view, rows):
    qtbot.keyClicks(view.search_box, "acme EXPIRED")
    qtbot.keyClick(view.search_box, Qt.Key.Key_Return)  # Enter: no need to wait
    expected = {s.entry_id for s in rows if s.merchant == "Acme Books" and s.reason == "expired"}
    assert set(shown_ids(view)) == expected and expected


def test_filter_bar_narrows_by_state_reason_queue_time_and_amount(qtbot, view, rows):
    bar = view.filter_bar
    bar.buttons["state"].choose({EntryState.PARKED})
    bar.buttons["reason"].choose({"rejected", "maxlen"})
    bar.buttons["origin_queue"].choose({"payments.capture"})
    qtbot.waitUntil(lambda: view.query.queues == {"payments.capture"}, timeout=2000)
    expected = [
        s
        for s in rows
        if s.state is EntryState.PARKED
        and s.reason in {"rejected", "maxlen"}
        and s.origin_queue == "payments.capture"
    ]
    assert set(shown_ids(view)) == {s.entry_id for s in expected}
    assert bar.buttons["reason"].text() == "Reason: 2 selected"
    assert bar.buttons["state"].text() == "State: Parked"

    bar.amount_min.setText("20")
    bar.amount_max.setText("100.5")
    qtbot.waitUntil(lambda: view.query.amount_max == 100.5, timeout=2000)
    expected = [s for s in expected if s.amount_value is not None and 20 <= s.amount_value <= 100.5]
    assert set(shown_ids(view)) == {s.entry_id for s in expected}

    middle = rows[len(rows) // 2].dead_lettered_at_ms
    bar.dead_from.setDateTime(QDateTime.fromMSecsSinceEpoch(middle - middle % 60_000))
    qtbot.waitUntil(lambda: view.query.dead_from_ms is not None, timeout=2000)
    since = view.query.dead_from_ms
    assert all(
        view.model.summary_at(r).dead_lettered_at_ms >= since for r in range(view.model.rowCount())
    )
    assert bar.clear_button.isEnabled()

    qtbot.mouseClick(bar.clear_button, Qt.MouseButton.LeftButton)
    assert view.model.rowCount() == len(rows)
    assert not view.query.is_filtered
    assert bar.buttons["state"].text() == "State"
    assert bar.amount_min.text() == "" and bar.dead_from.is_any
    assert not bar.clear_button.isEnabled()


def test_filter_menus_offer_values_with_counts(view, rows):
    button = view.filter_bar.buttons["reason"]
    button.menu().aboutToShow.emit()
    texts = [a.text() for a in button.menu().actions() if a.text()]
    rejected = sum(s.reason == "rejected" for s in rows)
    assert texts[0] == "Any"
    assert any(t.startswith("rejected") and t.endswith(f"{rejected:,}") for t in texts)


def test_set_query_shows_it_in_the_controls(view):
    query = Query(text="acme", states=frozenset({EntryState.CANCELLED}), amount_min=5.0)
    view.set_query(query)
    assert view.search_box.text() == "acme"
    assert view.filter_bar.buttons["state"].selected == {EntryState.CANCELLED}
    assert view.filter_bar.amount_min.text() == "5"
    assert view.query == query


def test_header_click_sorts_through_the_model(qtbot, view):
    amount = COLUMN_NAMES.index("amount")
    view.table.sortByColumn(amount, Qt.SortOrder.AscendingOrder)
    assert (view.query.sort_key, view.query.descending) == ("amount", False)
    values = [view.model.summary_at(r).amount_value for r in range(100)]
    assert values == sorted(values)


# --------------------------------------------------------------------------- group by


def test_group_click_filters_and_a_second_click_shows_all(qtbot, view, rows):
    panel = view.group_panel
    assert panel.by == "failure_group"  # by cause: the default
    panel.choice.setCurrentIndex(panel.choice.findText("Reason"))
    assert panel.by == "reason"
    counts = {
        panel.list.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole): panel.list.topLevelItem(
            i
        ).text(1)
        for i in range(panel.list.topLevelItemCount())
    }
    expired = sum(s.reason == "expired" for s in rows)
    assert counts["expired"] == f"{expired:,}"
    click_group(qtbot, view, "expired")
    assert view.query.reasons == {"expired"}
    assert view.model.rowCount() == expired
    assert view.filter_bar.buttons["reason"].text() == "Reason: expired"
    # the other groups stay listed (facet counts) so another one can be picked
    assert panel.list.topLevelItemCount() == 4
    assert panel.select_all_button.text() == f"Select all {expired:,} in group"
    click_group(qtbot, view, "expired")
    assert view.query.reasons == frozenset()
    assert view.model.rowCount() == len(rows)
    assert not panel.select_all_button.isEnabled()


def test_group_by_other_columns(qtbot, view, rows):
    panel = view.group_panel
    panel.set_by("merchant")
    values = [
        panel.list.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
        for i in range(panel.list.topLevelItemCount())
    ]
    assert set(values) == {s.merchant for s in rows}
    click_group(qtbot, view, None)  # rows without a merchant are a group too
    assert view.query.merchants == {None}
    assert {view.model.summary_at(r).merchant for r in range(view.model.rowCount())} == {None}
    panel.set_by("state")
    assert panel.list.topLevelItem(0).text(0) == "Parked"


def test_select_all_in_group_then_requeue_names_exactly_that_group(qtbot, view, rows):
    view.group_panel.set_by("reason")
    click_group(qtbot, view, "delivery_limit")
    expected = [s.entry_id for s in rows if s.reason == "delivery_limit"]
    with qtbot.waitSignal(view.selection_changed, timeout=2000) as selected:
        qtbot.mouseClick(view.group_panel.select_all_button, Qt.MouseButton.LeftButton)
    assert sorted(selected.args[0]) == sorted(expected)
    assert view.selected_label.text() == f"{len(expected):,} selected"
    with qtbot.waitSignal(view.action_requested, timeout=1000) as requested:
        view.actions_by_name["requeue"].trigger()
    name, target = requested.args
    assert name == "requeue"
    assert isinstance(target, ActionTarget) and target.query is None
    assert sorted(target.entry_ids) == sorted(expected)
    assert target.count == len(expected)


def right_click_group(view: FailedPaymentsView, value) -> QMenu:
    """Right-click a group where it is drawn (the context-menu event a right click makes)."""
    viewport = view.group_panel.list.viewport()
    pos = view.group_panel.list.visualItemRect(group_item(view, value)).center()
    reason = QContextMenuEvent.Reason.Mouse
    QApplication.sendEvent(viewport, QContextMenuEvent(reason, pos, viewport.mapToGlobal(pos)))
    menu = view.group_panel.context_menu
    assert isinstance(menu, QMenu) and menu.isVisible()
    return menu


@POPUP_WARNINGS
def test_group_context_actions_target_the_group_query(qtbot, view, rows):
    view.group_panel.set_by("reason")
    view.set_query(Query(states=frozenset({EntryState.PARKED})))
    menu = right_click_group(view, "expired")
    cancel = next(a for a in menu.actions() if a.text().startswith("Cancel all"))
    with qtbot.waitSignal(view.action_requested, timeout=1000) as requested:
        qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(cancel).center())
    name, target = requested.args
    expected = sum(s.reason == "expired" and s.state is EntryState.PARKED for s in rows)
    assert name == "cancel" and target.entry_ids is None
    assert target.query == Query(
        states=frozenset({EntryState.PARKED}), reasons=frozenset({"expired"})
    )
    assert target.count == expected
    assert "expired" in target.description and f"{expected:,}" in target.description


def test_all_matching_names_the_query_not_ids(qtbot, view, rows):
    view.set_query(Query(text="acme", sort_key="amount"))
    shown = view.model.rowCount()
    with qtbot.waitSignal(view.action_requested, timeout=1000) as requested:
        view.all_matching_actions["retry"].trigger()
    name, target = requested.args
    assert name == "retry" and target.entry_ids is None
    assert target.query == Query(text="acme") and target.count == shown
    assert view.all_matching_actions["requeue"].text() == f"Requeue all {shown:,} matching"


# --------------------------------------------------------------------------- selection and keys


def test_selection_emits_entry_ids(qtbot, view):
    with qtbot.waitSignal(view.selection_changed, timeout=1000) as selected:
        view.table.selectRow(3)
    assert selected.args[0] == [view.model.entry_id_at(3)]
    assert view.selected_entry_ids() == [view.model.entry_id_at(3)]
    assert view.actions_by_name["cancel"].isEnabled()


def test_keyboard_shortcuts_act_on_the_selection(qtbot, view):
    view.activateWindow()
    view.table.setFocus()
    view.table.selectRow(0)
    qtbot.waitUntil(view.table.hasFocus, timeout=2000)
    chosen = [view.model.entry_id_at(0)]
    for key, modifiers, name in (
        (Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier, "requeue"),
        (
            Qt.Key.Key_R,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
            "retry",
        ),
        (Qt.Key.Key_Delete, Qt.KeyboardModifier.NoModifier, "cancel"),
    ):
        with qtbot.waitSignal(view.action_requested, timeout=1000) as requested:
            qtbot.keyClick(view.table, key, modifiers)
        assert requested.args[0] == name
        assert requested.args[1].entry_ids == tuple(chosen)

    qtbot.keyClick(view.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert view.search_box.hasFocus()
    with qtbot.assertNotEmitted(view.action_requested, wait=50):
        qtbot.keyClicks(view.search_box, "ab")
        qtbot.keyClick(view.search_box, Qt.Key.Key_Delete)  # edits the text, cancels nothing
        qtbot.keyClick(view.search_box, Qt.Key.Key_Home)
        qtbot.keyClick(view.search_box, Qt.Key.Key_Delete)
    assert view.search_box.text() == "b"


def test_read_only_disables_every_action(qtbot, view):
    view.table.selectRow(0)
    view.set_read_only(True)
    actions = [*view.actions_by_name.values(), *view.all_matching_actions.values()]
    assert not any(a.isEnabled() for a in actions)
    assert all(a.toolTip() == READ_ONLY_TIP for a in actions)
    assert not any(b.isEnabled() for b in view.action_buttons.values())
    assert not view.all_matching_button.isEnabled()
    assert view.all_matching_button.toolTip() == READ_ONLY_TIP
    view.table.setFocus()
    with qtbot.assertNotEmitted(view.action_requested, wait=50):
        qtbot.keyClick(view.table, Qt.Key.Key_Delete)
        view.group_panel.group_action_requested.emit("cancel", "reason", "expired")
    view.set_read_only(False)
    assert all(a.isEnabled() for a in actions)
    assert "read-only" not in view.actions_by_name["requeue"].toolTip()


def test_actions_need_a_selection(view):
    view.table.clearSelection()
    QApplication.processEvents()
    assert not view.actions_by_name["requeue"].isEnabled()
    assert view.all_matching_actions["requeue"].isEnabled()
    view.set_query(Query(text="no such payment anywhere"))
    assert not view.all_matching_actions["cancel"].isEnabled()
    assert view.table.empty_text.startswith("No entries match")


# --------------------------------------------------------------------------- live data


def test_refresh_keeps_selection_and_scroll_by_entry(qtbot, view, rows):
    table = view.table
    table.scrollTo(view.model.index(800, 0), table.ScrollHint.PositionAtTop)
    top_id = view.model.entry_id_at(table.rowAt(0))
    table.selectRow(805)
    chosen = view.selected_entry_ids()
    # newer entries arrive (they sort above everything) and one entry changes state
    newer = [
        replace(s, entry_id=f"{NOW_MS + i:012x}ffffffff", dead_lettered_at_ms=NOW_MS + 10_000 + i)
        for i, s in enumerate(rows[:25])
    ]
    view.index.add(newer)
    view.index.update_state(chosen[0], EntryState.REQUEUED, "alice")
    with qtbot.waitSignal(view.model.result_changed, timeout=1000):
        view.refresh()
    assert view.model.rowCount() == len(rows) + 25
    assert view.selected_entry_ids() == chosen
    assert view.model.entry_id_at(table.rowAt(0)) == top_id
    row = view.model.table_rows(view.index.positions(chosen))[0]
    assert view.model.summary_at(int(row)).state is EntryState.REQUEUED


def test_refresh_at_the_top_shows_new_rows(view, rows):
    assert view.table.verticalScrollBar().value() == 0
    newest = replace(rows[0], entry_id="f" * 20, dead_lettered_at_ms=NOW_MS + 99_000)
    view.index.add([newest])
    view.refresh()
    assert view.model.entry_id_at(view.table.rowAt(0)) == newest.entry_id


def test_request_refresh_is_throttled(qtbot, view, rows):
    runs = []
    view.model.result_changed.connect(runs.append)
    for i in range(20):
        view.index.add([replace(rows[i], entry_id=f"{i:020x}")])
        view.request_refresh()
    qtbot.waitUntil(lambda: len(runs) >= 1, timeout=2000)
    qtbot.wait(50)
    assert len(runs) == 1
    assert view.model.rowCount() == len(rows) + 20


def test_loading_progress_in_the_count_line(view, rows):
    view.set_loading(340_000, 1_000_000)
    assert view.count_label.text() == (
        f"{len(rows):,} of {len(rows):,} entries (loading 340,000 / 1,000,000…)"
    )
    assert view.loading_bar.isVisible() and view.loading_bar.value() == 340_000
    view.set_loading(1_000_000, 1_000_000)
    assert view.count_label.text() == f"{len(rows):,} of {len(rows):,} entries"
    assert not view.loading_bar.isVisible()


def test_set_index_and_empty_state(qtbot):
    widget = FailedPaymentsView()
    qtbot.addWidget(widget)
    assert widget.model.rowCount() == 0
    assert widget.table.empty_text == "No parked failed payments"
    assert not widget.all_matching_button.isEnabled()
    index = EntryIndex()
    index.add(realistic_summaries(10))
    widget.set_index(index)
    assert widget.model.rowCount() == 10
    assert widget.count_label.text() == "10 of 10 entries"


def test_selecting_every_row_of_200_000(qtbot):
    index = EntryIndex()
    template = realistic_summaries(1000)
    for start in range(0, 200_000, 20_000):
        index.add(
            [replace(template[k % 1000], entry_id=f"{start + k:020x}") for k in range(20_000)]
        )
    widget = FailedPaymentsView(index)
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.show()
    with qtbot.waitSignal(widget.selection_changed, timeout=5000) as selected:
        widget.table.selectAll()
    assert len(selected.args[0]) == 200_000
    widget.refresh()
    assert len(widget.selected_table_rows()) == 200_000
    assert np.array_equal(widget.selected_index_rows(), widget.model.result)


@POPUP_WARNINGS
def test_context_menu_offers_actions_and_a_filter_on_the_clicked_value(qtbot, view):
    view.table.set_column_shown("reason", True)  # off by default: the cause says more
    reason = COLUMN_NAMES.index("reason")
    cell = view.model.index(5, reason)
    value = view.model.summary_at(5).reason
    view.table.customContextMenuRequested.emit(view.table.visualRect(cell).center())
    menu = view.context_menu
    assert isinstance(menu, QMenu)
    assert view.selected_entry_ids() == [view.model.entry_id_at(5)]  # right-click selects
    texts = [a.text() for a in menu.actions()]
    assert texts[:3] == ["Requeue", "Retry…", "Cancel…"]
    assert any(t.startswith("Requeue all") for t in texts)
    only = next(a for a in menu.actions() if a.text().startswith("Show only reason"))
    assert value in only.text()
    only.trigger()
    menu.close()
    assert view.query.reasons == {value}


@POPUP_WARNINGS
def test_group_context_menu_names_the_group(qtbot, view, rows):
    panel = view.group_panel
    panel.set_by("reason")
    item = group_item(view, "maxlen")
    panel.list.customContextMenuRequested.emit(panel.list.visualItemRect(item).center())
    menu = panel.context_menu
    assert isinstance(menu, QMenu)
    count = sum(s.reason == "maxlen" for s in rows)
    cancel = next(a for a in menu.actions() if a.text().startswith("Cancel all"))
    assert cancel.text() == f"Cancel all {count:,} in “maxlen”…"
    with qtbot.waitSignal(view.action_requested, timeout=1000) as requested:
        cancel.trigger()
    menu.close()
    assert requested.args[0] == "cancel"
    assert requested.args[1].query.reasons == {"maxlen"} and requested.args[1].count == count


def test_double_click_or_enter_activates_an_entry(qtbot, view):
    view.table.setFocus()
    view.table.selectRow(4)
    with qtbot.waitSignal(view.entry_activated, timeout=1000) as activated:
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert activated.args == [view.model.entry_id_at(4)]


# --------------------------------------------------------------------------- filter menus, clicked
# The menus are opened by a real click on the filter button (its menu pops up in
# its own event loop) and their entries clicked where they are drawn, or
# triggered as a click triggers them: the signal path a person goes through.


def shown_rows(view: FailedPaymentsView) -> list[EntrySummary]:
    return [view.model.summary_at(r) for r in range(view.model.rowCount())]


def wait_rows(qtbot, view: FailedPaymentsView, expected: set[str]) -> None:
    """Wait out the filters' debounce, then the table shows exactly ``expected``."""
    qtbot.waitUntil(lambda: {s.entry_id for s in shown_rows(view)} == expected, timeout=3000)


def menu_action(menu: QMenu, label: str) -> QAction:
    for action in menu.actions():
        if action.text().split("\t")[0] == label:
            return action
    raise AssertionError(f"no {label!r} in {[a.text() for a in menu.actions()]}")


def in_open_menu(qtbot, button: MultiSelectButton, gesture: Callable[[QMenu], None]) -> None:
    """Click ``button`` (its menu pops up), do ``gesture`` in the open menu, close it."""
    seen: list[QMenu] = []

    def act() -> None:
        menu = button.menu()
        assert menu is not None and menu.isVisible(), "the menu is open"
        seen.append(menu)
        gesture(menu)
        menu.close()

    QTimer.singleShot(50, act)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # returns when the menu closes
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)


def click_item(qtbot, label: str) -> Callable[[QMenu], None]:
    def gesture(menu: QMenu) -> None:
        action = menu_action(menu, label)
        qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())

    return gesture


def trigger_item(label: str) -> Callable[[QMenu], None]:
    def gesture(menu: QMenu) -> None:
        menu_action(menu, label).trigger()  # what a click or Enter on the item does

    return gesture


@POPUP_WARNINGS
def test_clicking_a_reason_in_the_menu_filters_the_rows(qtbot, view, rows):
    button = view.filter_bar.buttons["reason"]
    in_open_menu(qtbot, button, click_item(qtbot, "rejected"))
    expected = {s.entry_id for s in rows if s.reason == "rejected"}
    assert 0 < len(expected) < len(rows)
    wait_rows(qtbot, view, expected)
    assert button.text() == "Reason: rejected"
    assert view.count_label.text() == f"{len(expected):,} of {len(rows):,} entries"

    def ticks(menu: QMenu) -> None:
        assert not menu_action(menu, "Any").isChecked()
        assert menu_action(menu, "rejected").isChecked()

    in_open_menu(qtbot, button, ticks)


@POPUP_WARNINGS
def test_each_filter_menu_filters_and_any_shows_every_row_again(qtbot, view, rows):
    for by, label, keep in (
        ("state", "Parked", lambda s: s.state is EntryState.PARKED),
        ("origin_queue", "payments.capture", lambda s: s.origin_queue == "payments.capture"),
        ("dlq", rows[0].dlq, lambda s: s.dlq == rows[0].dlq),
        ("merchant", rows[0].merchant, lambda s: s.merchant == rows[0].merchant),
    ):
        button = view.filter_bar.buttons[by]
        in_open_menu(qtbot, button, trigger_item(label))
        expected = {s.entry_id for s in rows if keep(s)}
        assert expected, by
        wait_rows(qtbot, view, expected)
        in_open_menu(qtbot, button, trigger_item("Any"))
        wait_rows(qtbot, view, {s.entry_id for s in rows})
        assert button.text() == button.caption


@POPUP_WARNINGS
def test_two_values_then_untick_one(qtbot, view, rows):
    button = view.filter_bar.buttons["reason"]

    def two(menu: QMenu) -> None:  # the menu stays open between the clicks
        for label in ("rejected", "expired"):
            action = menu_action(menu, label)
            qtbot.mouseClick(
                menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center()
            )
        assert menu.isVisible()

    in_open_menu(qtbot, button, two)
    wait_rows(qtbot, view, {s.entry_id for s in rows if s.reason in ("rejected", "expired")})
    assert button.text() == "Reason: 2 selected"
    in_open_menu(qtbot, button, click_item(qtbot, "rejected"))
    wait_rows(qtbot, view, {s.entry_id for s in rows if s.reason == "expired"})
    view.grab().save("/tmp/filter_menu.png")
