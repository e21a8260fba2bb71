"""The snapshot dialog's widgets and their layout, with nothing that acts on them.

:class:`SnapshotDialogLayout` builds every label, editor and button of the
export dialog and lays them out; :class:`~widgets.snapshot.dialog.SnapshotDialog`
fills in the texts that depend on its range and incident, connects the widgets
and switches between choosing, exporting and the result.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from widgets.snapshot.range_text import DATE_TIME_FORMAT, INCIDENT, QUICK_RANGES


class SnapshotDialogLayout(QDialog):
    """The export dialog's widgets, laid out: a header, the range and file form, the
    progress, the result panel, the notes and the buttons (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SnapshotDialog")
        self.setWindowTitle("Export incident snapshot")
        self._build_header()
        self._build_form()
        self._build_status()
        self._build_buttons()
        self._build_layout()
        # only now: a default button must be inside its dialog for the dialog to keep it
        self.export_button.setDefault(True)
        self._set_tab_order()

    def _build_header(self) -> None:
        self.headline_label = QLabel("Export an incident snapshot")
        self.headline_label.setObjectName("DialogHeadline")
        self.subline_label = QLabel()
        self.subline_label.setObjectName("DialogSubline")
        self.subline_label.setWordWrap(True)
        self.subline_label.setTextFormat(Qt.TextFormat.PlainText)
        self.incident_note = QLabel()
        self.incident_note.setObjectName("IncidentNote")
        self.incident_note.setWordWrap(True)
        self.incident_note.setTextFormat(Qt.TextFormat.PlainText)

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
