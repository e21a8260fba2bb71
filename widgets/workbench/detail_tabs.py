"""The detail pane's tabs (Body, Properties, Headers, x-death, Audit, Timeline)."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import QTabWidget, QWidget

TAB_STYLE: Final = """
QTabBar::tab { padding: 6px 8px; }
QTabBar::tab:focus { padding: 5px 7px 6px 7px; }
"""


class DetailTabs(QTabWidget):
    """Every title whole in the default ~400 px pane: tighter padding than the app's tabs
    (the same size with the focus ring's thicker border), never elided; in a pane dragged
    narrower still, scroll buttons rather than "A…". Titles carry counts ("Headers (7)")
    while all of them fit the bar; where they do not (a 1280 px window's pane, about
    380 px), the counts move to the tabs' tooltips so that every tab stays in view.

    The tabs take the height the entry's header leaves them. Their pages hold word-wrapped
    labels, so a plain QTabWidget reports height-for-width, and a vertical box layout
    takes such an item's preferred height as its minimum: in a short pane (a 1280×800
    window) the layout then shared the room out evenly and squeezed the header below its
    own minimum, drawing the facts (Reason, Origin queue, …) over each other.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DetailTabs")
        self.setDocumentMode(True)
        tab_bar = self.tabBar()
        tab_bar.setStyleSheet(TAB_STYLE)
        tab_bar.setElideMode(Qt.TextElideMode.ElideNone)
        tab_bar.setUsesScrollButtons(True)
        tab_bar.setExpanding(False)
        self._titles: dict[int, tuple[str, int]] = {}

    def set_title(self, index: int, title: str, count: int) -> None:
        """Tab ``index`` is ``title (count)``, just ``title`` for 0 or while the titles
        with their counts do not all fit (the count then in its tooltip)."""
        self._titles[index] = (title, count)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit()  # resized before it was shown: measured now

    def _fit(self) -> None:
        bar = self.tabBar()
        metrics = bar.fontMetrics()
        whole = {
            i: f"{title} ({count})" if count else title
            for i, (title, count) in self._titles.items()
        }

        def advance(index: int) -> int:
            return metrics.horizontalAdvance(bar.tabText(index))

        needed = sum(
            bar.tabSizeHint(i).width() - advance(i)
            + metrics.horizontalAdvance(whole.get(i, bar.tabText(i)))
            for i in range(bar.count())
        )  # fmt: skip
        fits = not self.isVisible() or needed <= self.width()
        for index, (title, _) in self._titles.items():
            shown = whole[index] if fits else title
            if bar.tabText(index) != shown:
                bar.setTabText(index, shown)
            bar.setTabToolTip(index, "" if shown == whole[index] else whole[index])

    def hasHeightForWidth(self) -> bool:
        """No height-for-width: the header above keeps its height (see the class)."""
        return False
