"""The dialog that says what an action did: counts per outcome, the reasons, what failed."""

from __future__ import annotations

import html
from typing import Any, ClassVar, Final

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.masking.json import mask_identifier, mask_sensitive_text
from services.workbench.actions.report import ActionOutcome, ActionReport, OutcomeStatus
from widgets.common import colors
from widgets.common.record_tables import configure_table
from widgets.common.table_models import ListTableModel
from widgets.workbench.action_progress import format_duration
from widgets.workbench.body_views import monospace_font
from widgets.workbench.job_panel import JobPanel, JobStatus, grow_to_fit

_STATUS_TEXT: Final = {"failed": "Failed", "skipped": "Skipped", "done": "Done"}
_OUTCOME_TITLES: Final = {
    "status": "Status",
    "entry": "Entry",
    "payment": "Payment",
    "reason": "Reason",
}


class OutcomeTableModel(ListTableModel[ActionOutcome]):
    """Outcomes as a table: status, entry id, payment id, reason (masked)."""

    HEADERS: ClassVar[tuple[str, ...]] = tuple(_OUTCOME_TITLES.values())

    def __init__(self, outcomes: tuple[ActionOutcome, ...], parent: QObject | None = None) -> None:
        super().__init__(tuple(_OUTCOME_TITLES), _OUTCOME_TITLES, parent)
        self._rows = list(outcomes)

    def outcome(self, row: int) -> ActionOutcome:
        return self._rows[row]

    def cell_text(self, row: int, column: int) -> str:
        return self._text(self._rows[row], self.columns[column])

    @staticmethod
    def _text(outcome: ActionOutcome, column: str) -> str:
        if column == "status":
            return _STATUS_TEXT.get(outcome.status, outcome.status)
        if column == "entry":
            return outcome.entry_id
        if column == "payment":
            return mask_identifier(outcome.payment_id) if outcome.payment_id else "—"
        return mask_sensitive_text(outcome.detail) if outcome.detail else "—"

    def _cell_data(self, outcome: ActionOutcome, column: str, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            text = self._text(outcome, column)
            if role == Qt.ItemDataRole.ToolTipRole:
                return text if column == "reason" and len(text) > 40 else None
            return text
        if role == Qt.ItemDataRole.ForegroundRole and column == "status":
            return QColor(colors.RED if outcome.status == "failed" else colors.AMBER)
        if role == Qt.ItemDataRole.FontRole and column in ("entry", "payment"):
            return monospace_font()
        return None


class _CountTile(QFrame):
    def __init__(self, caption: str, value: int, tone: str, detail: str = "") -> None:
        super().__init__()
        self.setObjectName("CountTile")
        self.setProperty("tone", tone if value else "none")
        self.value_label = QLabel(f"{value:,}")
        self.value_label.setObjectName("TileValue")
        self.caption_label = title = QLabel(caption.upper())
        title.setObjectName("TileCaption")
        self.detail_label = QLabel(detail)
        self.detail_label.setObjectName("TileDetail")
        self.detail_label.setWordWrap(True)
        self.detail_label.setVisible(bool(detail))
        column = QVBoxLayout(self)
        column.setContentsMargins(12, 8, 12, 8)
        column.setSpacing(0)
        column.addWidget(title)
        column.addWidget(self.value_label)
        column.addWidget(self.detail_label)


def reasons_html(report: ActionReport, limit: int = 4) -> str:
    """Why entries were skipped or failed, grouped by reason, as a small rich-text table."""
    rows: list[str] = []
    statuses: tuple[tuple[OutcomeStatus, str, str], ...] = (
        ("failed", "Failed", colors.RED),
        ("skipped", "Skipped", colors.AMBER),
    )
    for status, title, colour in statuses:
        reasons = report.reasons(status)
        shown = reasons[:limit]
        rest = sum(count for _, count in reasons[limit:])
        items = [(f"{count:,} ×", mask_sensitive_text(detail)) for detail, count in shown]
        if rest:
            items.append((f"{rest:,} ×", "other reasons"))
        for index, (count_text, detail) in enumerate(items):
            label = f"<span style='color:{colour}'>{title}</span>" if index == 0 else ""
            rows.append(
                f"<tr><td style='padding-right:10px'>{label}</td>"
                f"<td align='right' style='padding-right:6px'>{count_text}</td>"
                f"<td>{html.escape(detail)}</td></tr>"
            )
    return f"<table cellspacing='0' cellpadding='1'>{''.join(rows)}</table>" if rows else ""


class ActionSummaryDialog(QDialog):
    """What an action did: counts per outcome with the reasons, and the entries that failed.

    "Copy" puts a plain-text report on the clipboard (payment ids and
    reasons masked like on screen). An action that ran as a job has a
    :class:`~widgets.workbench.job_panel.JobPanel`: the app pushes the job's live
    outcome counters into :meth:`show_job`, and its buttons emit
    ``job_control_requested(job id, verb)``.
    """

    job_control_requested = Signal(str, str)

    def __init__(self, report: ActionReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ActionSummaryDialog")
        self.report = report
        verb = report.action.label
        ended = "stopped" if report.stopped else "finished"
        self.setWindowTitle(f"{verb} {ended}")

        self.headline_label = QLabel(report.headline())
        self.headline_label.setObjectName("DialogHeadline")
        self.headline_label.setWordWrap(True)
        where = f"to {mask_sensitive_text(report.target)} · " if report.target else ""
        stopped = " · stopped by the operator" if report.stopped else ""
        self.subline_label = QLabel(f"{where}took {format_duration(report.duration_s)}{stopped}")
        self.subline_label.setObjectName("DialogSubline")
        self.subline_label.setWordWrap(True)

        tiles = QHBoxLayout()
        tiles.setSpacing(8)
        self.tiles = {
            "done": _CountTile(report.action.past.capitalize(), report.succeeded, "ok"),
            "skipped": _CountTile("Skipped", report.skipped, "warn"),
            "failed": _CountTile("Failed", report.failed, "bad"),
        }
        if report.not_attempted:
            self.tiles["not_attempted"] = _CountTile("Not attempted", report.not_attempted, "warn")
            self.tiles["not_attempted"].setToolTip(
                "The action was stopped before reaching them; they stay parked"
            )
        for tile in self.tiles.values():
            tiles.addWidget(tile, 1)
        self.reasons_label = QLabel(reasons_html(report))
        self.reasons_label.setObjectName("Reasons")
        self.reasons_label.setTextFormat(Qt.TextFormat.RichText)
        self.reasons_label.setWordWrap(True)
        self.reasons_label.setVisible(bool(self.reasons_label.text()))

        problems = report.problems
        self.model = OutcomeTableModel(problems, self)
        self.table = QTableView()
        self.table.setObjectName("OutcomeTable")
        self.table.setModel(self.model)
        configure_table(self.table, stretch=None)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(1, 190)
        header.resizeSection(2, 160)
        header.setStretchLastSection(True)
        self.table_caption = QLabel(report.caption())  # what happened, in the report's words
        self.table_caption.setWordWrap(True)
        self.table_caption.setObjectName("FieldCaption" if problems else "ValidationOk")
        self.table.setVisible(bool(problems))

        self.job_panel: JobPanel | None = None
        if report.job_id:
            self.job_panel = JobPanel(report.job_id)
            self.job_panel.control_requested.connect(self.on_job_control_requested)

        self.buttons = QDialogButtonBox()
        self.copy_button = self.buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Copy this summary as text (ids and reasons, masked)")
        self.copy_button.setAutoDefault(False)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.setDefault(True)

        column = QVBoxLayout(self)
        column.setContentsMargins(18, 16, 18, 14)
        column.setSpacing(10)
        column.addWidget(self.headline_label)
        column.addWidget(self.subline_label)
        column.addLayout(tiles)
        column.addWidget(self.reasons_label)
        column.addWidget(self.table_caption)
        if self.job_panel is not None:
            column.addWidget(self.job_panel)
        column.addWidget(self.table, 1)
        if not problems:
            column.addStretch(1)
        column.addWidget(self.buttons)

        # owned by the dialog, so it dies with it (a bare singleShot could outlive the button)
        self._copied_timer = QTimer(self)
        self._copied_timer.setSingleShot(True)
        self._copied_timer.setInterval(1500)
        self._copied_timer.timeout.connect(self.on_copied_timer_timeout)
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.buttons.rejected.connect(self.reject)
        self.close_button.clicked.connect(self.accept)
        self.setMinimumWidth(560)
        self.resize(760, (520 if problems else 300) + (150 if self.job_panel else 0))
        self.close_button.setFocus()

    @Slot(object)
    def show_job(self, status: JobStatus) -> None:
        """The job's outcomes and state as they are now (the app polls them)."""
        if self.job_panel is not None and status.job_id == self.job_panel.job_id:
            self.job_panel.show_status(status)
            grow_to_fit(self)

    @Slot(str)
    def on_job_control_requested(self, verb: str) -> None:
        if self.job_panel is not None:
            self.job_control_requested.emit(self.job_panel.job_id, verb)

    def summary_text(self) -> str:
        """The summary as plain text: headline, reasons, then one line per entry not done."""
        report = self.report
        lines = [report.headline()]
        if report.target:
            lines.append(f"Target: {mask_sensitive_text(report.target)}")
        lines.append(f"Took: {format_duration(report.duration_s)}")
        if self.job_panel is not None:
            job = self.job_panel.status
            outcomes = job.outcome_line() if job is not None else "not read yet"
            lines.append(f"Job {self.report.job_id}: {outcomes}")
        statuses: tuple[OutcomeStatus, ...] = ("failed", "skipped")
        for status in statuses:
            for detail, count in report.reasons(status):
                lines.append(f"{status}: {count:,} × {mask_sensitive_text(detail)}")
        if self.model.rowCount():
            lines.append("")
            lines.append("\t".join(OutcomeTableModel.HEADERS))
            for row in range(self.model.rowCount()):
                lines.append("\t".join(self.model.cell_text(row, c) for c in range(4)))
        return "\n".join(lines) + "\n"

    @Slot()
    def copy_to_clipboard(self) -> None:
        """Put :meth:`summary_text` on the clipboard."""
        QGuiApplication.clipboard().setText(self.summary_text())
        self.copy_button.setText("Copied")
        self._copied_timer.start()

    @Slot()
    def on_copied_timer_timeout(self) -> None:
        self.copy_button.setText("Copy")
