"""The failed-payments workbench page: table and filters beside the detail pane.

The detail pane folds away (View › Show details, Ctrl+D, the button at the
bottom right, or dragging the splitter handle) and opens again on Enter or a
double click on a row. On first show the table gets the width its columns
need and the pane the rest; a window too narrow for both starts with the pane
folded, so no column is cut; opened there, the pane takes its room from the
cause column (down to a readable width), from the outcome and queue columns (hidden
for room, back when there is room: ``EntriesTable.FOLDS_FOR_ROOM``) and then from the
group panel (folded while the pane is open), never from the other columns.
``view_settings`` / ``apply_view_settings`` carry the columns and the pane between
runs (``app/ui_state.py`` keeps them); a pane restored open is opened by the same
rule in the page's width as shown.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QSplitter, QToolButton, QVBoxLayout, QWidget

from services.workbench.model import Durability
from widgets.common.theme import repolish
from widgets.workbench.browser import FailedPaymentsView
from widgets.workbench.detail import EntryDetailPane

DETAIL_KEYS: Final = "Ctrl+D"
DETAIL_WIDTH: Final = 472
"""The detail pane's width when it first opens beside a wide table: every tab title whole
(Body, Properties, Headers (n), x-death (n), Audit (n), Timeline (n))."""


class WorkbenchPage(QWidget):
    """The table of parked failed payments, the selected entry's detail, and a store banner.

    Pure composition: the table and the pane keep their own signals; the app
    wires them (see ``app/controllers/workbench.py``). ``detail_shown`` says
    whether the detail pane is open whenever that may have changed.
    """

    detail_shown = Signal(bool)

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
        self.splitter.setStretchFactor(0, 1)  # a wider window widens the table
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([780, 460])
        self.splitter.setCollapsible(0, False)
        self.splitter.setCollapsible(1, True)  # drag the handle right to fold the pane
        self._detail_width = 0  # the pane's width when last open
        self._restored_open = False  # restored open: opened by the rule below as it resizes
        self._auto = True  # the split follows the window until the operator sets it
        self.detail_action = QAction("Show details", self)
        self.detail_action.setCheckable(True)
        self.detail_action.setChecked(True)
        self.detail_action.setShortcut(QKeySequence(DETAIL_KEYS))
        self.detail_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.detail_action.toggled.connect(self.set_detail_open)
        self.addAction(self.detail_action)
        self.detail_button = QToolButton()
        self.detail_button.setObjectName("DetailToggle")
        self.detail_button.setCheckable(True)  # its own text ("Hide details  ▸"), same state
        self.detail_button.toggled.connect(self.detail_action.setChecked)
        self.detail_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        strip = self.table_view.status_strip.layout()
        assert strip is not None  # the browser's count line
        strip.addWidget(self.detail_button)
        self.splitter.splitterMoved.connect(self._on_splitter_moved)
        self.table_view.table.columns_changed.connect(self._fit_if_auto)
        self.table_view.entry_activated.connect(lambda _entry_id: self.set_detail_open(True))
        self._show_detail_state()
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.splitter, 1)

    # ------------------------------------------------------------------ the detail pane

    @property
    def detail_open(self) -> bool:
        return self.splitter.sizes()[1] > 0

    @Slot(bool)
    def set_detail_open(self, open_: bool) -> None:
        """Fold the detail pane away (the table takes its room) or open it again."""
        self._auto = self._restored_open = False
        if open_ == self.detail_open:
            self._show_detail_state()
            return
        if open_:
            self._open_beside_table()
        else:
            self._detail_width = self.splitter.sizes()[1]
            self.splitter.setSizes([sum(self.splitter.sizes()), 0])
            self.table_view.set_group_panel_folded(False)
        self._show_detail_state()

    def _open_beside_table(self) -> None:
        """The pane at its width, as far as the table leaves room for it."""
        total = sum(self.splitter.sizes())
        wanted = self._detail_width or self.detail.minimumSizeHint().width() + 60
        view = self.table_view
        # the table less what its cause, outcome and queue give up, beside the groups; a
        # window too narrow for that and the pane folds the group panel away
        view.set_group_panel_folded(total - self._table_room(True) < self._pane_minimum())
        table = self._table_room(not view.group_panel_folded)
        table = max(table, view.minimumSizeHint().width())
        width = min(wanted, max(total - table, 0))
        self.splitter.setSizes([total - width, width])

    def _table_room(self, with_groups: bool) -> int:
        """What the table needs with its cause narrowed to readable, its outcome and queue
        hidden (:meth:`EntriesTable.narrowest_width`), and the group panel."""
        view = self.table_view
        room = view.table.narrowest_width() + self.splitter.handleWidth()
        if with_groups:
            panel = view.group_panel
            room += max(panel.width(), panel.minimumWidth()) + view.splitter.handleWidth()
        return room

    def _pane_minimum(self) -> int:
        return max(self.detail.minimumSizeHint().width(), self.detail.minimumWidth())

    def _on_splitter_moved(self, _pos: int, _index: int) -> None:
        self._auto = self._restored_open = False  # the operator dragged the handle
        if self.detail_open:
            self._detail_width = self.splitter.sizes()[1]
        self._show_detail_state()

    def _show_detail_state(self) -> None:
        open_ = self.detail_open
        for control in (self.detail_action, self.detail_button):
            blocked = control.blockSignals(True)
            control.setChecked(open_)
            control.blockSignals(blocked)
        self.detail_action.setToolTip(f"Show the selected entry's detail pane ({DETAIL_KEYS})")
        self.detail_shown.emit(open_)
        self.detail_button.setText("Hide details  ▸" if open_ else "◂  Show details")
        self.detail_button.setToolTip(
            f"{'Fold away' if open_ else 'Open'} the selected entry's detail pane ({DETAIL_KEYS})"
        )

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_if_auto()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_if_auto()

    def _fit_if_auto(self) -> None:
        if not self.isVisible():
            return
        if self._auto:
            self.fit_to_width()
        elif self._restored_open:  # as if opened now, in the page's width
            self._open_beside_table()
            self._show_detail_state()

    def fit_to_width(self) -> None:
        """The table as wide as its columns need, the detail pane the rest; a window
        too narrow for both folds the pane, so that no column is cut."""
        total = self.splitter.width() - self.splitter.handleWidth()
        view = self.table_view
        table = (
            view.table.preferred_width() + view.group_panel.width() + view.splitter.handleWidth()
        )
        detail = total - table
        minimum = self.detail.minimumSizeHint().width()
        if detail >= minimum:
            self.splitter.setSizes([table, detail])
            self._detail_width = detail
        else:
            self._detail_width = max(minimum, min(total // 3, DETAIL_WIDTH))
            self.splitter.setSizes([total, 0])
        self._show_detail_state()

    def view_settings(self) -> dict[str, object]:
        """The columns and the detail pane, to remember between runs."""
        return {
            "columns": self.table_view.table.column_settings(),
            "detail_open": self.detail_open or self._restored_open,
            "detail_width": self.splitter.sizes()[1] if self.detail_open else self._detail_width,
        }

    def apply_view_settings(self, settings: dict[str, object] | None) -> None:
        """Restore what ``view_settings`` gave (anything missing keeps its default)."""
        if not settings:
            return
        columns = settings.get("columns")
        if isinstance(columns, dict):
            self.table_view.table.apply_column_settings(columns)
        width = settings.get("detail_width")
        if isinstance(width, int) and width > 0:
            self._detail_width = width
        open_ = settings.get("detail_open")
        if isinstance(open_, bool):
            # Open: by set_detail_open's rule (the group panel folds where the window is
            # too narrow for it) in the page's width as shown and resized, until the
            # operator sets the split; not by the width saved alone (it cut columns).
            total = sum(self.splitter.sizes())
            self.splitter.setSizes([total, 0])
            self._restored_open = open_
            self._auto = False
            self._fit_if_auto()
        self._show_detail_state()

    # ------------------------------------------------------------------ banner, read-only

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
