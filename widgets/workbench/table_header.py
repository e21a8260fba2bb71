"""The failed-payments table's header: the sort arrow beside a right-aligned title.

The style draws a section's sort arrow at its right edge, over a title aligned
to the right ("Amount"): such a section's title is drawn left of the arrow.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QHeaderView, QStyle, QStyleOptionHeader, QWidget

ARROW_ROOM: Final = 18
"""What a section gives its sort arrow at its right edge (the table widens a sorted
section by as much)."""


class EntriesHeader(QHeaderView):
    """A horizontal header whose sort arrow never covers a right-aligned title."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setSectionsClickable(True)  # what QTableView gives the header it makes itself

    def paintSection(self, painter: QPainter, rect: QRect, logicalIndex: int) -> None:
        model = self.model()
        aligned = (
            model.headerData(logicalIndex, self.orientation(), Qt.ItemDataRole.TextAlignmentRole)
            if model is not None
            else None
        )
        right = isinstance(aligned, int) and bool(aligned & Qt.AlignmentFlag.AlignRight)
        sorted_here = self.isSortIndicatorShown() and logicalIndex == self.sortIndicatorSection()
        if not (right and sorted_here) or not rect.isValid():
            super().paintSection(painter, rect, logicalIndex)
            return
        option = QStyleOptionHeader()
        self.initStyleOption(option)
        self.initStyleOptionForIndex(option, logicalIndex)
        option.rect = rect
        title = option.text
        style = self.style()
        painter.save()
        option.text = ""  # the section and its arrow
        style.drawControl(QStyle.ControlElement.CE_Header, option, painter, self)
        option.text = title  # then the title, in the room left of the arrow
        option.sortIndicator = QStyleOptionHeader.SortIndicator.None_
        option.rect = rect.adjusted(0, 0, -ARROW_ROOM, 0)
        style.drawControl(QStyle.ControlElement.CE_HeaderLabel, option, painter, self)
        painter.restore()
