"""The filter menus and the group list: counts that follow entries arriving while a menu
is open, the words for an entry without an origin queue, and masked values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMenu

from services.workbench.index import EntryIndex
from services.workbench.model import EntryState
from tests.helpers.screens import show
from tests.helpers.summaries import NOW_MS, realistic_summaries
from widgets.workbench.browser import FailedPaymentsView

POPUP_WARNINGS = pytest.mark.qt_log_ignore(
    "This plugin does not support raise", "This plugin does not support grabbing"
)


def _count(menu: QMenu, label: str) -> int:
    for action in menu.actions():
        title, _, count = action.text().partition("\t")
        if title == label:
            return int(count.replace(",", ""))
    raise AssertionError(f"no {label!r} in {[a.text() for a in menu.actions()]}")


def _in_open_menu(qtbot, button, gesture: Callable[[QMenu], None]) -> None:
    """Click ``button`` (its menu pops up), do ``gesture`` in the open menu, close it."""
    done: list[bool] = []

    def act() -> None:
        menu = button.menu()
        assert menu.isVisible(), "the menu is open"
        try:
            gesture(menu)
        finally:
            done.append(True)
            menu.close()

    QTimer.singleShot(50, act)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # returns when the menu closes
    qtbot.waitUntil(lambda: bool(done), timeout=5000)


@POPUP_WARNINGS
def test_the_state_menu_counts_follow_entries_arriving_while_it_is_open(qtbot):
    index = EntryIndex()
    rows = realistic_summaries(300, seed=3)
    index.add(rows)
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1400, 700)
    parked = sum(1 for s in rows if s.state is EntryState.PARKED)
    seen: dict[str, int] = {}

    def while_open(menu: QMenu) -> None:
        seen["opened"] = _count(menu, "Parked")
        newer = realistic_summaries(200, seed=9, now_ms=NOW_MS + 7 * 3600 * 1000)
        arrived = sum(1 for s in newer if s.state is EntryState.PARKED)
        seen["expected"] = parked + arrived
        index.add(newer)
        view.request_refresh()  # the app's way: a throttled refresh after adding rows
        qtbot.waitUntil(lambda: view.model.rowCount() == 500)
        seen["open"] = _count(menu, "Parked")

    _in_open_menu(qtbot, view.filter_bar.buttons["state"], while_open)
    assert seen["opened"] == parked
    assert seen["open"] == seen["expected"] > parked


@POPUP_WARNINGS
def test_entries_without_an_origin_queue_are_named_so_in_the_queue_menu_and_groups(qtbot):
    rows = realistic_summaries(60, seed=5)
    rows[:7] = [replace(s, origin_queue="") for s in rows[:7]]  # dead letters without x-death
    index = EntryIndex()
    index.add(rows)
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1400, 700)
    seen: dict[str, object] = {}

    def while_open(menu: QMenu) -> None:
        seen["labels"] = [action.text().partition("\t")[0] for action in menu.actions()]
        seen["count"] = _count(menu, "no origin queue")

    _in_open_menu(qtbot, view.filter_bar.buttons["origin_queue"], while_open)
    assert seen["count"] == 7
    assert "(empty)" not in seen["labels"]
    panel = view.group_panel
    panel.choice.setCurrentIndex(panel.choice.findData("origin_queue"))  # as a pick in it does
    assert panel.by == "origin_queue"
    listed = view.group_panel.list
    texts = [listed.topLevelItem(i).text(0) for i in range(listed.topLevelItemCount())]
    assert any(text.startswith("no origin queue") for text in texts), texts


@POPUP_WARNINGS
def test_a_card_number_in_a_queue_or_reason_is_masked_in_the_menu_and_the_groups(qtbot):
    pan = "4111111111111111"
    rows = realistic_summaries(40, seed=7)
    rows[:5] = [
        replace(s, origin_queue=f"payments.{pan}", reason=f"rejected {pan}") for s in rows[:5]
    ]
    index = EntryIndex()
    index.add(rows)
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1400, 700)
    seen: dict[str, list[str]] = {}

    def while_open(menu: QMenu) -> None:
        seen["labels"] = [action.text() for action in menu.actions()]

    _in_open_menu(qtbot, view.filter_bar.buttons["origin_queue"], while_open)
    assert any("payments." in label for label in seen["labels"]), seen["labels"]
    assert not any(pan in label for label in seen["labels"]), seen["labels"]
    panel = view.group_panel
    for by in ("origin_queue", "reason"):
        panel.choice.setCurrentIndex(panel.choice.findData(by))
        listed = panel.list
        items = [listed.topLevelItem(i) for i in range(listed.topLevelItemCount())]
        shown = [item.text(0) + item.toolTip(0) for item in items]
        assert len(shown) > 1, shown
        assert not any(pan in text for text in shown), shown
