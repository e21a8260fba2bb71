"""The parent's copies of the child's state: its aggregator (``FlowMirror``) and its tap."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import numpy.typing as npt

from services.flow.protocol import HISTORY_CAPACITY_S, TapState
from services.flow.types import LATENCY_PERCENTILES, FlowFrame, Headline

FloatArray = npt.NDArray[np.float64]


class FlowMirror:
    """The parent's copy of the child's aggregator, fed with the columns it sends.

    It answers what the frame timer asks of a ``FlowAggregator``: ``frame``,
    ``headline``, ``totals_by_status`` and ``version`` (which increases with
    every update applied). Frames end at the latest second the child reported.
    Status and queue rows only ever grow in the child, in the same order, so
    rows here keep their meaning.
    """

    def __init__(self, capacity_s: int = HISTORY_CAPACITY_S) -> None:
        self.version = 0
        self._cap = capacity_s
        self._ring_sec = np.full(capacity_s, -1, dtype=np.int64)
        self._counts = np.zeros((0, capacity_s), dtype=np.float64)
        self._dead = np.zeros(capacity_s, dtype=np.float64)
        self._latency = np.full((len(LATENCY_PERCENTILES), capacity_s), np.nan)
        self._depths = np.full((0, capacity_s), np.nan)
        self._status_names: tuple[str, ...] = ()
        self._queue_names: tuple[str, ...] = ()
        self._latest_sec: int | None = None
        self._headline = Headline(0.0, None, None, None, 0, 0)
        self._totals: dict[str, int] = {}

    def apply(self, frame: FlowFrame, totals: dict[str, int]) -> None:
        """Write the seconds of ``frame`` (the child's latest) over the mirror."""
        secs = frame.t.astype(np.int64)
        if secs.size == 0:
            return
        self._status_names = _merged(self._status_names, frame.status_names)
        self._counts = _grown(self._counts, len(self._status_names), 0.0)
        self._queue_names = _merged(self._queue_names, frame.queue_names)
        self._depths = _grown(self._depths, len(self._queue_names), np.nan)
        slots = secs % self._cap
        self._ring_sec[slots] = secs
        self._counts[:, slots] = 0.0
        self._counts[_row_index(frame.status_names, self._status_names)[:, None], slots] = (
            frame.status_counts
        )
        self._dead[slots] = frame.dead_letters
        self._latency[:, slots] = frame.latency_ms
        self._depths[:, slots] = np.nan
        self._depths[_row_index(frame.queue_names, self._queue_names)[:, None], slots] = (
            frame.queue_depths
        )
        self._latest_sec = int(secs[-1])
        self._headline = frame.headline
        self._totals = totals
        self.version += 1

    def seed(self, frame: FlowFrame) -> int:
        """Fill the seconds of ``frame`` (flow history) that the mirror does not hold yet.

        Seconds the child already reported are kept (they are live and exact);
        the latest second, the headline and the totals stay as they are, so a
        console opens with its recent history plotted. Returns the number of
        seconds filled.
        """
        secs = frame.t.astype(np.int64)
        if secs.size == 0:
            return 0
        if self._latest_sec is not None:
            keep = (secs > self._latest_sec - self._cap) & (secs <= self._latest_sec)
        else:
            now = int(time.time())
            keep = (secs > now - self._cap) & (secs <= now)
        slots_all = secs % self._cap
        keep &= self._ring_sec[slots_all] != secs
        keep &= ~np.isnan(frame.dead_letters)  # seconds nobody recorded stay gaps
        if not keep.any():
            return 0
        self._status_names = _merged(self._status_names, frame.status_names)
        self._counts = _grown(self._counts, len(self._status_names), 0.0)
        self._queue_names = _merged(self._queue_names, frame.queue_names)
        self._depths = _grown(self._depths, len(self._queue_names), np.nan)
        slots = slots_all[keep]
        self._ring_sec[slots] = secs[keep]
        self._counts[:, slots] = 0.0
        self._counts[_row_index(frame.status_names, self._status_names)[:, None], slots] = (
            frame.status_counts[:, keep]
        )
        self._dead[slots] = frame.dead_letters[keep]
        self._latency[:, slots] = frame.latency_ms[:, keep]
        self._depths[:, slots] = np.nan
        self._depths[_row_index(frame.queue_names, self._queue_names)[:, None], slots] = (
            frame.queue_depths[:, keep]
        )
        self.version += 1
        return int(keep.sum())

    def totals_by_status(self) -> dict[str, int]:
        """The child's exact cumulative event counts by status, as of its last update."""
        return dict(self._totals)

    def headline(self) -> Headline:
        """The headline counters of the child's last update."""
        return self._headline

    def frame(self, window_s: int) -> FlowFrame:
        """The last ``window_s`` seconds up to the child's latest, oldest first."""
        n = max(1, min(int(window_s), self._cap))
        cur = self._latest_sec if self._latest_sec is not None else int(time.time())
        secs = np.arange(cur - n + 1, cur + 1, dtype=np.int64)
        slots = secs % self._cap
        stale = self._ring_sec[slots] != secs
        n_status, n_queue = len(self._status_names), len(self._queue_names)
        # Seconds neither the child reported nor the history held: gaps, not zero traffic.
        counts = self._counts[:n_status, slots]
        counts[:, stale] = np.nan
        dead = self._dead[slots]
        dead[stale] = np.nan
        latency = self._latency[:, slots]
        latency[:, stale] = np.nan
        depths = self._depths[:n_queue, slots]
        depths[:, stale] = np.nan
        return FlowFrame(
            t=secs.astype(np.float64),
            status_names=self._status_names,
            status_counts=counts,
            dead_letters=dead,
            latency_ms=latency,
            queue_names=self._queue_names,
            queue_depths=depths,
            headline=self._headline,
        )


def _merged(known: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    """``known`` with the names in ``names`` it lacks appended.

    The child only appends names, so its list normally extends ours; after a
    restart of the child the order may differ, so rows are matched by name.
    """
    if names[: len(known)] == known:
        return names if len(names) > len(known) else known
    seen = set(known)
    return (*known, *(name for name in names if name not in seen))


def _row_index(names: tuple[str, ...], known: tuple[str, ...]) -> npt.NDArray[np.intp]:
    """The mirror's row of each of ``names`` (all in ``known``)."""
    if names == known[: len(names)]:
        return np.arange(len(names), dtype=np.intp)
    position = {name: row for row, name in enumerate(known)}
    return np.array([position[name] for name in names], dtype=np.intp)


def _grown(array: FloatArray, rows: int, fill: float) -> FloatArray:
    """``array`` with at least ``rows`` rows (new ones filled with ``fill``)."""
    if array.shape[0] >= rows:
        return array
    grown = np.full((max(rows, 2 * array.shape[0]), array.shape[1]), fill)
    grown[: array.shape[0]] = array
    return grown


class TapView:
    """The parent's view of the child's tap: ``bound``/``ready`` events and counters."""

    def __init__(self) -> None:
        self.bound = asyncio.Event()  # set while the tap queue is declared and bound
        self.ready = asyncio.Event()  # set while the tap is consuming
        self.state = TapState()

    @property
    def queue_name(self) -> str | None:
        return self.state.queue_name

    @property
    def consumed(self) -> int:
        return self.state.consumed

    def update(self, state: TapState) -> None:
        self.state = state
        for event, flag in ((self.bound, state.bound), (self.ready, state.ready)):
            if flag:
                event.set()
            else:
                event.clear()
