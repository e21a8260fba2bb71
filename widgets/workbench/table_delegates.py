"""The failed-payments table's delegates: payment ids elided in the middle, states as pills."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from services.workbench.model import EntryState
from widgets.common import colors
from widgets.workbench.table_model import STATE_ROLE


class MiddleElideDelegate(QStyledItemDelegate):
    """Elides in the middle, so both ends of an id stay readable."""

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


class StatePillDelegate(QStyledItemDelegate):
    """Draws an entry's state as a small coloured pill."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        value = index.data(STATE_ROLE)
        try:
            state = EntryState(value)
        except ValueError:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text = opt.text
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        cell = opt.rect
        metrics = opt.fontMetrics
        height = metrics.height() + 2
        width = min(metrics.horizontalAdvance(text) + 14, cell.width() - 8)
        pill = QRectF(cell.left() + 5, cell.center().y() - height / 2 + 1, width, height)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        alternate = bool(opt.features & QStyleOptionViewItem.ViewItemFeature.Alternate)
        base = colors.ACCENT_DIM if selected else colors.SURFACE if alternate else colors.PLOT_BG
        ink, fill, edge = colors.pill_colors(state, base, selected=selected)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(edge), 1))
        painter.setBrush(QColor(fill))
        painter.drawRoundedRect(pill, height / 2, height / 2)
        painter.setPen(QColor(ink))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
