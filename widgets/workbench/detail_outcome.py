"""The detail header's outcome line: what became of the payment after the entry's last
requeue or retry ("Outcome  failed again: failed at 14:05:31 CET"), with a button that
opens the new entry when the payment was dead-lettered again."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from services.masking.text import mask_text
from services.outcomes.model import EntryOutcome
from widgets.common import colors


class OutcomeLine(QWidget):
    """Hidden until an entry has an outcome. "Open new entry" emits
    ``entry_link_activated`` with the new entry's id."""

    entry_link_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("OutcomeLine")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open new entry")
        self.open_button.setObjectName("LinkButton")
        self.open_button.setFlat(True)
        self.open_button.setAutoDefault(False)
        self.open_button.setCursor(Qt.CursorShape.PointingHandCursor)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(self.label, 1)
        row.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)
        self.open_button.clicked.connect(self.on_open_clicked)
        self.outcome: EntryOutcome | None = None
        self.setVisible(False)

    def show_outcome(self, outcome: EntryOutcome | None) -> None:
        """Say ``outcome`` (None: hide the line)."""
        self.outcome = outcome
        self.setVisible(outcome is not None)
        self.open_button.setVisible(outcome is not None and bool(outcome.link))
        if outcome is None:
            self.label.setText("")
            return
        if outcome.link:
            self.open_button.setToolTip(
                f"The payment was dead-lettered again: entry {outcome.link}"
            )
        colour = colors.OUTCOME_COLORS[outcome.outcome]
        detail = f": {html.escape(mask_text(outcome.detail))}" if outcome.detail else ""
        job = f" · job {html.escape(outcome.job)}" if outcome.job else ""
        self.label.setText(
            f"<span style='color:{colors.TEXT_MUTED}'>Outcome</span>&nbsp; "
            f"<b style='color:{colour}'>{html.escape(outcome.outcome.label)}</b>"
            f"{detail}<span style='color:{colors.TEXT_FAINT}'>{job}</span>"
        )

    def plain_text(self) -> str:
        """The line as plain text (what a person reads)."""
        return "" if self.outcome is None else f"Outcome {self.outcome.text}"

    @Slot()
    def on_open_clicked(self) -> None:
        if self.outcome is not None and self.outcome.link:
            self.entry_link_activated.emit(self.outcome.link)
