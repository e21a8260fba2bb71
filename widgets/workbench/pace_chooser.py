"""The pace of a bulk requeue or retry, chosen in its confirmation dialog: full speed (the
default), a rate (``50/s``, ``600/min``), a canary sent and judged first, and the share
of payments failing again above which the job pauses by itself.

The operator's words are read by the same parsing as the CLI's ``--rate``, ``--canary``
and ``--max-failed-pct`` (:mod:`services.workbench.actions.pace`); :meth:`PaceChooser.problem`
says in plain words what does not fit. Keyboard: Alt+L limits the rate, Alt+F sends a
canary first; Tab walks the fields.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from services.workbench.actions.pace import (
    DEFAULT_MAX_FAILED_PCT,
    Pace,
    pace_of,
    pace_problem,
    parse_rate,
)

DEFAULT_RATE_TEXT: Final = "50/s"
DEFAULT_CANARY: Final = 20
MAX_CANARY: Final = 100_000


class PaceChooser(QWidget):
    """Full speed unless the operator limits the rate or sends a canary first (see the
    module docstring). ``changed`` fires on every edit; :meth:`pace` is the choice."""

    changed = Signal()

    def __init__(self, selected: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PaceChooser")
        self.selected = selected
        self.rate_check = QCheckBox("&Limit the rate to")
        self.rate_check.setObjectName("RateCheck")
        self.rate_edit = QLineEdit(DEFAULT_RATE_TEXT)
        self.rate_edit.setObjectName("RateEdit")
        self.rate_edit.setPlaceholderText("50/s or 600/min")
        self.rate_edit.setToolTip("Entries a second (50/s) or a minute (600/min)")
        self.rate_edit.setMaximumWidth(120)
        self.rate_hint = QLabel()
        self.rate_hint.setObjectName("DialogSubline")
        self.canary_check = QCheckBox("Send a canary &first:")
        self.canary_check.setObjectName("CanaryCheck")
        self.canary_spin = QSpinBox()
        self.canary_spin.setObjectName("CanarySpin")
        self.canary_spin.setRange(1, MAX_CANARY)
        self.canary_spin.setValue(max(1, min(DEFAULT_CANARY, selected // 10 or 1)))
        self.canary_spin.setSuffix(" payments")
        self.canary_spin.setMaximumWidth(140)
        self.canary_hint = QLabel("their outcomes judged before the rest go")
        self.canary_hint.setObjectName("DialogSubline")
        self.max_failed_caption = QLabel("Pause by itself above")
        self.max_failed_spin = QSpinBox()
        self.max_failed_spin.setObjectName("MaxFailedSpin")
        self.max_failed_spin.setRange(0, 100)
        self.max_failed_spin.setValue(round(DEFAULT_MAX_FAILED_PCT))
        self.max_failed_spin.setSuffix(" %")
        self.max_failed_spin.setMaximumWidth(90)
        self.max_failed_spin.setToolTip(
            "The canary, and later the whole job, pauses when more than this share of the"
            " replayed payments failed again; a critical alert pauses it too"
        )
        self.max_failed_caption.setBuddy(self.max_failed_spin)
        self.max_failed_hint = QLabel("failed again, or on a critical alert")
        for hint in (self.rate_hint, self.canary_hint, self.max_failed_hint):
            hint.setWordWrap(True)
        self.max_failed_hint.setObjectName("DialogSubline")

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        grid.addWidget(self.rate_check, 0, 0)
        grid.addWidget(self.rate_edit, 0, 1)
        grid.addWidget(self.rate_hint, 0, 2)
        grid.addWidget(self.canary_check, 1, 0)
        grid.addWidget(self.canary_spin, 1, 1)
        grid.addWidget(self.canary_hint, 1, 2)
        grid.addWidget(self.max_failed_caption, 2, 0)
        grid.addWidget(self.max_failed_spin, 2, 1)
        grid.addWidget(self.max_failed_hint, 2, 2)
        grid.setColumnStretch(2, 1)
        self.rate_check.toggled.connect(self.on_choice_toggled)
        self.canary_check.toggled.connect(self.on_choice_toggled)
        self.rate_edit.textChanged.connect(self._refresh)
        self.canary_spin.valueChanged.connect(self._refresh)
        self.max_failed_spin.valueChanged.connect(self._refresh)
        self._refresh()

    # -- state ---------------------------------------------------------------------------

    @property
    def paced(self) -> bool:
        """Whether anything but full speed is chosen."""
        return self.rate_check.isChecked() or self.canary_check.isChecked()

    def rate_problem(self) -> str | None:
        if not self.rate_check.isChecked():
            return None
        try:
            parse_rate(self.rate_edit.text())
        except ValueError as exc:
            return f"Rate: {exc}"
        return None

    def problem(self) -> str | None:
        """Why the pace cannot be used (None when it can)."""
        problem = self.rate_problem()
        if problem is not None:
            return problem
        return pace_problem(self.pace(), self.selected)

    def pace(self) -> Pace | None:
        """The chosen pace (None: full speed, or a rate that does not parse yet)."""
        if self.rate_problem() is not None:
            return None
        rate = parse_rate(self.rate_edit.text()) if self.rate_check.isChecked() else None
        canary = self.canary_spin.value() if self.canary_check.isChecked() else 0
        return pace_of(rate, canary, float(self.max_failed_spin.value()))

    def describe(self) -> str:
        """``at 50/s, canary 20, pauses above 20 % failed again`` (``at full speed``)."""
        pace = self.pace()
        return "at full speed" if pace is None else f"at {pace.describe()}"

    # -- slots ---------------------------------------------------------------------------

    @Slot(bool)
    def on_choice_toggled(self, checked: bool) -> None:
        self._refresh()  # enabled first: a disabled field takes no focus
        sender = self.sender()
        if checked and sender is self.rate_check:
            self.rate_edit.setFocus()
            self.rate_edit.selectAll()
        elif checked and sender is self.canary_check:
            self.canary_spin.setFocus()
            self.canary_spin.selectAll()

    def _refresh(self) -> None:
        self.rate_edit.setEnabled(self.rate_check.isChecked())
        self.canary_spin.setEnabled(self.canary_check.isChecked())
        for widget in (self.max_failed_caption, self.max_failed_spin, self.max_failed_hint):
            widget.setEnabled(self.paced)
        pace = self.pace()
        if not self.rate_check.isChecked():
            self.rate_hint.setText("full speed" if not self.paced else "full speed after it")
        elif pace is not None and pace.rate > 0:
            seconds = max(self.selected - pace.canary, 0) / pace.rate
            minutes = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
            self.rate_hint.setText(f"{pace.rate:g}/s: all {self.selected:,} in about {minutes}")
        else:
            self.rate_hint.setText("50/s or 600/min")
        self.changed.emit()
