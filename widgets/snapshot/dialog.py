"""The incident snapshot export dialog: choose a time range and a file, then watch the export.

:class:`SnapshotDialog` is a pure view. The operator picks a range (pre-filled
with the latest incident when there is one) and a ``.zip`` file; the dialog
checks both, emits a :class:`SnapshotChoice` through ``export_requested`` and
then shows what the app reports back: :meth:`~SnapshotDialog.set_progress`,
:meth:`~SnapshotDialog.finish` or :meth:`~SnapshotDialog.fail`. It writes nothing.

Times are shown and typed in local time (with the UTC offset next to them);
the choice carries epoch seconds, so the app never deals with time zones.
The widgets and their layout are in :mod:`widgets.snapshot.dialog_layout`, the
quick ranges and time texts in :mod:`widgets.snapshot.range_text`.
"""

from __future__ import annotations

import enum
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from PySide6.QtCore import QEvent, QUrl, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from widgets.common.theme import repolish
from widgets.snapshot.dialog_layout import SnapshotDialogLayout
from widgets.snapshot.range_text import (
    DATE_TIME_FORMAT,
    INCIDENT,
    QUICK_RANGES,
    aware_epoch,
    format_span,
    local_time,
    snapshot_file_name,
    zone_text,
)

__all__ = ["FUTURE_GRACE_S", "SnapshotChoice", "SnapshotDialog", "SnapshotState"]

FUTURE_GRACE_S: Final = 60
"""How far past now "To" may be (clock skew between consoles), and how far before
the history kept "From" may be (the edge moves while the dialog is open)."""
_PROGRESS_STEPS: Final = 1000


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


def _restyle(widget: QWidget, name: str) -> None:
    """Give ``widget`` the look of another object name (resources/style.qss)."""
    if widget.objectName() != name:
        widget.setObjectName(name)
        repolish(widget)


# --------------------------------------------------------------------------- dialog


class SnapshotDialog(SnapshotDialogLayout):
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
        now_s = aware_epoch(now, "now")  # checked before any widget is built
        window: tuple[int, int] | None = None
        if incident is not None:
            window = (
                math.floor(aware_epoch(incident[0], "incident start")),
                math.ceil(aware_epoch(incident[1], "incident end")),
            )
        super().__init__(parent)
        self._now_s = now_s
        self._clock = clock
        self._clock_start = clock()
        self.retention_s = max(int(retention_s), 0)
        self.default_dir = Path(default_dir).expanduser()
        self.profile_name = profile_name
        self._incident = window
        self._state = SnapshotState.INPUT
        self._user_named = False
        self._setting_range = False
        self._cancel_sent = False
        self._active_range: str | None = None
        self._choice: SnapshotChoice | None = None
        self._result_path: Path | None = None

        self._describe(incident_label)
        self._connect_signals()

        if self._incident is not None:
            self.set_range(*self._incident, active=INCIDENT)
        elif default_range is not None:
            self.set_range(
                math.floor(aware_epoch(default_range[0], "default_range start")),
                math.ceil(aware_epoch(default_range[1], "default_range end")),
            )
        else:
            self.apply_quick_range("Last hour")
        self.refresh()
        self.setMinimumWidth(640)
        self.from_edit.setFocus()

    # -- construction --------------------------------------------------------------------

    def _describe(self, incident_label: str) -> None:
        """Fill in the texts that depend on the profile, the incident and the history kept."""
        self.subline_label.setText(self._intro_text())
        incident = self._incident
        self.incident_note.setVisible(incident is not None)
        self.incident_button.setEnabled(incident is not None)
        if incident is None:
            self.incident_button.setToolTip("No incident in the alerts")
        else:
            start, end = incident
            window = f"{self._hhmm(start)}–{self._hhmm(end)}"
            alerts = f" (alerts: {incident_label})" if incident_label else ""
            self.incident_note.setText(f"Pre-filled with the incident of {window}{alerts}")
            self.incident_button.setToolTip(
                f"The incident's window from the alerts: {self._when(start)} – {self._when(end)}"
            )
        for label, span in QUICK_RANGES:
            tip = f"From {format_span(span)} ago until now"
            if span > self.retention_s:
                tip += f" (history goes back only {format_span(self.retention_s)})"
            self.quick_buttons[label].setToolTip(tip)

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

    def _intro_text(self) -> str:
        return (
            "One zip for the post-mortem: report.html, charts, CSVs, the audit trail,"
            f" the alerts and a manifest, from profile “{self.profile_name}”."
        )

    # -- time ----------------------------------------------------------------------------

    def now_s(self) -> float:
        """Now, in epoch seconds: the ``now`` given, moved on by the clock."""
        return self._now_s + (self._clock() - self._clock_start)

    def earliest_s(self) -> int:
        """The earliest second the history still holds."""
        return math.ceil(self.now_s() - self.retention_s)

    def _when(self, epoch_s: int) -> str:
        """``14:02:07`` today (relative to now), ``2024-03-04 14:02:07`` on another day."""
        moment = local_time(epoch_s)
        if moment.date() == local_time(math.floor(self.now_s())).date():
            return moment.toString("HH:mm:ss")
        return moment.toString(DATE_TIME_FORMAT)

    @staticmethod
    def _hhmm(epoch_s: int) -> str:
        return local_time(epoch_s).toString("HH:mm")

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
            self.from_edit.setDateTime(local_time(int(from_s)))
            self.to_edit.setDateTime(local_time(int(to_s)))
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
            f"{local_time(from_s).toString(DATE_TIME_FORMAT)} – {self._when_after(from_s, to_s)}"
            f"  ({zone_text(from_s)}) · {format_span(to_s - from_s)}"
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
        end = local_time(to_s)
        same_day = end.date() == local_time(from_s).date()
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
        self.from_offset_label.setText(zone_text(from_s))
        self.to_offset_label.setText(zone_text(to_s))
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
