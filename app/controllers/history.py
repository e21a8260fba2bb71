"""Flow history on screen: recent history under the live plots, and scrolling back."""

from __future__ import annotations

import asyncio
import logging
import time

from PySide6.QtCore import QObject, Slot
from redis.exceptions import RedisError

from services.config import Profile
from services.flow.history import HistoryStore
from services.flow.mirror import FlowMirror
from services.links.redis import RedisLink
from services.stopping import stop_tasks
from widgets.main_window import MainWindow

log = logging.getLogger(__name__)

SEED_RETRY_S = 1.0


class HistoryController(QObject):
    """Reads the flow history from Redis for the window.

    At start it fills the live mirror with the stored seconds of the last
    ``seed_s`` (the console opens with recent history plotted, not an empty
    chart), as soon as Redis answers. ``history_requested(from, to)`` from the
    plots (◀ / ▶) is answered with ``show_history_frame``; a newer request
    supersedes one still loading.
    """

    def __init__(
        self,
        window: MainWindow,
        profile: Profile,
        redis: RedisLink,
        mirror: FlowMirror,
        seed_s: int,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._profile = profile
        self._redis = redis
        self._mirror = mirror
        self._seed_s = seed_s
        self._seeder: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self.seeded_seconds: int | None = None  # None until the seed was read
        window.history_requested.connect(self.on_history_requested)

    def store(self) -> HistoryStore | None:
        """The history store on the current Redis client, or None while Redis is down."""
        client = self._redis.client
        if client is None:
            return None
        profile = self._profile
        return HistoryStore.for_profile(client, profile)

    def start(self) -> None:
        """Seed the live plots in the background (once Redis answers)."""
        if self._seeder is None:
            self._seeder = asyncio.ensure_future(self._seed())

    async def stop(self) -> None:
        """Stop any read in progress."""
        self._window.history_requested.disconnect(self.on_history_requested)
        tasks = [task for task in (self._seeder, self._reader) if task is not None]
        self._seeder = self._reader = None
        await stop_tasks(tasks, "history")

    async def _seed(self) -> None:
        while True:
            store = self.store()
            if store is not None:
                now = int(time.time())
                try:
                    frame = await store.read_range(now - self._seed_s, now)
                except (RedisError, OSError) as exc:
                    log.info("flow history not readable yet: %s", exc)
                else:
                    self.seeded_seconds = self._mirror.seed(frame)
                    log.info("plotted %s s of stored flow history", self.seeded_seconds)
                    return
            await asyncio.sleep(SEED_RETRY_S)

    @Slot(float, float)
    def on_history_requested(self, from_s: float, to_s: float) -> None:
        """Read ``[from_s, to_s)`` and show it (the latest request wins)."""
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        self._reader = asyncio.ensure_future(self._read(int(from_s), int(to_s)))

    async def _read(self, from_s: int, to_s: int) -> None:
        window = self._window
        store = self.store()
        if store is None:
            window.history_unavailable("Redis is not connected: the history cannot be read")
            return
        retention_start = int(time.time()) - store.retention_s
        if to_s <= retention_start:
            window.history_unavailable(
                f"history is kept for {self._profile.history_retention_h:g} h only"
            )
            return
        window.history_loading(True)
        try:
            frame = await store.read_range(from_s, to_s)  # expired seconds read as empty
        except (RedisError, OSError) as exc:
            window.history_loading(False)
            window.history_unavailable(f"the history cannot be read: {exc}")
            return
        except asyncio.CancelledError:
            window.history_loading(False)
            raise
        window.history_loading(False)
        window.show_history_frame(frame)
