"""The detail pane's tabs (Body, Properties, Headers, x-death, Audit, Timeline)."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import QTabWidget, QWidget

PADDING: Final = 8
"""A tab's padding left and right (px), tighter than the app's tabs."""
COMPACT_PADDING: Final = 5
"""The same while the titles with their counts do not fit the bar."""


def tab_style(padding: int) -> str:
    """The bar's style: ``padding`` px left and right of a title (the same size with the
    focus ring's thicker border)."""
    return (
        f"QTabBar::tab {{ padding: 6px {padding}px; }}\n"
        f"QTabBar::tab:focus {{ padding: 5px {padding - 1}px 6px {padding - 1}px; }}\n"
    )


class DetailTabs(QTabWidget):
    """Every title whole in the default ~400 px pane, never elided. Titles carry counts
    ("Headers (7)") while all of them fit the bar; where they do not (a 1280 px window's
    pane, about 370 px), the counts move to the tabs' tooltips and the tabs' padding
    narrows, so that every tab stays in view (the pane is never narrower than its
    buttons' row, where they fit). Where even those do not fit (a larger font), scroll
    buttons rather than "A…".

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
        self._padding = PADDING
        tab_bar.setStyleSheet(tab_style(PADDING))
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
        """Whole titles and the usual padding when they fit, else the compact ones."""
        bar = self.tabBar()
        metrics = bar.fontMetrics()
        whole = {
            i: f"{title} ({count})" if count else title
            for i, (title, count) in self._titles.items()
        }
        needed = 0
        for i in range(bar.count()):
            shown = bar.tabText(i)
            # what a tab takes besides its title and padding (its frame) stays the same
            frame = (
                bar.tabSizeHint(i).width() - metrics.horizontalAdvance(shown) - 2 * self._padding
            )
            needed += frame + 2 * PADDING + metrics.horizontalAdvance(whole.get(i, shown))
        fits = not self.isVisible() or needed <= self.width()
        padding = PADDING if fits else COMPACT_PADDING
        if padding != self._padding:
            self._padding = padding
            bar.setStyleSheet(tab_style(padding))
        for index, (title, _) in self._titles.items():
            shown = whole[index] if fits else title
            if bar.tabText(index) != shown:
                bar.setTabText(index, shown)
            bar.setTabToolTip(index, "" if shown == whole[index] else whole[index])

    def hasHeightForWidth(self) -> bool:
        """No height-for-width: the header above keeps its height (see the class)."""
        return False
