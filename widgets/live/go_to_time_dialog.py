"""Jump the plots to a moment of the flow history: a date-time within the retention window.

The moment is typed as text, read as the command line reads ``--from`` (a local
``yyyy-MM-dd HH:mm:ss``, ``HH:MM`` today, ``1h`` ago): a full date-time typed or pasted
over the whole text is taken as it is. (A ``QDateTimeEdit`` re-read each keystroke
section by section against its bounds, so a date-time typed after Ctrl+A came out as a
mix of it and the bounds - "now".) Up and Down step the part under the cursor, as in a
date-time editor; a moment outside the window is refused with the reason, not moved.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

from PySide6.QtCore import QDateTime, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from services.time_range import format_local_time, parse_moment, zone_name

DATE_TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"
_SECTIONS = ((0, 4, "year"), (5, 7, "month"), (8, 10, "day"), (11, 13, "hour"), (14, 16, "min"))
"""Character spans of ``DATE_TIME_FORMAT`` and what Up/Down steps there (else seconds)."""


class MomentEdit(QLineEdit):
    """A local date-time as text, bounded; Up/Down step the part under the cursor."""

    moment_changed = Signal()

    def __init__(self, earliest: int, latest: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._earliest = QDateTime.fromSecsSinceEpoch(earliest)
        self._latest = QDateTime.fromSecsSinceEpoch(latest)
        self._clock = lambda: datetime.datetime.fromtimestamp(latest).astimezone()
        self.textChanged.connect(self.moment_changed)

    def minimumDateTime(self) -> QDateTime:
        """The earliest moment (QDateTimeEdit's names, as callers read them)."""
        return QDateTime(self._earliest)

    def maximumDateTime(self) -> QDateTime:
        return QDateTime(self._latest)

    def setDateTime(self, value: QDateTime) -> None:
        self.setText(value.toString(DATE_TIME_FORMAT))

    def dateTime(self) -> QDateTime:
        """The moment typed (invalid when the text is not one)."""
        seconds = self.seconds()
        return QDateTime() if seconds is None else QDateTime.fromSecsSinceEpoch(int(seconds))

    def seconds(self) -> float | None:
        """Epoch seconds of the text, read as the command line reads it, or None."""
        try:
            return parse_moment(self.text(), now=self._clock())
        except ValueError:
            return None

    def problem(self) -> str | None:
        """Why the text is no moment to go to, or None."""
        seconds = self.seconds()
        if seconds is None:
            return "Not a time: type it as YYYY-MM-DD HH:MM:SS, HH:MM (today) or 1h (ago)"
        if seconds < self._earliest.toSecsSinceEpoch():
            return (
                "Before the history kept (from "
                + format_local_time(self._earliest.toSecsSinceEpoch())
                + ")"
            )
        if seconds > self._latest.toSecsSinceEpoch():
            return "After now"
        return None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.seconds() is not None:
            self._step(1 if event.key() == Qt.Key.Key_Up else -1)
            return
        super().keyPressEvent(event)

    def _step(self, sign: int) -> None:
        current = self.dateTime()
        cursor = self.cursorPosition()
        unit = next((u for lo, hi, u in _SECTIONS if lo <= cursor <= hi), "sec")
        stepped = {
            "year": lambda: current.addYears(sign),
            "month": lambda: current.addMonths(sign),
            "day": lambda: current.addDays(sign),
            "hour": lambda: current.addSecs(3600 * sign),
            "min": lambda: current.addSecs(60 * sign),
            "sec": lambda: current.addSecs(sign),
        }[unit]()
        stepped = min(max(stepped, self._earliest), self._latest)
        self.setDateTime(stepped)
        self.setCursorPosition(cursor)


class GoToTimeDialog(QDialog):
    """Ask for a local date-time between ``now - retention_s`` and now.

    ``moment()`` is the chosen epoch second once the dialog was accepted.
    """

    def __init__(
        self,
        retention_s: int,
        initial: float | None = None,
        *,
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("GoToTimeDialog")
        self.setWindowTitle("Go to time")
        now = int(clock())
        earliest = now - max(0, int(retention_s))
        self.edit = MomentEdit(earliest, now, self)
        self.edit.setObjectName("GoToTimeEdit")
        start = now - 3600 if initial is None else int(initial)
        self.edit.setDateTime(QDateTime.fromSecsSinceEpoch(min(max(start, earliest), now)))
        zone = zone_name(datetime.datetime.fromtimestamp(now))
        self.edit.setToolTip(
            f"Local time ({zone}), {DATE_TIME_FORMAT}; also HH:MM today or 1h ago."
            " Up/Down step the part under the cursor; the plots show the window around it"
        )
        hint = QLabel(
            f"Show the flow around a moment of the last {retention_s / 3600:g} h"
            f" (local time, {zone}). End returns to the live flow."
        )
        hint.setObjectName("Muted")
        hint.setWordWrap(True)
        self.problem_label = QLabel(self)
        self.problem_label.setObjectName("GoToTimeProblem")
        self.problem_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.go_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.go_button.setText("Go")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.edit.moment_changed.connect(self._check)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.edit)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(380)
        self._check()
        self.edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def _check(self) -> None:
        problem = self.edit.problem()
        self.problem_label.setText(problem or "")
        self.problem_label.setVisible(problem is not None)
        self.go_button.setEnabled(problem is None)

    def accept(self) -> None:
        """Go, when the text is a moment within the window (Enter on a bad one does nothing)."""
        if self.edit.problem() is None:
            super().accept()

    def moment(self) -> float:
        """The chosen moment, in epoch seconds."""
        seconds = self.edit.seconds()
        return (
            float(int(seconds))
            if seconds is not None
            else float(self.edit.maximumDateTime().toSecsSinceEpoch())
        )
