"""Reconnect with back-off: how long to wait before the next attempt, and the wait itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Final

DEFAULT_BACKOFF_S: Final[tuple[float, ...]] = (0.5, 1, 2, 5, 10)


class Backoff:
    """The delays between attempts: the n-th failure in a row waits ``delays[n]``.

    The last delay repeats once the list is used up; ``reset()`` (after a
    success, or a session that lasted) starts again from the first.
    """

    def __init__(self, delays: Sequence[float] = DEFAULT_BACKOFF_S) -> None:
        if not delays:
            raise ValueError("backoff needs at least one delay")
        self.delays = tuple(float(d) for d in delays)
        self._failures = 0

    def next_delay(self) -> float:
        """Count one more failure; how long to wait before the next attempt."""
        delay = self.delays[min(self._failures, len(self.delays) - 1)]
        self._failures += 1
        return delay

    def reset(self) -> None:
        """The next failure waits the first delay again."""
        self._failures = 0


async def pause(delay: float, stop: asyncio.Event) -> None:
    """Wait ``delay`` seconds, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
