"""The dialog that shows an action on many entries under way, with a Cancel button."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from services.workbench.actions.names import Action
from services.workbench.actions.report import plural
from widgets.common.theme import repolish
from widgets.workbench.job_panel import JobPanel, JobStatus, grow_to_fit


def format_duration(seconds: float) -> str:
    """``0:07``, ``12:03``, ``1:02:03``."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(rate: float | None) -> str:
    """``412/s``, ``3.5/s``, ``—`` when unknown."""
    if rate is None:
        return "—"
    return f"{rate:,.0f}/s" if rate >= 10 else f"{rate:.1f}/s"


class ActionProgressDialog(QDialog):
    """Bulk work under way: done / total, failed, rate, elapsed, ETA, and Cancel.

    ``show_progress(done, total, failed)``: ``done`` counts every entry
    handled so far (whatever its outcome, skipped ones too: ``total`` is the whole
    target, ``skipped`` of it not parked), ``failed`` those among them that failed.
    Cancel (or Esc, or closing the window) emits ``cancel_requested``
    once; the app stops after the entry in flight and calls :meth:`finish`.

    A paced job gets its :class:`~widgets.workbench.job_panel.JobPanel` while it runs
    (:meth:`attach_job`): sent / selected, its pace and canary, its outcome counters,
    why it paused by itself, and Pause / Resume / Cancel job
    (``job_control_requested(job id, verb)``); the dialog's own button then says
    *Stop here* (the job stops, resumable).
    """

    cancel_requested = Signal()
    job_control_requested = Signal(str, str)
    RATE_WINDOW_S: ClassVar[float] = 5.0

    def __init__(
        self,
        action: str,
        total: int,
        parent: QWidget | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        skipped: int = 0,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ActionProgressDialog")
        self.action = Action(action)
        self._clock = clock
        self._started = clock()
        self._samples: deque[tuple[float, int]] = deque([(self._started, 0)])
        self._done = 0
        self._total = max(total, 0)
        self._failed = 0
        self._job_state = ""
        self._cancelling = False
        self._finished = False
        verb = self.action.ongoing
        self.setWindowTitle(f"{verb} failed payments")
        self.setModal(True)

        # ``total`` is every entry of the target, the skipped ones too: the progress counts
        # them as handled, so the headline says both numbers rather than one that the
        # counter then overtakes ("Requeuing 893 …" over "894 / 894").
        skipped = min(max(skipped, 0), self._total)
        headline = f"{verb} {plural(self._total - skipped, 'failed payment')}…"
        if skipped:
            headline += f" ({skipped:,} of the {self._total:,} selected skipped: not parked)"
        self.title_label = QLabel(headline)
        self.title_label.setObjectName("DialogHeadline")
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.counts_label = QLabel()
        self.counts_label.setObjectName("StatValue")
        self.failed_label = QLabel()
        self.failed_label.setObjectName("StatValue")
        self.rate_label = QLabel()
        self.elapsed_label = QLabel()
        self.eta_label = QLabel()
        self.stopping_label = QLabel("Stopping after the payment in flight…")
        self.stopping_label.setObjectName("StoppingNote")
        self.stopping_label.setVisible(False)
        self.job_panel: JobPanel | None = None

        stats = QHBoxLayout()
        stats.setSpacing(18)
        for caption, label in (
            ("DONE", self.counts_label),
            ("FAILED", self.failed_label),
            ("RATE", self.rate_label),
            ("ELAPSED", self.elapsed_label),
            ("ETA", self.eta_label),
        ):
            label.setObjectName("StatValue")
            cell = QVBoxLayout()
            cell.setSpacing(0)
            title = QLabel(caption)
            title.setObjectName("StatCaption")
            cell.addWidget(title)
            cell.addWidget(label)
            stats.addLayout(cell)
        stats.addStretch(1)

        self.buttons = QDialogButtonBox()
        self.cancel_button = self.buttons.addButton(
            "Stop cancelling" if self.action is Action.CANCEL else "Cancel",
            QDialogButtonBox.ButtonRole.RejectRole,
        )
        self.cancel_button.setToolTip("Stop after the payment in flight; the rest stay parked")
        column = QVBoxLayout(self)
        column.setContentsMargins(18, 16, 18, 14)
        column.setSpacing(10)
        column.addWidget(self.title_label)
        column.addWidget(self.progress_bar)
        column.addLayout(stats)
        column.addWidget(self.stopping_label)
        self._column = column
        column.addWidget(self.buttons)

        self._tick = QTimer(self)
        self._tick.setInterval(500)
        self._tick.timeout.connect(self._render)
        self._tick.start()
        self.cancel_button.clicked.connect(self.request_cancel)
        self.setMinimumWidth(480)
        self._render()

    def attach_job(self, job_id: str) -> JobPanel:
        """Follow the action's job live here (a paced job: it may run for long, and pause)."""
        if self.job_panel is None:
            self.job_panel = JobPanel(job_id, self)
            self.job_panel.control_requested.connect(
                lambda verb: self.job_control_requested.emit(job_id, verb)
            )
            self._column.insertWidget(self._column.indexOf(self.buttons), self.job_panel)
            self.cancel_button.setText("Stop here")
            self.cancel_button.setToolTip(
                "Stop this console's run after the payment in flight; the job stays"
                " resumable (Cancel job ends it for good)"
            )
            self.setMinimumWidth(680)
            self.job_panel.show()  # now, not on the next turn: the dialog grows to hold it
            self.adjustSize()
        return self.job_panel

    @Slot(object)
    def show_job(self, status: JobStatus) -> None:
        """The job's progress, pace and outcomes as they are now (the app polls them)."""
        if self.job_panel is not None and status.job_id == self.job_panel.job_id:
            self.job_panel.show_status(status)
            grow_to_fit(self)
            self._job_state = status.state
            if status.sent > self._done:  # counted by a runner elsewhere (resumed there)
                self.show_progress(status.sent, self._total, self._failed)
            else:
                self._render()

    @property
    def cancelling(self) -> bool:
        """Whether the operator asked to stop."""
        return self._cancelling

    @Slot(int, int, int)
    def show_progress(self, done: int, total: int, failed: int) -> None:
        """Show how far the action is."""
        now = self._clock()
        self._done = max(done, self._done if self.job_panel is not None else 0, 0)
        self._total = max(total, self._done)
        self._failed = max(failed, 0)
        self._samples.append((now, self._done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.RATE_WINDOW_S:
            self._samples.popleft()
        self._render()

    @Slot()
    def request_cancel(self) -> None:
        """Ask the app to stop after the entry in flight (once)."""
        if self._cancelling or self._finished:
            return
        self._cancelling = True
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Stopping…")
        self.stopping_label.setVisible(True)
        self.cancel_requested.emit()

    @Slot()
    def finish(self) -> None:
        """The action is over: close."""
        self._finished = True
        self._tick.stop()
        self.accept()

    def rate(self) -> float | None:
        """Entries per second over the last few seconds (None before there is any)."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 <= 0 or d1 <= d0:
            return None
        return (d1 - d0) / (t1 - t0)

    def eta_s(self) -> float | None:
        rate = self.rate()
        if rate is None or rate <= 0:
            return None
        return max(self._total - self._done, 0) / rate

    def _render(self) -> None:
        total = max(self._total, 1)
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(min(self._done, total))
        self.progress_bar.setFormat(f"{self._done:,} / {self._total:,}")
        self.counts_label.setText(f"{self._done:,} / {self._total:,}")
        self.failed_label.setText(f"{self._failed:,}")
        if self.failed_label.property("failed") != bool(self._failed):
            self.failed_label.setProperty("failed", bool(self._failed))  # red: style.qss
            repolish(self.failed_label)
        rate = self.rate()
        self.rate_label.setText(format_rate(rate))
        self.elapsed_label.setText(format_duration(self._clock() - self._started))
        eta = self.eta_s()
        if self._job_state == "paused":
            self.eta_label.setText("paused")
        else:
            self.eta_label.setText("—" if eta is None else format_duration(eta))

    def reject(self) -> None:
        """Esc and the close button ask to stop; the dialog closes when the work has."""
        if self._finished:
            super().reject()
        else:
            self.request_cancel()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._finished:
            super().closeEvent(event)
        else:
            event.ignore()
            self.request_cancel()
