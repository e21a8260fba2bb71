"""Drives the live view: runs the live flow and pushes frames to the window on a timer."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer, Slot

from app.controllers.alerts import AlertsController
from app.controllers.history import HistoryController
from services.alerts.model import Alert, AlertEvent
from services.config import Profile
from services.flow.live_flow import LiveFlow
from services.flow.protocol import HISTORY_CAPACITY_S
from services.flow.recorder import RecorderState
from services.stopping import bounded
from widgets.main_window import MainWindow

FRAME_HZ = 15
FLOW_STOP_TIMEOUT_S = 15.0
"""The live flow stops its process (terminate, then kill after a grace) and closes both
connections; longer than that and the console closes without it."""


class LiveController(QObject):
    """Owns the live flow of one profile; renders frames at ``FRAME_HZ``.

    Per-message work happens in the live flow's own process. The plots get
    one frame a second, of finished seconds only (a still-filling second would
    look like a dip); the headline counters follow every change at ``FRAME_HZ``.
    ``alerts`` shows what the flow's alert engine reports; ``history`` plots
    the stored history before the live seconds and answers scrolling back.
    ``record=False`` keeps this console from writing history (benchmarks).

    Nothing is rendered that nobody can see: while the window is hidden or
    minimised the timer only ticks, while another page is shown only the
    counters follow; the moment the window is restored or the live page shown
    again, the current frame is rendered.
    """

    def __init__(
        self,
        window: MainWindow,
        profile: Profile,
        window_seconds: int = 300,
        *,
        hold_consume: bool = False,
        record: bool = True,
    ) -> None:
        super().__init__(window)
        self._window = window
        self.profile = profile
        self.flow = LiveFlow(
            profile,
            on_status=window.show_link_status,
            on_problem=window.show_problem,
            on_resolved=window.resolve_problem,
            hold_consume=hold_consume,
            capacity_s=HISTORY_CAPACITY_S,
            on_alerts=self._on_alerts,
            on_recorder=self._on_recorder,
            record=record,
        )
        # The live flow's counters: a mirror of the aggregator in its process.
        self.aggregator = self.flow.aggregator
        window.set_history_retention(profile.history_retention_s)
        self.alerts = AlertsController(window, profile, self.flow.redis)
        self.history = HistoryController(
            window, profile, self.flow.redis, self.aggregator, HISTORY_CAPACITY_S
        )
        self._window_seconds = window_seconds
        self._plotted: tuple[int, int, bool] | None = None
        self._counted = -1
        # The failed payments parked in the workbench (None: unknown), for the headline.
        self.parked: Callable[[], int | None] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // FRAME_HZ)
        self._timer.timeout.connect(self.on_frame_timer)
        window.installEventFilter(self)
        window.flow_plots.installEventFilter(self)

    @property
    def window_seconds(self) -> int:
        return self._window_seconds

    @Slot(int)
    def on_window_selected(self, seconds: int) -> None:
        """The operator picked another time window: render it at the next tick."""
        self._window_seconds = seconds
        self._plotted = None

    def _on_alerts(self, active: list[Alert], events: list[AlertEvent]) -> None:
        self.alerts.on_alerts(active, events)

    def _on_recorder(self, state: RecorderState) -> None:
        detail = (
            "Only the holder of the history lease in Redis writes the flow history and"
            " the alert log; the other consoles and collectors stand by."
        )
        if state.writer_id:
            detail += f"\nThis console: {state.writer_id}"
        self._window.show_recorder_state(state.describe(), detail)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Render at once when the window is restored or shown, or the live page shown."""
        kind = event.type()
        if kind in (QEvent.Type.Show, QEvent.Type.WindowStateChange) and self._timer.isActive():
            window = self._window
            if window.isVisible() and not window.isMinimized():
                self._plotted = None
                self._counted = -1
                self.on_frame_timer()
        return super().eventFilter(watched, event)

    @Slot()
    def on_frame_timer(self) -> None:
        """Counters when data changed; plots once a second (finished seconds only)."""
        window = self._window
        if not window.isVisible() or window.isMinimized():
            return  # nobody sees it: the next show renders at once (``eventFilter``)
        plots_shown = window.flow_plots.isVisible()  # else another page: counters only
        plot_key = (int(time.time()), self._window_seconds, plots_shown)
        if plot_key != self._plotted:
            self._plotted = plot_key
            self._counted = self.aggregator.version
            if plots_shown:
                frame = self.aggregator.frame(self._window_seconds)
                window.show_frame(frame.finished())
            else:
                window.show_headline(self.aggregator.headline())
            self._show_parked()
        elif self.aggregator.version != self._counted:
            self._counted = self.aggregator.version
            self._window.show_headline(self.aggregator.headline())

    def _show_parked(self) -> None:
        if self.parked is None:
            self._window.show_parked(None, "no workbench in this console")
            return
        count = self.parked()
        self._window.show_parked(count, "" if count is not None else "workbench list not read")

    async def start(self) -> None:
        """Connect (in the background) and start rendering."""
        await self.flow.start()
        self.history.start()
        self.alerts.start()
        self._timer.start()
        self.on_frame_timer()

    async def stop(self) -> None:
        """Stop rendering and close every connection."""
        self._timer.stop()
        await self.alerts.stop()
        await self.history.stop()
        await bounded(self.flow.stop(), "stopping the live flow", FLOW_STOP_TIMEOUT_S)
