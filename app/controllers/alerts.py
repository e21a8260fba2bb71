"""Alerts on screen: the banner, the marks on the plots, notifications and the alert log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from PySide6.QtCore import QObject, QTimer, Slot
from redis.exceptions import RedisError

from services.alerts.log import AlertLog
from services.alerts.model import Alert, AlertEvent
from services.alerts.timeline import alert_marks, incident_window, merged_events
from services.config import Profile
from services.links.redis import RedisLink, describe_redis_error
from services.links.urls import url_password
from services.stopping import stop_tasks
from widgets.main_window import MainWindow

log = logging.getLogger(__name__)

LOG_SPAN_S = 24 * 3600
LOG_ROWS = 2000
LOG_REFRESH_MS = 15_000
LOCAL_EVENTS = 1000
FIRST_READ_RETRY_MS = 1000


class AlertsController(QObject):
    """Shows what the live flow's alert engine reports, and the shared alert log.

    ``on_alerts`` (from the live flow, about once a second when something
    changed) updates the banner and the marks at once and notifies on every
    new firing. The alert log (Redis, written by the history-lease holder) is
    read at start, every 15 s, after each transition and on the page's
    Refresh; transitions this console saw are merged in, so marks and the
    incident window work while Redis is down or another console records.
    """

    def __init__(self, window: MainWindow, profile: Profile, redis: RedisLink) -> None:
        super().__init__(window)
        self._window = window
        self._profile = profile
        self._redis = redis
        self._active: list[Alert] = []
        self._local: deque[AlertEvent] = deque(maxlen=LOCAL_EVENTS)
        self._logged: list[AlertEvent] = []  # oldest first
        self._refresh: asyncio.Task[None] | None = None
        self._read_once = False  # the log was read at least once (else retried soon)
        self._timer = QTimer(self)
        self._timer.setInterval(LOG_REFRESH_MS)
        self._timer.timeout.connect(self.refresh_log)
        self._retry = QTimer(self)  # the first read, while Redis is not up yet
        self._retry.setSingleShot(True)
        self._retry.setInterval(FIRST_READ_RETRY_MS)
        self._retry.timeout.connect(self.refresh_log)
        self._stopped = False
        window.alerts_refresh_requested.connect(self.refresh_log)

    @property
    def active(self) -> list[Alert]:
        """The alerts firing now, as last reported."""
        return list(self._active)

    def events(self) -> list[AlertEvent]:
        """Every transition known here (the log and this console's), oldest first."""
        return merged_events(self._logged, self._local)

    def incident_range(self, now: float | None = None) -> tuple[float, float] | None:
        """The latest incident's time range in epoch seconds (for the snapshot dialog)."""
        window = incident_window(self.events(), now)
        if window is None:
            return None
        return window[0] / 1000.0, window[1] / 1000.0

    def start(self) -> None:
        """Read the log now and every 15 s."""
        self._timer.start()
        self.refresh_log()

    async def stop(self) -> None:
        """Stop refreshing."""
        self._stopped = True
        self._timer.stop()
        self._retry.stop()
        self._window.alerts_refresh_requested.disconnect(self.refresh_log)
        task, self._refresh = self._refresh, None
        if task is not None:
            await stop_tasks([task], "alerts")

    def on_alerts(self, active: list[Alert], events: list[AlertEvent]) -> None:
        """The engine's latest active alerts and the transitions since its last report."""
        self._active = list(active)
        self._window.show_alerts(active)
        for event in events:
            self._local.append(event)
            if event.kind == "firing":
                title = f"PayOps {event.severity}: {event.rule}"
                self._window.notifier.notify(title, event.message, event.severity == "critical")
        self._show_marks()
        if events:
            self._window.show_alert_log(self.events()[::-1])
            self.refresh_log()

    @Slot()
    def refresh_log(self) -> None:
        """Read the alert log again (unless a read is under way, or the controller stopped)."""
        if self._stopped:
            return
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.ensure_future(self._read_log())

    async def _read_log(self) -> None:
        client = self._redis.client
        read = False
        settings = self._profile.redis_settings
        status = self._redis.status
        detail = status.detail or "not connected"
        why: str | None = (
            detail if settings.target in detail else f"Redis at {settings.target}: {detail}"
        )
        if client is not None:
            since_ms = round((time.time() - LOG_SPAN_S) * 1000)
            try:
                newest_first = await AlertLog(client, self._profile.redis_prefix).read_range(
                    since_ms, count=LOG_ROWS
                )
            except (RedisError, OSError) as exc:
                log.info("the alert log cannot be read: %s", exc)
                why = describe_redis_error(
                    exc, f"Redis at {settings.target}", url_password(settings.url), settings.tls
                )
            else:
                self._logged = list(reversed(newest_first))
                read = self._read_once = True
                why = None
        self._window.alerts_panel.set_log_unavailable(why)  # not "No alerts recorded"
        if not read and not self._read_once and not self._stopped:
            self._retry.start()  # Redis is not up yet
        self._window.show_alert_log(self.events()[::-1])
        self._show_marks()

    def _show_marks(self) -> None:
        since = time.time() - LOG_SPAN_S  # the plots can scroll back a day
        self._window.show_alert_marks(alert_marks(self.events(), self._active, since))
