"""A one-line label that shows the longest of its texts that fits, never one cut mid-word.

The status bar's texts (``RabbitMQ failed: connection refused to 127.0.0.1:5679 ·
retrying in 4 s``) are given with shorter forms (``RabbitMQ failed · retrying in 4 s``,
``RabbitMQ failed``): when the window is narrow the label drops the detail rather than
cutting an address in the middle. Only when even the shortest does not fit is it elided
(``…``). The full text is the tooltip's first line.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MIN_CHARS = 8
"""The narrowest the label goes, in average characters (then it elides)."""


class FittedLabel(QLabel):
    """A label of texts from the fullest to the shortest; shows the first that fits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._texts: tuple[str, ...] = ("",)
        self._tip = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def set_texts(self, *texts: str, tooltip: str = "") -> None:
        """The fullest text first, then shorter forms of it; ``tooltip`` under the full text."""
        self._texts = tuple(t for t in texts if t) or ("",)
        self._tip = tooltip
        self.updateGeometry()
        self._fit()

    def full_text(self) -> str:
        """The fullest text (what :meth:`text` shows when there is room)."""
        return self._texts[0]

    def texts(self) -> tuple[str, ...]:
        """Every form, fullest first."""
        return self._texts

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._texts[0])
        return QSize(width + margins.left() + margins.right() + 2, hint.height())

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        metrics = self.fontMetrics()
        shortest = metrics.horizontalAdvance(self._texts[-1])
        width = min(shortest, metrics.averageCharWidth() * MIN_CHARS)
        return QSize(width, hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.contentsRect().width()
        metrics = self.fontMetrics()
        shown = next((t for t in self._texts if metrics.horizontalAdvance(t) <= room), None)
        if shown is None:
            shown = metrics.elidedText(self._texts[-1], Qt.TextElideMode.ElideRight, room)
        if shown != super().text():
            super().setText(shown)
        full = self._texts[0]
        tip = f"{full}\n{self._tip}" if self._tip and self._tip != full else full
        if self.toolTip() != tip:
            self.setToolTip(tip)
