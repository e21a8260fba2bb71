"""A job's live outcome counters and its Pause / Resume / Cancel buttons (the action
result dialog shows it while the outcomes arrive).

Plain data in (:class:`JobStatus`, polled from Redis by the app), intents out
(``control_requested("pause" | "resume" | "cancel")``): the app steers the job through
Redis, so the buttons work on a job that runs in another console or process too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from services.masking.text import mask_text
from services.outcomes.model import OUTCOME_ORDER, Outcome
from widgets.common import colors

STEERABLE: Final = {
    "pause": frozenset({"running"}),
    "resume": frozenset({"paused", "stopped"}),
    "cancel": frozenset({"running", "paused", "stopped"}),
}
"""Which job states each button acts from (the states of ``jobs.JobState``)."""
TILES: Final = (Outcome.SUCCEEDED, Outcome.FAILED_AGAIN, Outcome.PENDING)
"""The outcomes that always have a tile; the others get one once they occur."""


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job as the dialog shows it: its state (``running``, ``paused``, ``done``,
    ``cancelled``, ``stopped``), why it is in it, how many entries it selected, and how
    many of them have each outcome (``Outcome`` value -> count)."""

    job_id: str
    state: str
    reason: str = ""
    selected: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    runner_alive: bool = True
    action: str = ""
    operator: str = ""
    created_ms: int = 0
    rate: float = 0.0
    """Entries a second (0: full speed)."""
    canary: int = 0
    max_failed_pct: float = 20.0
    counts: Mapping[str, int] = field(default_factory=dict)
    """What the action did so far: done (sent), skipped, held, failed."""

    @property
    def paced(self) -> bool:
        return self.rate > 0 or self.canary > 0

    @property
    def sent(self) -> int:
        """Sent so far: confirmed and counted in the job's record (each window is settled
        and counted as soon as its publish ends, before the job waits for anything)."""
        return int(self.counts.get("done", 0))

    @property
    def paused_by_itself(self) -> bool:
        """Paused by its canary, its failure share or a critical alert (not by a person)."""
        return self.state == "paused" and not self.reason.startswith(("paused by", "resumed"))

    def progress_line(self) -> str:
        """``Sent 40 of 200 · 2 held back by the replay gate``."""
        parts = [f"Sent {self.sent:,} of {self.selected:,}"]
        for name, words in (
            ("held", "held back by the replay gate"),
            ("skipped", "skipped"),
            ("failed", "failed to send"),
        ):
            if self.counts.get(name):
                parts.append(f"{self.counts[name]:,} {words}")
        return " · ".join(parts)

    def canary_line(self) -> str:
        """Where the canary is: sending, out and waited for, judged, or why it paused."""
        if not self.canary:
            return ""
        first = f"canary of {self.canary:,}"
        if self.paused_by_itself and self.reason.startswith("canary"):
            return f"{first}: failed again, job paused"
        if self.sent < self.canary and self.state == "running":
            return f"{first}: sending ({self.sent:,} out)"
        if self.sent == self.canary and self.state == "running" and self.selected > self.canary:
            return f"{first}: out, waiting for its outcomes"
        return f"{first}: judged" + (", sending the rest" if self.state == "running" else "")

    def pace_line(self) -> str:
        """``Pace 20/s · canary of 10: out, waiting for its outcomes · pauses above 20 %
        failed again or on a critical alert``; ``Full speed``."""
        if not self.paced:
            return "Full speed"
        parts = [f"Pace {self.rate:g}/s" if self.rate else "Full speed after the canary"]
        if self.canary:
            parts.append(self.canary_line())
        parts.append(f"pauses above {self.max_failed_pct:g} % failed again or on a critical alert")
        return " · ".join(parts)

    def count(self, outcome: Outcome) -> int:
        return int(self.outcomes.get(outcome.value, 0))

    def outcome_line(self) -> str:
        """``180 succeeded, 12 failed again, 8 pending``."""
        parts = [f"{self.count(o):,} {o.label}" for o in OUTCOME_ORDER if self.count(o)]
        return ", ".join(parts) or "no outcomes yet"

    @property
    def settled(self) -> bool:
        """Nothing more will move: the job is over and no outcome is pending."""
        return self.state in ("done", "cancelled") and not self.count(Outcome.PENDING)


def grow_to_fit(window: QWidget) -> None:
    """Make ``window`` at least as large as its layout asks (a line the panel just showed,
    such as why the job paused, must not squeeze the tiles); it never shrinks."""
    layout = window.layout()
    if layout is not None:
        layout.activate()
    hint = window.sizeHint()
    if hint.height() > window.height() or hint.width() > window.width():
        window.resize(max(hint.width(), window.width()), max(hint.height(), window.height()))


class _OutcomeTile(QFrame):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.setObjectName("CountTile")
        self.outcome = outcome
        self.value_label = QLabel("0")
        self.value_label.setObjectName("TileValue")
        title = QLabel(outcome.label.upper())
        title.setObjectName("TileCaption")
        column = QVBoxLayout(self)
        column.setContentsMargins(12, 8, 12, 8)
        column.setSpacing(0)
        column.addWidget(title)
        column.addWidget(self.value_label)

    def set_count(self, count: int) -> None:
        self.value_label.setText(f"{count:,}")
        colour = colors.OUTCOME_COLORS[self.outcome] if count else colors.TEXT_FAINT
        self.value_label.setStyleSheet(f"color: {colour}")


class JobPanel(QFrame):
    """The job's outcome counters and its buttons (see the module docstring)."""

    control_requested = Signal(str)

    def __init__(self, job_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("JobPanel")
        self.job_id = job_id
        self.status: JobStatus | None = None
        self.title_label = QLabel(f"What became of the payments · job {job_id}")
        self.title_label.setObjectName("FieldCaption")
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_label = QLabel("reading its outcomes…")  # one word or two: one line
        self.state_label.setObjectName("DialogSubline")
        self.reason_label = QLabel()  # why it is in that state, whole, on a row of its own
        self.reason_label.setObjectName("DialogSubline")
        self.reason_label.setWordWrap(True)
        self.reason_label.setTextFormat(Qt.TextFormat.PlainText)
        self.reason_label.setVisible(False)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("JobProgress")
        self.pace_label = QLabel()
        self.pace_label.setObjectName("JobPace")
        self.pace_label.setWordWrap(True)
        self.pause_note = QLabel()  # why it paused by itself: said, not only in the state
        self.pause_note.setObjectName("ValidationWarn")
        self.pause_note.setWordWrap(True)
        self.pause_note.setTextFormat(Qt.TextFormat.PlainText)
        self.pause_note.setVisible(False)
        self.outcome_label = QLabel("no outcomes yet")
        self.outcome_label.setObjectName("JobOutcomes")
        self.outcome_label.setWordWrap(True)
        self.tiles: dict[Outcome, _OutcomeTile] = {}
        self._tile_row = QHBoxLayout()
        self._tile_row.setSpacing(8)
        for outcome in TILES:
            self._add_tile(outcome)
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel job")
        self.cancel_button.setObjectName("DangerAction")
        self.buttons = {
            "pause": self.pause_button,
            "resume": self.resume_button,
            "cancel": self.cancel_button,
        }
        tips = {
            "pause": "Stop sending after the entries in flight; Resume goes on (any console)",
            "resume": "Go on sending the job's selection (here, when its process is gone)",
            "cancel": "Send nothing more; what was sent keeps its outcome",
        }
        button_row = QHBoxLayout()
        button_row.setSpacing(6)
        for verb, button in self.buttons.items():
            button.setAutoDefault(False)
            button.setEnabled(False)
            button.setToolTip(tips[verb])
            button.clicked.connect(lambda _=False, v=verb: self.on_button_clicked(v))
            button_row.addWidget(button)
        button_row.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 8, 0, 0)
        column.setSpacing(6)
        head = QHBoxLayout()
        head.addWidget(self.title_label)
        head.addStretch(1)
        head.addWidget(self.state_label)
        column.addLayout(head)
        column.addWidget(self.reason_label)
        column.addWidget(self.progress_label)
        column.addWidget(self.pace_label)
        column.addWidget(self.pause_note)
        column.addLayout(self._tile_row)
        column.addWidget(self.outcome_label)
        column.addLayout(button_row)

    def _add_tile(self, outcome: Outcome) -> None:
        tile = _OutcomeTile(outcome)
        self.tiles[outcome] = tile
        order = [o for o in OUTCOME_ORDER if o in self.tiles]
        self._tile_row.insertWidget(order.index(outcome), tile, 1)

    @Slot(object)
    def show_status(self, status: JobStatus) -> None:
        """Show the job as it is now (the counters move, the buttons follow its state)."""
        self.status = status
        for outcome in OUTCOME_ORDER:
            if outcome not in self.tiles and status.count(outcome):
                self._add_tile(outcome)
        for outcome, tile in self.tiles.items():
            tile.set_count(status.count(outcome))
        self.outcome_label.setText(status.outcome_line())
        # The header says the state only (how many were selected: "Sent 40 of 200"); why,
        # on its own row (paused by itself: said whole under the pace).
        self.state_label.setText("paused by itself" if status.paused_by_itself else status.state)
        why = [mask_text(status.reason)] if status.reason and not status.paused_by_itself else []
        if status.state in ("running", "paused") and not status.runner_alive:
            why.append("its process is gone: Resume runs the rest here")
        self.reason_label.setText(" · ".join(why))
        self.reason_label.setVisible(bool(why))
        self.progress_label.setText(status.progress_line())
        self.pace_label.setText(status.pace_line())
        self.pace_label.setVisible(status.paced)
        self.pause_note.setText(
            f"Paused by itself: {mask_text(status.reason)}. Resume sends the rest anyway;"
            " Cancel job sends nothing more."
            if status.paused_by_itself
            else ""
        )
        self.pause_note.setVisible(status.paused_by_itself)
        for verb, button in self.buttons.items():
            button.setEnabled(status.state in STEERABLE[verb])

    def on_button_clicked(self, verb: str) -> None:
        for button in self.buttons.values():  # until the next status says what it is now
            button.setEnabled(False)
        self.control_requested.emit(verb)
