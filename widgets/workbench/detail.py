"""One parked entry in full: payment header and cause, body, properties, headers, x-death,
audit trail, and the payment's whole story (Timeline).

``EntryDetailPane`` takes a :class:`~services.workbench.model.ParkedEntry` (plain
data) through ``show_entry``, this entry's audit records through ``show_audit``
and its payment's :class:`~services.trace_model.PaymentTrace` through
``show_timeline``; ``show_payment`` shows the timeline of a payment that has no
parked entry. Its Requeue / Retry… / Cancel… buttons emit
``action_requested(name)`` (the app knows which entry is shown).

Everything shown is masked: card numbers to the first 6 / last 4 digits, CVV
fields hidden (``services.masking.json``, ``services.workbench.body_format``). Large
bodies are shown by a prefix, binary ones through a lazy hex model, so no
body stalls the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QTableView,
    QTreeWidget,
    QVBoxLayout,
    QWidget,
)

from services.config import FieldPaths
from services.masking.json import IdTree, id_tree, mask_identifier
from services.trace_model import PaymentTrace
from services.workbench.actions.names import Action
from services.workbench.body_format import BodyView, FormattedBody, format_body, format_size
from services.workbench.death_history import earlier_hops
from services.workbench.model import AuditRecord, EntryState, ParkedEntry
from services.workbench.shown import masked_escaped
from widgets.common.elided_label import ElidedLabel
from widgets.common.record_tables import configure_table
from widgets.common.theme import repolish
from widgets.workbench.audit_panel import AuditTableModel, format_local_time
from widgets.workbench.body_views import (
    HIGHLIGHT_MAX_CHARS,
    HexDumpModel,
    JsonHighlighter,
    monospace_font,
)
from widgets.workbench.detail_facts import FactsGrid
from widgets.workbench.detail_outcome import OutcomeLine
from widgets.workbench.detail_tables import (
    count_items,
    deaths_note,
    fill_deaths,
    header_items,
    plain_table,
    property_rows,
    short_time,
    table_item,
)
from widgets.workbench.detail_tabs import DetailTabs
from widgets.workbench.table_model import cause_tooltip
from widgets.workbench.timeline import TimelineView

READ_ONLY_REASON: Final = "Read-only console: actions are disabled"
NO_ENTRY_TEXT: Final = "Select a failed payment to see its body, headers and history"
AUDIT_DETAIL_COLUMNS: Final = ("time", "operator", "action", "result", "detail")

_VIEW_LABELS: Final[dict[BodyView, str]] = {"json": "Pretty JSON", "text": "Text", "hex": "Hex"}


def not_actionable_reason(entry: ParkedEntry) -> str | None:
    """Why no action can be taken on ``entry`` now ("Requeued by alice at 14:03"), or None."""
    state = entry.state
    if state is EntryState.PARKED:
        return None
    who = f" by {entry.operator}" if entry.operator else ""
    when = short_time(entry.updated_at_ms)
    if state is EntryState.CLAIMED:
        action = Action.named(entry.action)
        doing = action.past if action is not None else "acted on"
        since = f" since {when}" if when else ""
        return f"Being {doing}{who}{since}"
    at = f" at {when}" if when else ""
    return f"{state.value.capitalize()}{who}{at}"


class EntryDetailPane(QWidget):
    """The detail of one parked entry, with the actions that can be taken on it.

    ``show_entry(None)`` shows a placeholder. Showing the same entry again
    (a live update from another console) keeps the tab and scroll positions
    and re-renders the body only when the message itself changed.
    """

    action_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EntryDetailPane")
        self._entry: ParkedEntry | None = None
        self._read_only = False
        self._body: FormattedBody | None = None
        self._rendered_key: tuple[str, str] | None = None
        self._shown_text_view: BodyView | None = None
        self._id_paths: IdTree = id_tree(FieldPaths().id_paths)

        self._build_header()
        self._build_tabs()
        self.placeholder = QLabel(NO_ENTRY_TEXT)
        self.placeholder.setObjectName("Placeholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        content = QWidget()
        content_column = QVBoxLayout(content)
        content_column.setContentsMargins(0, 0, 0, 0)
        content_column.setSpacing(0)
        content_column.addWidget(self.header_frame)
        content_column.addWidget(self.tabs, 1)
        self.content = content
        self.payment_title = QLabel()  # a payment with no parked entry: its timeline alone
        self.payment_title.setObjectName("PaymentId")
        self.payment_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.payment_timeline = TimelineView()
        self.payment_page = self._padded(self.payment_title, self.payment_timeline)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.content)
        self.stack.addWidget(self.payment_page)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.stack)

        self._connect_signals()
        self.show_entry(None)

    # -- construction -------------------------------------------------------------------

    def _build_header(self) -> None:
        frame = QFrame()
        frame.setObjectName("EntryHeader")
        self.header_frame = frame
        self.state_badge = QLabel()
        self.state_badge.setObjectName("StateBadge")
        # The payment id on a line of its own, whole and selectable (never cut: an operator
        # copies it into other tools); the layout gives it at least its width.
        self.payment_label = QLabel()
        self.payment_label.setObjectName("PaymentId")
        self.payment_label.setTextFormat(Qt.TextFormat.PlainText)
        self.payment_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.entry_id_label = QLabel()
        self.entry_id_label.setObjectName("FactCaption")
        self.entry_id_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.amount_label = QLabel()
        self.amount_label.setObjectName("Amount")
        self.merchant_label = ElidedLabel()
        self.merchant_label.setObjectName("Merchant")

        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(self.state_badge, 0, Qt.AlignmentFlag.AlignVCenter)
        top.addStretch(1)
        top.addWidget(self.entry_id_label, 0, Qt.AlignmentFlag.AlignVCenter)
        money = QHBoxLayout()
        money.setSpacing(10)
        money.addWidget(self.amount_label)
        money.addWidget(self.merchant_label, 1)

        self.facts_grid = grid = FactsGrid()
        self.facts: dict[str, ElidedLabel] = grid.labels

        self.outcome_line = OutcomeLine()  # its link to a new entry: the controller
        self.last_error_label = QLabel()
        self.last_error_label.setObjectName("LastError")
        self.last_error_label.setWordWrap(True)
        self.last_error_label.setTextFormat(Qt.TextFormat.PlainText)
        self.last_error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.requeue_button = QPushButton("Requeue")
        self.requeue_button.setObjectName("ActionButton")
        self.retry_button = QPushButton("Retry…")
        self.retry_button.setObjectName("ActionButton")
        self.cancel_button = QPushButton("Cancel…")
        self.cancel_button.setObjectName("DangerAction")
        self.action_buttons: dict[Action, QPushButton] = {
            Action.REQUEUE: self.requeue_button,
            Action.RETRY: self.retry_button,
            Action.CANCEL: self.cancel_button,
        }
        self.state_note = ElidedLabel()
        self.state_note.setObjectName("StateNote")
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        for button in self.action_buttons.values():
            button.setAutoDefault(False)
            buttons.addWidget(button)
        buttons.addSpacing(6)
        buttons.addWidget(self.state_note, 1)

        column = QVBoxLayout(frame)
        column.setContentsMargins(12, 10, 12, 10)
        column.setSpacing(6)
        column.addLayout(top)
        column.addWidget(self.payment_label)
        column.addLayout(money)
        column.addSpacing(2)
        column.addLayout(grid.cause_row)
        column.addLayout(grid)
        column.addWidget(self.last_error_label)
        column.addWidget(self.outcome_line)
        column.addSpacing(2)
        column.addLayout(buttons)

    def _fit_facts(self) -> None:
        """Two fact columns when the header is wide enough for every value in full."""
        margins = self.header_frame.contentsMargins()
        layout_margins = self.header_frame.layout().contentsMargins()  # type: ignore[union-attr]
        width = (  # the pane's width: at a resize, the header's may not follow it yet
            self.width()
            - margins.left()
            - margins.right()
            - layout_margins.left()
            - layout_margins.right()
        )
        self.facts_grid.fit(width)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_facts()

    def _build_tabs(self) -> None:
        self.tabs = DetailTabs()  # titles whole, scroll buttons, the header's height kept

        # Body.
        body = QWidget()
        self.body_info_label = QLabel()
        self.body_info_label.setObjectName("BodyInfo")
        # Wraps at its " · " in a narrow pane instead of widening the pane (and the table
        # beside it giving up a column).
        self.body_info_label.setWordWrap(True)
        self.view_combo = QComboBox()
        self.view_combo.setObjectName("BodyViewCombo")
        self.view_combo.setToolTip("How to show the body")
        self.view_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.view_combo.setMinimumContentsLength(12)
        self.wrap_check = QCheckBox("Wrap")
        self.wrap_check.setToolTip("Wrap long lines")
        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(self.body_info_label, 1)
        bar.addWidget(self.wrap_check)
        bar.addWidget(self.view_combo)
        self.body_note_label = QLabel()
        self.body_note_label.setObjectName("BodyNote")
        self.body_note_label.setWordWrap(True)
        self.text_view = QPlainTextEdit()
        self.text_view.setObjectName("BodyText")
        self.text_view.setReadOnly(True)
        self.text_view.setFont(monospace_font())
        self.text_view.setUndoRedoEnabled(False)
        self.highlighter = JsonHighlighter(self.text_view.document())
        self.hex_model = HexDumpModel(self)
        # A table, not a list: its fixed-size rows make any number of lines O(1) to lay out.
        self.hex_view = QTableView()
        self.hex_view.setObjectName("BodyHex")
        self.hex_view.setModel(self.hex_model)
        self.hex_view.setFont(monospace_font())
        self.hex_view.setShowGrid(False)
        self.hex_view.setWordWrap(False)
        self.hex_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.hex_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.hex_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.hex_view.horizontalHeader().setVisible(False)
        self.hex_view.horizontalHeader().setStretchLastSection(True)
        hex_rows = self.hex_view.verticalHeader()
        hex_rows.setVisible(False)
        hex_rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        hex_rows.setDefaultSectionSize(QFontMetrics(monospace_font()).height() + 2)
        self.empty_body_label = QLabel("Empty body — the message has no payload (0 bytes)")
        self.empty_body_label.setObjectName("Placeholder")
        self.empty_body_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body_stack = QStackedWidget()
        self.body_stack.addWidget(self.text_view)
        self.body_stack.addWidget(self.hex_view)
        self.body_stack.addWidget(self.empty_body_label)
        body_column = QVBoxLayout(body)
        body_column.setContentsMargins(8, 8, 8, 8)
        body_column.setSpacing(6)
        body_column.addLayout(bar)
        body_column.addWidget(self.body_note_label)
        body_column.addWidget(self.body_stack, 1)
        self.tabs.addTab(body, "Body")

        # Properties.
        self.properties_table = plain_table(("Property", "Value"))
        self.properties_table.setObjectName("PropertiesTable")
        self.properties_table.horizontalHeader().resizeSection(0, 150)
        self.tabs.addTab(self._padded(self.properties_table), "Properties")

        # Headers.
        self.headers_tree = QTreeWidget()
        self.headers_tree.setObjectName("HeadersTree")
        self.headers_tree.setColumnCount(3)
        self.headers_tree.setHeaderLabels(["Header", "Type", "Value"])
        self.headers_tree.setAlternatingRowColors(True)
        self.headers_tree.setUniformRowHeights(True)
        self.headers_tree.header().resizeSection(0, 200)
        self.headers_tree.header().resizeSection(1, 90)
        self.headers_tree.header().setStretchLastSection(True)
        self.tabs.addTab(self._padded(self.headers_tree), "Headers")

        # x-death.
        self.deaths_note = QLabel()
        self.deaths_note.setObjectName("SectionNote")
        self.deaths_note.setWordWrap(True)
        self.deaths_table = plain_table(
            ("Count", "Reason", "Queue", "Exchange", "Routing keys", "Time")
        )
        self.deaths_table.setObjectName("DeathsTable")
        self.tabs.addTab(self._padded(self.deaths_note, self.deaths_table), "x-death")

        # Audit trail.
        self.audit_model = AuditTableModel(self, columns=AUDIT_DETAIL_COLUMNS)
        self.audit_table = QTableView()
        self.audit_table.setObjectName("EntryAuditTable")
        self.audit_table.setModel(self.audit_model)
        configure_table(self.audit_table)
        audit_header = self.audit_table.horizontalHeader()
        # the result whole ("requeued 1, skipped 0, failed 0"); the detail stretches after it
        for index, width in enumerate((135, 80, 65, 195)):
            audit_header.resizeSection(index, width)
        audit_header.setStretchLastSection(True)
        self.audit_empty_label = QLabel("No actions on this entry yet")
        self.audit_empty_label.setObjectName("Placeholder")
        self.audit_empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.audit_stack = QStackedWidget()
        self.audit_stack.addWidget(self.audit_table)
        self.audit_stack.addWidget(self.audit_empty_label)
        self.tabs.addTab(self._padded(self.audit_stack), "Audit")

        # The payment's whole story (the app fills it from services.trace).
        self.timeline = TimelineView()
        self.tabs.addTab(self.timeline, "Timeline")

    @staticmethod
    def _padded(*widgets: QWidget) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(8, 8, 8, 8)
        column.setSpacing(6)
        for widget in widgets:
            column.addWidget(widget, 1 if not isinstance(widget, QLabel) else 0)
        return page

    def _connect_signals(self) -> None:
        """All of the pane's own wiring, in one place."""
        self.requeue_button.clicked.connect(self.on_requeue_clicked)
        self.retry_button.clicked.connect(self.on_retry_clicked)
        self.cancel_button.clicked.connect(self.on_cancel_clicked)
        self.view_combo.currentIndexChanged.connect(self.on_view_changed)
        self.wrap_check.toggled.connect(self.on_wrap_toggled)

    # -- state ---------------------------------------------------------------------------

    @property
    def entry(self) -> ParkedEntry | None:
        """The entry shown (None: nothing selected)."""
        return self._entry

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def body(self) -> FormattedBody | None:
        """The body as formatted for display."""
        return self._body

    def body_view(self) -> BodyView | None:
        data = self.view_combo.currentData()
        return data if data in ("json", "text", "hex") else None

    def actions_disabled_reason(self) -> str | None:
        """Why the action buttons are disabled (None when they are enabled)."""
        if self._entry is None:
            return "No entry selected"
        if self._read_only:
            return READ_ONLY_REASON
        return not_actionable_reason(self._entry)

    # -- slots ---------------------------------------------------------------------------

    @Slot(object)
    def show_entry(self, entry: ParkedEntry | None) -> None:
        """Show one entry (None: the placeholder)."""
        previous = self._entry
        self._entry = entry
        if entry is None:
            self._rendered_key = None
            self._body = None
            self.stack.setCurrentWidget(self.placeholder)
            self.audit_model.clear()
            self._update_buttons()
            return
        if previous is None or previous.entry_id != entry.entry_id:
            self.audit_model.clear()
            self._update_audit_tab()
            self.show_timeline(None)
        self.stack.setCurrentWidget(self.content)
        self._render_header(entry)
        key = (entry.entry_id, entry.fingerprint)
        same_message = (
            key == self._rendered_key and previous is not None and previous.record == entry.record
        )
        if not same_message:
            self._rendered_key = key
            self._render_body(entry)
            self._render_properties(entry)
            self._render_headers(entry)
            self._render_deaths(entry)
        self._update_buttons()

    @Slot(object)
    def show_audit(self, records: Sequence[AuditRecord]) -> None:
        """Show this entry's audit trail (records about other entries are ignored)."""
        entry = self._entry
        if entry is None:
            return
        self.audit_model.set_records(r for r in records if entry.entry_id in r.entry_ids)
        self._update_audit_tab()

    @Slot(object)
    def show_timeline(self, trace: PaymentTrace | None) -> None:
        """The shown entry's payment, its whole story (None: not known yet)."""
        self.timeline.show_trace(trace)
        count = self.timeline.step_count
        index = self.tabs.indexOf(self.timeline)
        self.tabs.set_title(index, "Timeline", count)

    @Slot(object)
    def show_payment(self, trace: PaymentTrace) -> None:
        """A payment with no parked entry: its timeline alone, in place of an entry."""
        self.show_entry(None)
        self.payment_title.setText(f"{trace.shown_id} · not in the workbench")
        self.payment_timeline.show_trace(trace)
        self.stack.setCurrentWidget(self.payment_page)

    def show_timeline_tab(self) -> None:
        """Bring the Timeline tab to the front."""
        self.tabs.setCurrentWidget(self.timeline)

    def set_id_paths(self, paths: Sequence[str]) -> None:
        """Where the profile's bodies hold identifiers (``FieldPaths.id_paths``): shown as ids."""
        self._id_paths = id_tree(paths)
        self._rendered_key = None  # the next show_entry renders the body again

    @Slot(bool)
    def set_read_only(self, read_only: bool) -> None:
        """Disable (or enable again) every action."""
        self._read_only = read_only
        self._update_buttons()

    @Slot()
    def on_requeue_clicked(self) -> None:
        self._request(Action.REQUEUE)

    @Slot()
    def on_retry_clicked(self) -> None:
        self._request(Action.RETRY)

    @Slot()
    def on_cancel_clicked(self) -> None:
        self._request(Action.CANCEL)

    @Slot(int)
    def on_view_changed(self, index: int) -> None:
        view = self.view_combo.itemData(index)
        if view in ("json", "text", "hex"):
            self._show_body_view(view)

    @Slot(bool)
    def on_wrap_toggled(self, wrap: bool) -> None:
        self.text_view.setLineWrapMode(
            QPlainTextEdit.LineWrapMode.WidgetWidth if wrap else QPlainTextEdit.LineWrapMode.NoWrap
        )

    def _request(self, action: Action) -> None:
        if self.actions_disabled_reason() is None:
            self.action_requested.emit(action)

    # -- rendering -----------------------------------------------------------------------

    def _render_header(self, entry: ParkedEntry) -> None:
        summary = entry.summary
        state = entry.state
        self.state_badge.setText(state.value.upper())
        self.state_badge.setProperty("state", state.value)  # its colours: resources/style.qss
        repolish(self.state_badge)
        payment = mask_identifier(summary.payment_id) if summary.payment_id else None
        self.payment_label.setText(payment or "No payment id")
        self.payment_label.setToolTip(
            "Payment id (from the body)" if payment else "The body names no payment id"
        )
        message_id = entry.record.properties.get("message_id")
        self.entry_id_label.setText(f"entry {entry.entry_id}")
        self.entry_id_label.setToolTip(
            f"Parking entry id · message id {mask_identifier(message_id)}"
            if isinstance(message_id, str)
            else "Parking entry id · the message has no message id"
        )
        if summary.amount is not None:
            amount = f"{masked_escaped(summary.amount)} {masked_escaped(summary.currency or '')}"
            amount = amount.strip()
        else:
            amount = "No amount"
        self.amount_label.setText(amount)
        merchant = masked_escaped(summary.merchant) if summary.merchant else "no merchant"
        self.merchant_label.set_full_text(merchant)
        self.merchant_label.setToolTip(merchant)

        self.facts_grid.cause.setText(masked_escaped(summary.cause) or "—")
        self.facts_grid.cause.setToolTip(cause_tooltip(summary))
        dead_at = format_local_time(summary.dead_lettered_at_ms)
        facts = {
            "reason": masked_escaped(summary.reason) or "—",
            "origin_queue": masked_escaped(summary.origin_queue) or "—",
            "attempts": f"{summary.attempts:,}",
            "dead_lettered_at": dead_at,
            "dlq": summary.dlq,
            "routing_key": masked_escaped(summary.routing_key) or "—",
        }
        for key, text in facts.items():
            label = self.facts[key]
            label.set_full_text(text)
            label.setToolTip(text)
        self._fit_facts()
        self.facts["origin_queue"].setToolTip(
            f"{facts['origin_queue']}: the queue it was dead-lettered from; a requeue sends it back"
            " there"
        )
        error = entry.last_error
        self.outcome_line.show_outcome(entry.outcome)
        self.last_error_label.setVisible(bool(error))
        if error:
            self.last_error_label.setText(f"Last error: {masked_escaped(error)}")

    def _update_buttons(self) -> None:
        reason = self.actions_disabled_reason()
        entry = self._entry
        origin = masked_escaped(entry.summary.origin_queue) if entry is not None else ""
        tips = {
            Action.REQUEUE: f"Send the message back, unchanged, to {origin or 'its queue'}",
            Action.RETRY: f"Send it again to {origin or 'its queue'}, now or after a delay,"
            " optionally with an edited body",
            Action.CANCEL: "Remove it from the workbench and publish a cancellation"
            " (needs a reason)",
        }
        for action, button in self.action_buttons.items():
            button.setEnabled(reason is None)
            button.setToolTip(reason if reason is not None else tips[action])
        note = "" if entry is None or reason is None else reason
        if entry is not None and reason is None and entry.detail:
            note = masked_escaped(entry.detail)
        self.state_note.set_full_text(note)
        self.state_note.setToolTip(note)

    def _update_audit_tab(self) -> None:
        count = self.audit_model.rowCount()
        self.tabs.set_title(4, "Audit", count)
        self.audit_stack.setCurrentWidget(self.audit_table if count else self.audit_empty_label)

    def _render_body(self, entry: ParkedEntry) -> None:
        body = format_body(entry.record.body, self._id_paths)
        self._body = body
        content_type = entry.record.properties.get("content_type")
        kind_text = {
            "json": "JSON",
            "text": "Text",
            "binary": "Binary",
            "empty": "Empty",
        }[body.kind]
        parts = [kind_text, format_size(body.total_bytes)]
        if isinstance(content_type, str) and content_type:
            parts.append(content_type)
        self.body_info_label.setText(" · ".join(parts))
        self.body_note_label.setText(body.note if body.kind != "empty" else "")
        self.body_note_label.setVisible(bool(body.note) and body.kind != "empty")
        self.hex_model.set_data(body.data)

        views: list[BodyView]
        if body.kind == "json":
            views = ["json", "hex"]
        elif body.kind == "text":
            views = ["text", "hex"]
        elif body.kind == "binary":
            views = ["hex", "text"]
        else:
            views = []
        self.view_combo.blockSignals(True)
        self.view_combo.clear()
        for view in views:
            label = _VIEW_LABELS[view]
            if body.kind == "binary" and view == "text":
                label = "Text (lossy)"
            self.view_combo.addItem(label, view)
        self.view_combo.setEnabled(len(views) > 1)
        self.view_combo.blockSignals(False)
        self.wrap_check.blockSignals(True)
        self.wrap_check.setChecked(body.kind == "text")
        self.wrap_check.blockSignals(False)
        self.on_wrap_toggled(body.kind == "text")
        self._shown_text_view = None
        if body.kind == "empty":
            self.text_view.clear()
            self.wrap_check.setEnabled(False)
            self.body_stack.setCurrentWidget(self.empty_body_label)
        else:
            self._show_body_view(body.default_view)

    def _show_body_view(self, view: BodyView) -> None:
        body = self._body
        if body is None or body.kind == "empty":
            return
        if view == "hex":
            self.body_stack.setCurrentWidget(self.hex_view)
            self.wrap_check.setEnabled(False)
            return
        if self._shown_text_view != view:
            text = body.text_for(view)
            colourful = view == "json" and len(text) <= HIGHLIGHT_MAX_CHARS
            self.highlighter.setDocument(self.text_view.document() if colourful else None)
            self.text_view.setPlainText(text)
            self._shown_text_view = view
        self.wrap_check.setEnabled(True)
        self.body_stack.setCurrentWidget(self.text_view)

    def _render_properties(self, entry: ParkedEntry) -> None:
        rows = property_rows(entry)
        table = self.properties_table
        table.setRowCount(len(rows))
        for row, (name, text) in enumerate(rows):
            name_item = table_item(name, tooltip=False)
            name_item.setForeground(self.palette().placeholderText())
            table.setItem(row, 0, name_item)
            table.setItem(row, 1, table_item(text))

    def _render_headers(self, entry: ParkedEntry) -> None:
        tree = self.headers_tree
        tree.setUpdatesEnabled(False)
        tree.clear()
        headers = entry.record.headers
        items = header_items(headers)
        tree.addTopLevelItems(items)
        total = sum(count_items(item) for item in items)
        if total <= 300:
            tree.expandAll()
        else:
            tree.expandToDepth(0)
        tree.setUpdatesEnabled(True)
        self.tabs.set_title(2, "Headers", len(headers))

    def _render_deaths(self, entry: ParkedEntry) -> None:
        deaths = entry.deaths
        fill_deaths(self.deaths_table, deaths, earlier_hops(entry.record.headers))
        self.deaths_note.setText(deaths_note(entry))
        self.tabs.set_title(3, "x-death", len(deaths))


__all__ = [
    "READ_ONLY_REASON",
    "EntryDetailPane",
    "not_actionable_reason",
]
