"""The table's header: the sort arrow beside a right-aligned title, not over it."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from services.workbench.index import EntryIndex
from tests.helpers.images import pixels
from tests.helpers.screens import show
from tests.helpers.summaries import realistic_summaries
from widgets.workbench.browser import FailedPaymentsView
from widgets.workbench.table_model import COLUMN_NAMES


def _ink_columns(view: FailedPaymentsView, position: int) -> np.ndarray:
    """The x of every pixel column of a section's grab that holds more than the background."""
    header = view.table.horizontalHeader()
    left = header.sectionViewportPosition(position)
    image = header.grab().copy(left + 2, 2, header.sectionSize(position) - 4, header.height() - 4)
    values = pixels(image.toImage())
    background = np.bincount(values.ravel() & 0xFFFFFF).argmax()  # the most common colour
    return np.flatnonzero(((values & 0xFFFFFF) != background).any(axis=0))


def test_the_sort_arrow_does_not_overlap_the_right_aligned_amount_title(qtbot):
    index = EntryIndex()
    index.add(realistic_summaries(200, seed=3))
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1400, 600)
    qtbot.wait(10)
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
