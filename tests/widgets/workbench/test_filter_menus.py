"""The filter menus as an operator uses them: click the button, click a value, read the rows.

The menus are opened by a real mouse click on the filter button (a QToolButton
whose menu pops up in its own event loop) and their entries are clicked where
they are drawn, so the test goes through the same signal path as a person.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from services.workbench.index import EntryIndex
from services.workbench.model import EntryState, EntrySummary
from tests.helpers.summaries import realistic_summaries
from widgets.workbench.browser import FailedPaymentsView
from widgets.workbench.filter_bar import MultiSelectButton

# a popup menu under the offscreen platform says it cannot raise or grab the keyboard
pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support raise", "This plugin does not support grabbing"
)


@pytest.fixture
def rows() -> list[EntrySummary]:
    return realistic_summaries(600, seed=3)


@pytest.fixture
def view(qtbot, rows) -> FailedPaymentsView:
    index = EntryIndex()
    index.add(rows)
    widget = FailedPaymentsView(index)
    qtbot.addWidget(widget)
    widget.resize(1600, 900)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown(view: FailedPaymentsView) -> list[EntrySummary]:
    return [view.model.summary_at(r) for r in range(view.model.rowCount())]


def wait_rows(qtbot, view: FailedPaymentsView, expected: set[str]) -> None:
    """Wait out the filters' debounce, then the table shows exactly ``expected``."""
    qtbot.waitUntil(lambda: {s.entry_id for s in shown(view)} == expected, timeout=3000)


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
    view.grab().save("/tmp/shots9c/filter_menu.png")
