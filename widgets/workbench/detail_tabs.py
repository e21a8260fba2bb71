"""The detail pane's tabs (Body, Properties, Headers, x-death, Audit, Timeline)."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTabWidget, QWidget

TAB_STYLE: Final = """
QTabBar::tab { padding: 6px 8px; }
QTabBar::tab:focus { padding: 5px 7px 6px 7px; }
"""


class DetailTabs(QTabWidget):
    """Every title whole in the default ~400 px pane: tighter padding than the app's tabs
    (the same size with the focus ring's thicker border), never elided; in a pane dragged
    narrower still, scroll buttons rather than "A…".

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

    def hasHeightForWidth(self) -> bool:
        """No height-for-width: the header above keeps its height (see the class)."""
        return False
