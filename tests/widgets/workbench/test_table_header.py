"""The table's header: the sort arrow beside a right-aligned title, not over it, and pointing
the way the rows run (down: newest first)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from services.workbench.index import EntryIndex
from tests.helpers.images import pixels
from tests.helpers.screens import show
from tests.helpers.summaries import realistic_summaries
from widgets.workbench.browser import FailedPaymentsView
from widgets.workbench.table_header import ARROW_ROOM
from widgets.workbench.table_model import COLUMN_NAMES


def _ink_columns(view: FailedPaymentsView, position: int) -> np.ndarray:
    """The x of every pixel column of a section's grab that holds more than the background."""
    header = view.table.horizontalHeader()
    left = header.sectionViewportPosition(position)
    image = header.grab().copy(left + 2, 2, header.sectionSize(position) - 4, header.height() - 4)
    values = pixels(image.toImage())
    background = np.bincount(values.ravel() & 0xFFFFFF).argmax()  # the most common colour
    return np.flatnonzero(((values & 0xFFFFFF) != background).any(axis=0))


def _shown_view(qtbot) -> FailedPaymentsView:
    """The failed-payments view of 200 realistic rows, shown 1400 px wide."""
    index = EntryIndex()
    index.add(realistic_summaries(200, seed=3))
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1400, 600)
    qtbot.wait(10)
    return view


def test_the_sort_arrow_does_not_overlap_the_right_aligned_amount_title(qtbot):
    view = _shown_view(qtbot)
    header = view.table.horizontalHeader()
    amount = COLUMN_NAMES.index("amount")
    unsorted = _ink_columns(view, amount)  # the title alone
    title_width = unsorted[-1] - unsorted[0] + 1

    middle = header.sectionViewportPosition(amount) + header.sectionSize(amount) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(middle, 8))
    assert view.query.sort_key == "amount"
    qtbot.wait(10)
    ink = _ink_columns(view, amount)  # the title and the arrow
    gaps = np.flatnonzero(np.diff(ink) > 3)  # letters are 1-2 px apart
    assert len(gaps), f"the arrow touches the title: {ink}"
    title = ink[: gaps[-1] + 1]
    arrow = ink[gaps[-1] + 1 :]
    assert title[-1] - title[0] + 1 == title_width  # the title whole, beside the arrow
    assert len(arrow) < title_width / 2


def _arrow_points(view: FailedPaymentsView, position: int) -> str:
    """ "down" or "up": which way the sort arrow drawn at a section's right edge points (a
    triangle's widest row is its base)."""
    header = view.table.horizontalHeader()
    right = header.sectionViewportPosition(position) + header.sectionSize(position)
    image = header.grab().copy(right - ARROW_ROOM, 2, ARROW_ROOM - 2, header.height() - 4)
    values = pixels(image.toImage()) & 0xFFFFFF
    background = np.bincount(values.ravel()).argmax()
    widths = np.count_nonzero(values != background, axis=1)
    rows = np.flatnonzero(widths)
    assert len(rows) >= 3, f"no arrow drawn: {widths}"
    top, bottom = widths[rows[0]], widths[rows[-1]]
    assert top != bottom, f"not a triangle: {widths[rows]}"
    return "down" if top > bottom else "up"


def test_the_sort_arrow_points_the_way_the_rows_run_and_flips_with_a_click(qtbot):
    view = _shown_view(qtbot)
    header = view.table.horizontalHeader()
    column = COLUMN_NAMES.index("dead_lettered_at")
    model = view.model

    def times() -> list[int]:
        return [model.summary_at(r).dead_lettered_at_ms for r in range(model.rowCount())]

    # At start the rows run newest first: Qt's DescendingOrder, an arrow pointing down.
    assert times() == sorted(times(), reverse=True)
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert _arrow_points(view, column) == "down"

    middle = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(middle, 8))
    qtbot.wait(10)
    assert times() == sorted(times())  # oldest first
    assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    assert _arrow_points(view, column) == "up"

    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(middle, 8))
    qtbot.wait(10)
    assert times() == sorted(times(), reverse=True)
    assert _arrow_points(view, column) == "down"
