"""The incident snapshot export dialog: choose a time range and a file, then watch the export.

:class:`SnapshotDialog` is a pure view. The operator picks a range (pre-filled
with the latest incident when there is one) and a ``.zip`` file; the dialog
checks both, emits a :class:`SnapshotChoice` through ``export_requested`` and
then shows what the app reports back: :meth:`~SnapshotDialog.set_progress`,
:meth:`~SnapshotDialog.finish` or :meth:`~SnapshotDialog.fail`. It writes nothing.

Times are shown and typed in local time (with the UTC offset next to them);
the choice carries epoch seconds, so the app never deals with time zones.
"""

from __future__ import annotations

import enum
import itertools
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from PySide6.QtCore import QDateTime, QEvent, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from widgets.common import colors

__all__ = [
    "FUTURE_GRACE_S",
    "INCIDENT",
    "QUICK_RANGES",
    "SnapshotChoice",
    "SnapshotDialog",
    "SnapshotState",
    "format_span",
    "snapshot_file_name",
    "utc_offset_text",
]

INCIDENT: Final = "Incident"
"""The label of the quick-range button that selects the incident's window."""
QUICK_RANGES: Final[tuple[tuple[str, int], ...]] = (
    ("Last 15 min", 15 * 60),
    ("Last hour", 3600),
    ("Last 6 h", 6 * 3600),
    ("Last 24 h", 24 * 3600),
)
"""The quick ranges on offer, ending now: (label, seconds); clamped to the history kept."""
FUTURE_GRACE_S: Final = 60
"""How far past now "To" may be (clock skew between consoles), and how far before
the history kept "From" may be (the edge moves while the dialog is open)."""
DATE_TIME_FORMAT: Final = "yyyy-MM-dd HH:mm:ss"
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PROGRESS_STEPS: Final = 1000

_STYLE: Final = f"""
QLabel#DialogHeadline {{ font-size: 12pt; font-weight: bold; color: {colors.TEXT}; }}
QLabel#DialogSubline {{ color: {colors.TEXT_MUTED}; }}
QLabel#FieldCaption {{ color: {colors.TEXT_MUTED}; }}
QLabel#OffsetLabel {{ color: {colors.TEXT_MUTED}; }}
QLabel#DurationLabel {{ color: {colors.TEXT_MUTED}; }}
QLabel#IncidentNote {{
    color: {colors.TEXT}; background: rgba(76, 154, 255, 22);
    border: 1px solid rgba(76, 154, 255, 90); border-radius: 4px; padding: 5px 8px;
}}
QLabel#ErrorNote {{
    color: #ffb4b4; background: rgba(240, 84, 84, 26);
    border: 1px solid rgba(240, 84, 84, 110); border-radius: 4px; padding: 5px 8px;
}}
QLabel#CancelledNote {{
    color: {colors.AMBER}; background: rgba(245, 165, 36, 24);
    border: 1px solid rgba(245, 165, 36, 90); border-radius: 4px; padding: 5px 8px;
}}
QLabel#ValidationOk {{ color: {colors.TEXT_MUTED}; }}
QLabel#ValidationError {{ color: {colors.RED}; }}
QLabel#ValidationWarn {{ color: {colors.AMBER}; }}
QLabel#StageLabel {{ font-weight: bold; }}
QLabel#ResultTitle {{ font-size: 11pt; font-weight: bold; color: {colors.GREEN}; }}
QLabel#ResultPath {{ color: {colors.TEXT}; }}
QLabel#ResultDetail {{ color: {colors.TEXT_MUTED}; }}
QFrame#ResultPanel {{
    background: {colors.SURFACE_RAISED}; border: 1px solid {colors.BORDER};
    border-left: 3px solid {colors.GREEN}; border-radius: 4px;
}}
QDateTimeEdit {{
    background: {colors.PLOT_BG}; border: 1px solid {colors.BORDER}; border-radius: 4px;
    padding: 3px 6px; selection-background-color: #1f4f8f;
}}
QDateTimeEdit:focus {{ border-color: {colors.ACCENT}; }}
QDateTimeEdit:disabled, QLineEdit:disabled {{ color: {colors.TEXT_FAINT}; }}
QPushButton#QuickRange {{ padding: 4px 10px; }}
QPushButton#QuickRange:checked {{
    background: #1f4f8f; border-color: {colors.ACCENT}; color: #ffffff;
}}
QPushButton#QuickRange:checked:disabled {{
    background: rgba(31, 79, 143, 110); border-color: #1f4f8f; color: {colors.TEXT_MUTED};
}}
QPushButton:disabled {{ color: {colors.TEXT_FAINT}; border-color: {colors.BORDER}; }}
QProgressBar {{
    background: {colors.PLOT_BG}; border: 1px solid {colors.BORDER}; border-radius: 4px;
    text-align: center; min-height: 20px;
}}
QProgressBar::chunk {{ background: {colors.ACCENT}; border-radius: 3px; }}
"""


@dataclass(frozen=True, slots=True)
class SnapshotChoice:
    """What the operator asked to export: a time range in epoch seconds and the zip to write."""

    from_s: int
    to_s: int
    path: Path


class SnapshotState(enum.Enum):
    """Where the dialog is: choosing, exporting, or done."""

    INPUT = "input"
    EXPORTING = "exporting"
    DONE = "done"


# --------------------------------------------------------------------------- helpers


def _epoch(value: datetime, name: str) -> float:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.timestamp()


def _local(epoch_s: int) -> QDateTime:
    """``epoch_s`` as a local date-time (the zone the operator reads and types in)."""
    return QDateTime.fromSecsSinceEpoch(epoch_s)


def format_span(seconds: int) -> str:
    """A duration by its non-zero units: ``45 s``, ``1 h 30 min``, ``24 h``, ``2 d 3 h``."""
    seconds = max(int(seconds), 0)
    parts: list[str] = []
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for unit, size in units if seconds >= 2 * 86400 else units[1:]:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts) or "0 s"


def utc_offset_text(epoch_s: int) -> str:
    """The local zone's offset at ``epoch_s``: ``UTC+01:00 CET``, ``UTC+05:30 IST``."""
    moment = _local(epoch_s)
    offset = moment.offsetFromUtc()
    hours, minutes = divmod(abs(offset) // 60, 60)
    text = f"UTC{'-' if offset < 0 else '+'}{hours:02d}:{minutes:02d}"
    abbreviation = moment.timeZoneAbbreviation()
    if abbreviation.isalpha() and abbreviation.upper() not in ("UTC", "GMT"):
        text += f" {abbreviation}"
    return text


def snapshot_file_name(profile_name: str, from_s: int, to_s: int) -> str:
    """``payops-snapshot-<profile>-<YYYYmmdd-HHMM>-<HHMM>.zip``, in local time."""
    profile = _FILE_UNSAFE.sub("-", profile_name.strip()).strip("-.") or "profile"
    start = _local(from_s).toString("yyyyMMdd-HHmm")
    end = _local(to_s).toString("HHmm")
    return f"payops-snapshot-{profile}-{start}-{end}.zip"


def _restyle(widget: QWidget, name: str) -> None:
    if widget.objectName() != name:
        widget.setObjectName(name)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


# --------------------------------------------------------------------------- dialog


class SnapshotDialog(QDialog):
    """Export an incident snapshot: a time range and an output zip, then progress and result.

    ``now`` and the range datetimes must be timezone-aware. ``retention_s`` is
    how far back the history goes; an earlier "From" is refused. With an
    ``incident`` (its window from the alerts) the range starts as that window
    and the "Incident" button brings it back; otherwise ``default_range``, else
    the last hour. ``clock`` (monotonic seconds) moves ``now`` on while the
    dialog is open.

    Export (the default button, also ``Ctrl+Enter``) asks before replacing a
    file, emits ``export_requested(SnapshotChoice)`` and switches to progress:
    the inputs are disabled until :meth:`fail` (the operator may retry) or
    :meth:`finish`. Cancel, Esc and the close button emit ``cancel_requested``
    while exporting; the dialog stays until the app answers with
    ``fail("Cancelled")``.
    """

    export_requested = Signal(object)
    cancel_requested = Signal()

    def __init__(
        self,
        *,
        now: datetime,
        retention_s: int,
        incident: tuple[datetime, datetime] | None = None,
        incident_label: str = "",
        default_dir: Path,
        profile_name: str,
        default_range: tuple[datetime, datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("SnapshotDialog")
        self.setStyleSheet(_STYLE)
        self.setWindowTitle("Export incident snapshot")
        self._now_s = _epoch(now, "now")
        self._clock = clock
        self._clock_start = clock()
        self.retention_s = max(int(retention_s), 0)
        self.default_dir = Path(default_dir).expanduser()
        self.profile_name = profile_name
        self._incident: tuple[int, int] | None = None
        if incident is not None:
            start, end = incident
            self._incident = (
                math.floor(_epoch(start, "incident start")),
                math.ceil(_epoch(end, "incident end")),
            )
        self._state = SnapshotState.INPUT
        self._user_named = False
        self._setting_range = False
        self._cancel_sent = False
        self._active_range: str | None = None
        self._choice: SnapshotChoice | None = None
        self._result_path: Path | None = None

        self._build_header(incident_label)
        self._build_form()
        self._build_status()
        self._build_buttons()
        self._build_layout()
        # only now: a default button must be inside its dialog for the dialog to keep it
        self.export_button.setDefault(True)
        self._connect_signals()
        self._set_tab_order()

        if self._incident is not None:
            self.set_range(*self._incident, active=INCIDENT)
        elif default_range is not None:
            self.set_range(
                math.floor(_epoch(default_range[0], "default_range start")),
                math.ceil(_epoch(default_range[1], "default_range end")),
            )
        else:
            self.apply_quick_range("Last hour")
        self.refresh()
        self.setMinimumWidth(640)
        self.from_edit.setFocus()

    # -- construction --------------------------------------------------------------------

    def _build_header(self, incident_label: str) -> None:
        self.headline_label = QLabel("Export an incident snapshot")
        self.headline_label.setObjectName("DialogHeadline")
        self.subline_label = QLabel(self._intro_text())
        self.subline_label.setObjectName("DialogSubline")
        self.subline_label.setWordWrap(True)
        self.subline_label.setTextFormat(Qt.TextFormat.PlainText)
        self.incident_note = QLabel()
        self.incident_note.setObjectName("IncidentNote")
        self.incident_note.setWordWrap(True)
        self.incident_note.setTextFormat(Qt.TextFormat.PlainText)
        if self._incident is not None:
            start, end = self._incident
            window = f"{self._hhmm(start)}–{self._hhmm(end)}"
            alerts = f" (alerts: {incident_label})" if incident_label else ""
            self.incident_note.setText(f"Pre-filled with the incident of {window}{alerts}")
        self.incident_note.setVisible(self._incident is not None)

    def _build_form(self) -> None:
        self.quick_buttons: dict[str, QPushButton] = {}
        quick_row = QHBoxLayout()
        quick_row.setSpacing(6)
        for label in (INCIDENT, *(name for name, _ in QUICK_RANGES)):
            button = QPushButton(label)
            button.setObjectName("QuickRange")
            button.setCheckable(True)
            self.quick_buttons[label] = button
            quick_row.addWidget(button)
        quick_row.addStretch(1)
        self.incident_button = self.quick_buttons[INCIDENT]
        self.incident_button.setEnabled(self._incident is not None)
        if self._incident is not None:
            start, end = self._incident
            self.incident_button.setToolTip(
                f"The incident's window from the alerts: {self._when(start)} – {self._when(end)}"
            )
        else:
            self.incident_button.setToolTip("No incident in the alerts")
        for label, span in QUICK_RANGES:
            tip = f"From {format_span(span)} ago until now"
            if span > self.retention_s:
                tip += f" (history goes back only {format_span(self.retention_s)})"
            self.quick_buttons[label].setToolTip(tip)

        self.from_edit = self._date_time_edit("FromEdit", "Start of the range, in local time")
        self.to_edit = self._date_time_edit("ToEdit", "End of the range, in local time")
        self.from_offset_label = QLabel()
        self.from_offset_label.setObjectName("OffsetLabel")
        self.to_offset_label = QLabel()
        self.to_offset_label.setObjectName("OffsetLabel")
        self.duration_label = QLabel()
        self.duration_label.setObjectName("DurationLabel")

        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("PathEdit")
        self.path_edit.setPlaceholderText("Where to write the snapshot (.zip)")
        self.path_edit.setClearButtonEnabled(True)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setObjectName("BrowseButton")
        self.browse_button.setToolTip("Choose the zip file to write")

        form = QFormLayout()
        form.setContentsMargins(0, 4, 0, 0)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(self._caption("Range"), quick_row)
        for caption, edit, offset in (
            ("From", self.from_edit, self.from_offset_label),
            ("To", self.to_edit, self.to_offset_label),
        ):
            row = QHBoxLayout()
            row.setSpacing(8)
            row.addWidget(edit)
            row.addWidget(offset)
            row.addStretch(1)
            caption_label = self._caption(caption)
            caption_label.setBuddy(edit)
            form.addRow(caption_label, row)
        form.addRow("", self.duration_label)
        path_row = QHBoxLayout()
        path_row.setSpacing(6)
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        path_caption = self._caption("Save to")
        path_caption.setBuddy(self.path_edit)
        form.addRow(path_caption, path_row)
        self.form_box = QWidget()
        self.form_box.setObjectName("SnapshotForm")
        self.form_box.setLayout(form)

    def _build_status(self) -> None:
        self.error_note = QLabel()
        self.error_note.setObjectName("ErrorNote")
        self.error_note.setWordWrap(True)
        self.error_note.setTextFormat(Qt.TextFormat.PlainText)
        self.error_note.setVisible(False)

        self.stage_label = QLabel()
        self.stage_label.setObjectName("StageLabel")
        self.stage_label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("SnapshotProgress")
        self.progress_bar.setTextVisible(True)
        self.progress_box = QWidget()
        progress_column = QVBoxLayout(self.progress_box)
        progress_column.setContentsMargins(0, 4, 0, 0)
        progress_column.setSpacing(6)
        progress_column.addWidget(self.stage_label)
        progress_column.addWidget(self.progress_bar)
        self.progress_box.setVisible(False)

        self.result_title = QLabel("✓ Incident snapshot exported")
        self.result_title.setObjectName("ResultTitle")
        self.result_range_label = QLabel()
        self.result_range_label.setObjectName("ResultDetail")
        self.result_path_label = QLabel()
        self.result_path_label.setObjectName("ResultPath")
        self.result_path_label.setWordWrap(True)
        self.result_path_label.setTextFormat(Qt.TextFormat.PlainText)
        self.result_path_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.result_summary_label = QLabel()
        self.result_summary_label.setObjectName("ResultDetail")
        self.result_summary_label.setWordWrap(True)
        self.result_summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.result_panel = QFrame()
        self.result_panel.setObjectName("ResultPanel")
        result_column = QVBoxLayout(self.result_panel)
        result_column.setContentsMargins(12, 10, 12, 10)
        result_column.setSpacing(4)
        for widget in (
            self.result_title,
            self.result_path_label,
            self.result_range_label,
            self.result_summary_label,
        ):
            result_column.addWidget(widget)
        self.result_panel.setVisible(False)

        self.message_label = QLabel()
        self.message_label.setObjectName("ValidationOk")
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)

    def _build_buttons(self) -> None:
        self.buttons = QDialogButtonBox()
        role = QDialogButtonBox.ButtonRole
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("ExportButton")
        self.buttons.addButton(self.export_button, role.AcceptRole)
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.setObjectName("OpenFolderButton")
        self.open_folder_button.setToolTip("Show the snapshot in the file manager")
        self.buttons.addButton(self.open_folder_button, role.ActionRole)
        self.cancel_button = QPushButton("Cancel export")
        self.cancel_button.setObjectName("CancelButton")
        self.cancel_button.setToolTip("Stop the export (Esc)")
        self.buttons.addButton(self.cancel_button, role.RejectRole)
        self.close_button = QPushButton("Close")
        self.close_button.setObjectName("CloseButton")
        self.close_button.setToolTip("Close without exporting (Esc)")
        self.buttons.addButton(self.close_button, role.RejectRole)
        # Enter must never cancel an export by accident (it may be the Enter that started it)
        self.cancel_button.setAutoDefault(False)
        self.open_folder_button.setVisible(False)
        self.cancel_button.setVisible(False)
        self.export_shortcuts = [
            QShortcut(QKeySequence(sequence), self) for sequence in ("Ctrl+Return", "Ctrl+Enter")
        ]

    def _build_layout(self) -> None:
        bottom = QHBoxLayout()
        bottom.setSpacing(12)
        bottom.addWidget(self.message_label, 1)
        bottom.addWidget(self.buttons, 0, Qt.AlignmentFlag.AlignBottom)
        column = QVBoxLayout(self)
        column.setContentsMargins(18, 16, 18, 14)
        column.setSpacing(10)
        column.addWidget(self.headline_label)
        column.addWidget(self.subline_label)
        column.addWidget(self.incident_note)
        column.addWidget(self.form_box)
        column.addWidget(self.progress_box)
        column.addWidget(self.result_panel)
        column.addWidget(self.error_note)
        column.addStretch(1)
        column.addLayout(bottom)

    def _connect_signals(self) -> None:
        for label, button in self.quick_buttons.items():
            button.clicked.connect(lambda _=False, name=label: self.apply_quick_range(name))
        self.from_edit.dateTimeChanged.connect(self.on_range_edited)
        self.to_edit.dateTimeChanged.connect(self.on_range_edited)
        self.path_edit.textEdited.connect(self.on_path_edited)
        self.path_edit.textChanged.connect(self.refresh)
        self.browse_button.clicked.connect(self.browse)
        self.export_button.clicked.connect(self.export)
        for shortcut in self.export_shortcuts:
            shortcut.activated.connect(self.export)
        self.cancel_button.clicked.connect(self.request_cancel)
        self.close_button.clicked.connect(self.on_close_clicked)
        self.open_folder_button.clicked.connect(self.open_folder)

    def _set_tab_order(self) -> None:
        chain: list[QWidget] = [
            *self.quick_buttons.values(),
            self.from_edit,
            self.to_edit,
            self.path_edit,
            self.browse_button,
            self.export_button,
            self.cancel_button,
            self.open_folder_button,
            self.close_button,
        ]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _intro_text(self) -> str:
        return (
            "One zip for the post-mortem: report.html, charts, CSVs, the audit trail,"
            f" the alerts and a manifest, from profile “{self.profile_name}”."
        )

    @staticmethod
    def _caption(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("FieldCaption")
        return label

    @staticmethod
    def _date_time_edit(name: str, tip: str) -> QDateTimeEdit:
        edit = QDateTimeEdit()
        edit.setObjectName(name)
        edit.setDisplayFormat(DATE_TIME_FORMAT)
        edit.setCalendarPopup(True)
        edit.setToolTip(f"{tip} (seconds precision); the arrow opens a calendar")
        edit.setMinimumWidth(190)
        return edit

    # -- time ----------------------------------------------------------------------------

    def now_s(self) -> float:
        """Now, in epoch seconds: the ``now`` given, moved on by the clock."""
        return self._now_s + (self._clock() - self._clock_start)

    def earliest_s(self) -> int:
        """The earliest second the history still holds."""
        return math.ceil(self.now_s() - self.retention_s)

    def _when(self, epoch_s: int) -> str:
        """``14:02:07`` today (relative to now), ``2024-03-04 14:02:07`` on another day."""
        moment = _local(epoch_s)
        if moment.date() == _local(math.floor(self.now_s())).date():
            return moment.toString("HH:mm:ss")
        return moment.toString(DATE_TIME_FORMAT)

    @staticmethod
    def _hhmm(epoch_s: int) -> str:
        return _local(epoch_s).toString("HH:mm")

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> SnapshotState:
        """Whether the operator is choosing, the export runs, or it is done."""
        return self._state

    @property
    def incident(self) -> tuple[int, int] | None:
        """The incident's window in epoch seconds (None without one)."""
        return self._incident

    @property
    def active_range(self) -> str | None:
        """The quick range the current range came from (None after a manual edit)."""
        return self._active_range

    def range_s(self) -> tuple[int, int]:
        """The chosen range ``(from_s, to_s)`` in epoch seconds."""
        return (
            int(self.from_edit.dateTime().toSecsSinceEpoch()),
            int(self.to_edit.dateTime().toSecsSinceEpoch()),
        )

    def output_path(self) -> Path | None:
        """The file to write: relative names go to ``default_dir``; ``.zip`` is added if missing."""
        text = self.path_edit.text().strip()
        if not text:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.default_dir / path
        if path.suffix.lower() != ".zip" and not path.is_dir():
            path = path.with_name(path.name + ".zip")
        return path

    def problem(self) -> str | None:
        """Why the export cannot start (None when it can)."""
        from_s, to_s = self.range_s()
        now = self.now_s()
        if from_s >= to_s:
            return "“From” must be before “To”."
        if to_s > now + FUTURE_GRACE_S:
            return f"“To” is in the future: it is {self._when(math.floor(now))} now."
        if from_s < now - self.retention_s - FUTURE_GRACE_S:
            return (
                f"“From” is older than the history kept ({format_span(self.retention_s)}):"
                f" choose {self._when(self.earliest_s())} or later."
            )
        path = self.output_path()
        if path is None:
            return "Choose the file to write."
        if path.is_dir():
            return f"{path} is a folder: add a file name."
        folder = path.parent
        if not folder.is_dir():
            return f"The folder {folder} does not exist."
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"The folder {folder} is not writable."
        return None

    def notice(self) -> str | None:
        """What the operator should know before exporting, though it is allowed."""
        path = self.output_path()
        if path is None:
            return None
        if path.is_file():
            return f"{path.name} already exists: you will be asked before it is replaced."
        if path.name != Path(self.path_edit.text().strip()).name:
            return f"Saved as {path.name}."
        return None

    def choice(self) -> SnapshotChoice | None:
        """The range and file as they stand; None while they are not valid."""
        path = self.output_path()
        if path is None or self.problem() is not None:
            return None
        from_s, to_s = self.range_s()
        return SnapshotChoice(from_s=from_s, to_s=to_s, path=path)

    # -- range ---------------------------------------------------------------------------

    def set_range(self, from_s: int, to_s: int, *, active: str | None = None) -> None:
        """Show ``[from_s, to_s]`` (epoch seconds) in the editors."""
        self._setting_range = True
        try:
            self.from_edit.setDateTime(_local(int(from_s)))
            self.to_edit.setDateTime(_local(int(to_s)))
        finally:
            self._setting_range = False
        self._active_range = active
        for label, button in self.quick_buttons.items():
            button.setChecked(label == active)
        self._follow_range()

    @Slot(str)
    def apply_quick_range(self, label: str) -> None:
        """Select the range of a quick-range button ("Incident", "Last hour", …)."""
        if label == INCIDENT:
            if self._incident is not None:
                self.set_range(*self._incident, active=INCIDENT)
            else:
                self.incident_button.setChecked(False)
            return
        span = dict(QUICK_RANGES)[label]
        to_s = math.floor(self.now_s())
        self.set_range(max(to_s - span, self.earliest_s()), to_s, active=label)

    @Slot()
    def on_range_edited(self) -> None:
        if self._setting_range:
            return
        self._active_range = None
        for button in self.quick_buttons.values():
            button.setChecked(False)
        self._follow_range()

    def _follow_range(self) -> None:
        """Name the file after the range, unless the operator named it."""
        if not self.path_edit.text().strip():
            self._user_named = False
        if not self._user_named:
            automatic = str(self.default_dir / self.default_file_name())
            if self.path_edit.text() != automatic:
                self.path_edit.setText(automatic)
        self.refresh()

    # -- output file ---------------------------------------------------------------------

    def default_file_name(self) -> str:
        """The file name that follows the range."""
        return snapshot_file_name(self.profile_name, *self.range_s())

    @Slot(str)
    def on_path_edited(self, text: str) -> None:
        """The operator typed: keep their name (an emptied field follows the next range)."""
        self._user_named = True

    @Slot()
    def browse(self) -> None:
        """Choose the output file with the platform's save dialog (replacing is asked on export)."""
        start = self.output_path() or self.default_dir / self.default_file_name()
        chosen, _ = QFileDialog.getSaveFileName(
            self,
            "Export incident snapshot",
            str(start),
            "Zip archives (*.zip)",
            "",
            QFileDialog.Option.DontConfirmOverwrite,
        )
        if not chosen:
            return
        if not chosen.lower().endswith(".zip"):
            chosen += ".zip"
        self._user_named = True
        self.path_edit.setText(chosen)

    # -- export --------------------------------------------------------------------------

    @Slot()
    def export(self) -> None:
        """Start the export when the choice is valid (asking before replacing a file)."""
        if self._state is not SnapshotState.INPUT:
            return
        self.refresh()
        choice = self.choice()
        if choice is None:
            return
        if choice.path.exists() and not self._confirm_overwrite(choice.path):
            self.path_edit.setFocus()
            return
        self._choice = choice
        self._cancel_sent = False
        self._enter(SnapshotState.EXPORTING)
        self.stage_label.setText("Starting…")
        self.progress_bar.setRange(0, 0)
        self.export_requested.emit(choice)

    def _confirm_overwrite(self, path: Path) -> bool:
        answer = QMessageBox.question(
            self,
            "Replace the file?",
            f"{path.name} already exists in {path.parent}.\n\nReplace it with this snapshot?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    @Slot(str, int, object)
    def set_progress(self, stage: str, done: int, total: int | None) -> None:
        """Show the stage under way: a bar when ``total`` is known, a busy bar otherwise."""
        if self._state is not SnapshotState.EXPORTING:
            return
        done = max(int(done), 0)
        if total is None:
            self.progress_bar.setRange(0, 0)
            self.stage_label.setText(f"{stage} {done:,}" if done else stage)
        else:
            total = max(int(total), 0)
            self.progress_bar.setRange(0, _PROGRESS_STEPS)
            share = 1.0 if total == 0 else min(done / total, 1.0)
            self.progress_bar.setValue(round(share * _PROGRESS_STEPS))
            self.stage_label.setText(f"{stage} {done:,} / {total:,}")
        if self._cancel_sent:
            self.stage_label.setText(self.stage_label.text() + " · cancelling…")

    @Slot()
    def request_cancel(self) -> None:
        """Ask the app to stop the export (once); the dialog waits for :meth:`fail`."""
        if self._state is not SnapshotState.EXPORTING or self._cancel_sent:
            return
        self._cancel_sent = True
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.stage_label.setText(self.stage_label.text() + " · cancelling…")
        self.cancel_requested.emit()

    @property
    def cancelling(self) -> bool:
        """Whether the operator asked to stop the export under way."""
        return self._state is SnapshotState.EXPORTING and self._cancel_sent

    @Slot(object, str)
    def finish(self, path: Path, summary: str) -> None:
        """The snapshot is written: say where, with the app's summary."""
        self._result_path = Path(path)
        self.result_path_label.setText(str(path))
        self.result_path_label.setToolTip(str(path))
        self.result_summary_label.setText(summary)
        self.result_summary_label.setVisible(bool(summary))
        from_s, to_s = self._choice_range()
        self.result_range_label.setText(
            f"{_local(from_s).toString(DATE_TIME_FORMAT)} – {self._when_after(from_s, to_s)}"
            f"  ({utc_offset_text(from_s)}) · {format_span(to_s - from_s)}"
        )
        self._enter(SnapshotState.DONE)

    @Slot(str)
    def fail(self, message: str) -> None:
        """The export stopped (failed or cancelled): say why and let the operator retry."""
        if self._state is SnapshotState.DONE:
            return
        if self._cancel_sent:
            extra = "" if message.strip().lower() in ("", "cancelled", "canceled") else message
            text = "Export cancelled." + (f" {extra}" if extra else "")
            _restyle(self.error_note, "CancelledNote")
        else:
            text = f"Export failed: {message}" if message else "Export failed."
            _restyle(self.error_note, "ErrorNote")
        self.error_note.setText(text)
        self._enter(SnapshotState.INPUT)
        self.error_note.setVisible(True)
        self.export_button.setFocus()

    def _choice_range(self) -> tuple[int, int]:
        return (self._choice.from_s, self._choice.to_s) if self._choice else self.range_s()

    def _when_after(self, from_s: int, to_s: int) -> str:
        """``to_s`` as a time only when it falls on the same day as ``from_s``."""
        end = _local(to_s)
        same_day = end.date() == _local(from_s).date()
        return end.toString("HH:mm:ss" if same_day else DATE_TIME_FORMAT)

    @Slot()
    def open_folder(self) -> None:
        """Open the folder that holds the snapshot in the file manager."""
        if self._result_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._result_path.parent)))

    @Slot()
    def on_close_clicked(self) -> None:
        if self._state is SnapshotState.DONE:
            self.accept()
        else:
            self.reject()

    def _enter(self, state: SnapshotState) -> None:
        self._state = state
        choosing = state is SnapshotState.INPUT
        exporting = state is SnapshotState.EXPORTING
        done = state is SnapshotState.DONE
        self._set_inputs_enabled(choosing)
        self.form_box.setVisible(not done)
        self.headline_label.setVisible(not done)
        self.subline_label.setVisible(not done)
        self.incident_note.setVisible(self._incident is not None and not done)
        self.progress_box.setVisible(exporting)
        self.result_panel.setVisible(done)
        self.error_note.setVisible(False)
        self.message_label.setVisible(choosing)
        self.export_button.setVisible(choosing)
        self.cancel_button.setVisible(exporting)
        self.cancel_button.setEnabled(exporting)
        self.cancel_button.setText("Cancel export")
        self.open_folder_button.setVisible(done)
        self.close_button.setVisible(not exporting)
        self.close_button.setToolTip("" if done else "Close without exporting (Esc)")
        self.export_button.setDefault(choosing)
        self.close_button.setDefault(done)
        if exporting:
            self.headline_label.setText("Exporting the incident snapshot…")
            self.subline_label.setText(str(self._choice.path) if self._choice else "")
            self.setFocus()  # not on Cancel: see above
        elif done:
            self.close_button.setFocus()
        else:
            self.headline_label.setText("Export an incident snapshot")
            self.subline_label.setText(self._intro_text())
        self.refresh()
        if done:
            self.adjustSize()

    def _set_inputs_enabled(self, enabled: bool) -> None:
        for label, button in self.quick_buttons.items():
            button.setEnabled(enabled and (label != INCIDENT or self._incident is not None))
        for widget in (self.from_edit, self.to_edit, self.path_edit, self.browse_button):
            widget.setEnabled(enabled)
        for shortcut in self.export_shortcuts:
            shortcut.setEnabled(enabled)

    # -- rendering -----------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Check the choice again and show the result (the file system may have changed)."""
        from_s, to_s = self.range_s()
        self.from_offset_label.setText(utc_offset_text(from_s))
        self.to_offset_label.setText(utc_offset_text(to_s))
        kept = (
            f"history kept: {format_span(self.retention_s)}, since {self._when(self.earliest_s())}"
        )
        span = f"Duration {format_span(to_s - from_s)}" if to_s > from_s else "Duration —"
        self.duration_label.setText(f"{span}  ·  {kept}")
        path = self.output_path()
        self.path_edit.setToolTip(
            str(path) if path else f"The zip to write; a bare name goes to {self.default_dir}"
        )
        problem = self.problem()
        if problem is not None:
            self.message_label.setText(problem)
            _restyle(self.message_label, "ValidationError")
        else:
            self.message_label.setText(self.notice() or "")
            _restyle(self.message_label, "ValidationWarn")
        valid = problem is None
        self.export_button.setEnabled(valid and self._state is SnapshotState.INPUT)
        self.export_button.setToolTip(problem or "Write the snapshot (Ctrl+Enter)")

    # -- QDialog -------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        """Re-check the output file when the operator comes back to the dialog."""
        super().changeEvent(event)
        if (
            event.type() == QEvent.Type.ActivationChange
            and self.isActiveWindow()
            and self._state is SnapshotState.INPUT
        ):
            self.refresh()

    def reject(self) -> None:
        """Esc and the close button ask to stop an export under way; otherwise they close."""
        if self._state is SnapshotState.EXPORTING:
            self.request_cancel()
        else:
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._state is SnapshotState.EXPORTING:
            event.ignore()
            self.request_cancel()
        else:
            super().closeEvent(event)
