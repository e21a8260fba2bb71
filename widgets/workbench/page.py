"""The failed-payments workbench page: table and filters beside the detail pane."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from services.workbench.model import Durability
from widgets.common.theme import repolish
from widgets.workbench.browser import FailedPaymentsView
from widgets.workbench.detail import EntryDetailPane


class WorkbenchPage(QWidget):
    """The table of parked failed payments, the selected entry's detail, and a store banner.

    Pure composition: the table and the pane keep their own signals; the app
    wires them (see ``app/controllers/workbench.py``).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WorkbenchPage")
        self.banner = QLabel()
        self.banner.setObjectName("StoreBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.hide()
        self.table_view = FailedPaymentsView()
        self.detail = EntryDetailPane()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("WorkbenchSplitter")
        self.splitter.addWidget(self.table_view)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([780, 460])
        self.splitter.setChildrenCollapsible(False)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.splitter, 1)

    @Slot(object)
    def show_durability(self, durability: Durability | None) -> None:
        """Warn, above the table, when the parking store would not survive a Redis restart."""
        if durability is None or durability.durable is True:
            self.banner.hide()
            return
        if durability.durable is False:
            durable, title = "no", "Parking store is not durable"
        else:
            durable, title = "unknown", "Parking store durability unknown"
        self.banner.setProperty("durable", durable)  # red or amber: resources/style.qss
        repolish(self.banner)
        self.banner.setText(f"<b>{title}:</b> {durability.detail}")
        self.banner.show()

    @Slot(bool)
    def set_read_only(self, read_only: bool) -> None:
        """Disable every action (a read-only profile or ``--read-only``)."""
        self.table_view.set_read_only(read_only)
        self.detail.set_read_only(read_only)
