"""Small toolbar icons drawn in code, so they follow the theme's colours at any DPI."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QPolygonF

from widgets.common import colors

_SIZE = 32


def _canvas() -> tuple[QPixmap, QPainter]:
    pixmap = QPixmap(_SIZE, _SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    return pixmap, painter


def pause_icon(colour: str = colors.TEXT) -> QIcon:
    """Two vertical bars."""
    pixmap, painter = _canvas()
    painter.setBrush(QColor(colour))
    painter.drawRoundedRect(QRectF(8, 6, 6, 20), 1.5, 1.5)
    painter.drawRoundedRect(QRectF(18, 6, 6, 20), 1.5, 1.5)
    painter.end()
    return QIcon(pixmap)


def play_icon(colour: str = colors.GREEN) -> QIcon:
    """A triangle pointing right."""
    pixmap, painter = _canvas()
    painter.setBrush(QColor(colour))
    painter.drawPolygon(QPolygonF([QPointF(9, 6), QPointF(26, 16), QPointF(9, 26)]))
    painter.end()
    return QIcon(pixmap)
