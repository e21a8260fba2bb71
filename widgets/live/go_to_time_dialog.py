"""Jump the plots to a moment of the flow history: a date-time within the retention window."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from services.time_range import zone_name

DATE_TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"


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
        self.edit = QDateTimeEdit(self)
        self.edit.setDisplayFormat(DATE_TIME_FORMAT)
        self.edit.setCalendarPopup(True)
        self.edit.setMinimumDateTime(QDateTime.fromSecsSinceEpoch(earliest))
        self.edit.setMaximumDateTime(QDateTime.fromSecsSinceEpoch(now))
        start = now - 3600 if initial is None else int(initial)
        self.edit.setDateTime(QDateTime.fromSecsSinceEpoch(min(max(start, earliest), now)))
        zone = zone_name(datetime.datetime.fromtimestamp(now))
        self.edit.setToolTip(f"Local time ({zone}); the plots show the window around it")
        hint = QLabel(
            f"Show the flow around a moment of the last {retention_s / 3600:g} h"
            f" (local time, {zone}). End returns to the live flow."
        )
        hint.setObjectName("Muted")
        hint.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Go")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.edit)
        layout.addWidget(buttons)
        self.setMinimumWidth(380)
        self.edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def moment(self) -> float:
        """The chosen moment, in epoch seconds."""
        return float(self.edit.dateTime().toSecsSinceEpoch())
