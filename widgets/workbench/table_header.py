"""The failed-payments table's header: the sort arrow beside the title, pointing the way
the rows run.

The style draws a section's sort arrow at its right edge, over a title aligned
to the right ("Amount"): a sorted section's title is drawn left of the arrow.
The arrow points down when the rows run from the largest, newest down (Qt's
``DescendingOrder``: the time column's newest first) and up when they run from the
smallest, oldest up. Qt's Fusion style on Linux draws it the other way round
(``DescendingOrder`` maps to ``SortUp``, an arrow pointing up, over rows running newest
first): the header draws the arrow itself, the same on every platform.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QHeaderView, QStyle, QStyleOptionHeader, QWidget

ARROW_ROOM: Final = 18
"""What a section gives its sort arrow at its right edge (the table widens a sorted
section by as much)."""
ARROW: Final = {
    True: QStyle.PrimitiveElement.PE_IndicatorArrowDown,  # descending: newest, largest first
    False: QStyle.PrimitiveElement.PE_IndicatorArrowUp,
}
"""The arrow drawn for a descending (True) or ascending (False) sort."""


class EntriesHeader(QHeaderView):
    """A horizontal header whose sort arrow never covers a right-aligned title."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setSectionsClickable(True)  # what QTableView gives the header it makes itself

    def paintSection(self, painter: QPainter, rect: QRect, logicalIndex: int) -> None:
        sorted_here = self.isSortIndicatorShown() and logicalIndex == self.sortIndicatorSection()
        if not sorted_here or not rect.isValid():
            super().paintSection(painter, rect, logicalIndex)
            return
        option = QStyleOptionHeader()
        self.initStyleOption(option)
        self.initStyleOptionForIndex(option, logicalIndex)
        option.rect = rect
        style = self.style()
        arrow = QStyleOptionHeader(option)  # where the style puts its arrow
        arrow.rect = style.subElementRect(QStyle.SubElement.SE_HeaderArrow, option, self)
        title = option.text
        painter.save()
        option.text = ""  # the section alone
        option.sortIndicator = QStyleOptionHeader.SortIndicator.None_
        style.drawControl(QStyle.ControlElement.CE_Header, option, painter, self)
        option.text = title  # then the title, in the room left of the arrow
        label = style.subElementRect(QStyle.SubElement.SE_HeaderLabel, option, self)
        label.setRight(min(label.right(), rect.right() - ARROW_ROOM))
        option.rect = label
        style.drawControl(QStyle.ControlElement.CE_HeaderLabel, option, painter, self)
        if arrow.rect.isValid():
            descending = self.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
            style.drawPrimitive(ARROW[descending], arrow, painter, self)
        painter.restore()
