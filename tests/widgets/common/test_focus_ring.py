"""Tab shows where the keyboard focus is: every widget it lands on draws the focus ring."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QWidget

from services.workbench.index import EntryIndex
from tests.helpers.images import pixels
from tests.helpers.screens import show
from tests.helpers.summaries import realistic_summaries
from widgets.common import colors
from widgets.workbench.browser import FailedPaymentsView


def _ring_pixels(widget: QWidget) -> int:
    """How many pixels of ``widget`` are the focus ring's colour."""
    ring = QColor(colors.FOCUS_RING).rgb() & 0xFFFFFF
    return int(np.count_nonzero((pixels(widget.grab().toImage()) & 0xFFFFFF) == ring))


def test_tab_through_the_workbench_shows_a_focus_ring_on_each_stop(qtbot) -> None:
    index = EntryIndex()
    index.add(realistic_summaries(50, now_ms=int(time.time() * 1000)))
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1400, 700)
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow)
    qtbot.mouseClick(view.search_box, Qt.MouseButton.LeftButton)
    visited: list[QWidget] = []
    for _ in range(12):
        focused = QApplication.focusWidget()
        assert focused is not None
        if focused in visited:
            break  # the time filter's edit takes Tab for its own sections
        visited.append(focused)
        qtbot.wait(10)
        assert _ring_pixels(focused) > 20, f"no focus ring on {focused!r}"
        qtbot.keyClick(focused, Qt.Key.Key_Tab)
    names = [w.objectName() for w in visited]
    assert names[:6] == ["SearchBox"] + ["FilterButton"] * 5  # state, reason, queue, DLQ, merchant
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton)
    assert QApplication.focusWidget() is view.table
    qtbot.wait(10)
    assert _ring_pixels(view.table) > 100  # the table's border
