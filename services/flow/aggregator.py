"""Per-second live-flow counters: statuses, dead letters, latency, queue depths.

The per-message methods (``record_event``, ``record_dead_letter``) only touch
plain Python counters for the current second; when the second rolls over it
is flushed into ring buffers of numpy arrays (``capacity_s`` seconds deep), so
building a frame is a handful of vectorised slices.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from services.flow.types import HEADLINE_WINDOW_S, LATENCY_PERCENTILES, FlowFrame, Headline

OTHER_STATUS = "other"
OTHER_REASON = "other"

# Latency histogram: log-spaced bins from 0.1 ms to 1e7 ms (~2.8 h), 32 per decade
# (a reported percentile is within ~3.7 % of the true sample value), plus an
# underflow bin (reported as 0 ms) and an overflow bin (reported as 1e7 ms).
_LOG_LO = -1.0
_LOG_HI = 7.0
_BINS_PER_DECADE = 32
_N_BINS = int((_LOG_HI - _LOG_LO) * _BINS_PER_DECADE) + 2
_BIN_VALUES = np.concatenate(
    (
        [0.0],
        10.0 ** (_LOG_LO + (np.arange(_N_BINS - 2) + 0.5) / _BINS_PER_DECADE),
        [10.0**_LOG_HI],
    )
)
# Latency samples kept for the current second; beyond it every 2nd, 4th, ... is kept.
_LATENCY_SAMPLE_CAP = 8192
_PERCENTILE_FRACTIONS = np.array(LATENCY_PERCENTILES, dtype=np.float64) / 100.0

FloatArray = npt.NDArray[np.float64]


class FlowAggregator:
    """Counts the live flow into per-second buckets and builds ``FlowFrame``s.

    Thread-safe: every public method holds one lock for its (short) duration.

    ``version`` increases whenever anything is recorded, so a frame timer can
    skip building a frame when nothing changed. More than ``max_statuses``
    distinct statuses are counted under ``"other"`` (a routing key carrying an
    id must not grow the arrays without bound). A polled queue depth is held for
    ``depth_hold_s`` seconds, so a poll that lands a little late leaves no gap.
    """

    def __init__(
        self,
        capacity_s: int = 3600,
        failure_statuses: Iterable[str] = ("failed",),
        dead_letter_queues: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        *,
        max_statuses: int = 64,
        max_reasons: int = 64,
        depth_hold_s: int = 3,
    ) -> None:
        if capacity_s < HEADLINE_WINDOW_S + 1:
            raise ValueError(f"capacity_s must be at least {HEADLINE_WINDOW_S + 1}")
        self.version = 0
        # The tap thread records while the GUI thread builds frames.
        self._lock = threading.Lock()
        self._clock = clock
        self._cap = capacity_s
        self._failure_statuses = frozenset(s.lower() for s in failure_statuses)
        self._dead_letter_queues = tuple(dead_letter_queues)
        self._max_statuses = max_statuses
        self._max_reasons = max_reasons
        self._depth_hold_s = depth_hold_s

        # Ring buffers, one column per second at index ``second % capacity``.
        self._ring_sec = np.full(capacity_s, -1, dtype=np.int64)
        self._counts = np.zeros((8, capacity_s), dtype=np.float64)
        self._dead = np.zeros(capacity_s, dtype=np.float64)
        self._replayed = np.zeros(capacity_s, dtype=np.float64)
        self._latency = np.full((len(LATENCY_PERCENTILES), capacity_s), np.nan)
        self._depths = np.full((4, capacity_s), np.nan)
        # Latency histograms of the last seconds, for the headline percentile.
        self._hist_slots = HEADLINE_WINDOW_S + 1
        self._hist_sec = np.full(self._hist_slots, -1, dtype=np.int64)
        self._hist = np.zeros((self._hist_slots, _N_BINS), dtype=np.float64)

        self._status_names: list[str] = []
        self._status_rows: dict[str, int] = {}
        self._queue_names: list[str] = []
        self._queue_rows: dict[str, int] = {}

        # The current, partial second.
        self._cur_sec = int(clock())
        self._start_sec = self._cur_sec
        self._cur_counts: dict[str, int] = {}
        self._cur_dead = 0
        self._cur_replayed = 0
        self._cur_latency: list[float] = []
        self._cur_reasons: dict[str, int] = {}
        # Failure reasons of the finished seconds still in the ring: second -> counts.
        self._reasons: dict[int, dict[str, int]] = {}
        self._reason_names: set[str] = set()
        self._lat_stride = 1
        self._lat_countdown = 1

        self._latest_depth: dict[str, tuple[int | None, int]] = {}
        self._totals: dict[str, int] = {}
        self._tap_dropped = 0

    # -- per message -----------------------------------------------------------

    def record_event(
        self,
        status: str,
        latency_ms: float | None,
        reason: str | None = None,
        *,
        replayed: bool = False,
    ) -> None:
        """Count one event with its status, its latency and failure reason (when known).

        A ``replayed`` event (an operator sent its message back) is counted by
        status and apart as replayed, never in the latency: its created time is
        the original payment's, so its latency would be the time it was parked.
        """
        with self._lock:
            sec = int(self._clock())
            if sec != self._cur_sec:
                self._advance(sec)
            counts = self._cur_counts
            counts[status] = counts.get(status, 0) + 1
            if reason is not None:
                if reason not in self._reason_names:
                    if len(self._reason_names) >= self._max_reasons:
                        reason = OTHER_REASON
                    self._reason_names.add(reason)
                reasons = self._cur_reasons
                reasons[reason] = reasons.get(reason, 0) + 1
            if replayed:
                self._cur_replayed += 1
            elif latency_ms is not None:
                if self._lat_countdown <= 1:
                    samples = self._cur_latency
                    samples.append(latency_ms)
                    self._lat_countdown = self._lat_stride
                    if len(samples) >= _LATENCY_SAMPLE_CAP:
                        del samples[1::2]
                        self._lat_stride *= 2
                        self._lat_countdown = self._lat_stride
                else:
                    self._lat_countdown -= 1
            self.version += 1

    def record_dead_letter(self) -> None:
        """Count one dead-lettered message seen on a tapped exchange."""
        with self._lock:
            sec = int(self._clock())
            if sec != self._cur_sec:
                self._advance(sec)
            self._cur_dead += 1
            self.version += 1

    # -- occasional ------------------------------------------------------------

    def record_depth(self, queue: str, depth: int | None) -> None:
        """Record a polled queue depth; None when the queue is missing or unknown."""
        with self._lock:
            sec = int(self._clock())
            if sec != self._cur_sec:
                self._advance(sec)
            self._queue_row(queue)
            self._latest_depth[queue] = (depth, self._cur_sec)
            self.version += 1

    def record_tap_dropped(self, n: int) -> None:
        """Add ``n`` messages the tap queue lost because the console fell behind."""
        with self._lock:
            if n > 0:
                self._tap_dropped += n
                self.version += 1

    # -- reading ---------------------------------------------------------------

    def totals_by_status(self) -> dict[str, int]:
        """Exact cumulative event counts by status (statuses over the cap under "other")."""
        with self._lock:
            totals = dict(self._totals)
            for status, n in self._cur_counts.items():
                name = self._status_names[self._status_row(status)]
                totals[name] = totals.get(name, 0) + n
            return totals

    def failure_reasons(self, from_s: int, to_s: int) -> dict[int, dict[str, int]]:
        """Failure-reason counts of the finished seconds ``from_s <= second < to_s``.

        Only seconds with at least one reason appear. More than ``max_reasons``
        distinct reasons are counted under ``"other"``.
        """
        with self._lock:
            self._advance(int(self._clock()))
            low = max(from_s, self._cur_sec - self._cap)  # older seconds left the ring
            return {sec: dict(counts) for sec, counts in self._reasons.items() if low <= sec < to_s}

    def frame(self, window_s: int) -> FlowFrame:
        """The last ``window_s`` seconds, oldest first, ending with the current partial one."""
        with self._lock:
            self._advance(int(self._clock()))
            n = max(1, min(int(window_s), self._cap))
            cur = self._cur_sec
            secs = np.arange(cur - n + 1, cur + 1, dtype=np.int64)
            slots = secs % self._cap
            stale = self._ring_sec[slots] != secs

            current_rows = [(self._status_row(s), c) for s, c in self._cur_counts.items()]
            n_status = len(self._status_names)
            counts = self._counts[:n_status, slots]
            counts[:, stale] = 0.0
            counts[:, -1] = 0.0
            for row, c in current_rows:
                counts[row, -1] += c

            dead = self._dead[slots]
            dead[stale] = 0.0
            dead[-1] = self._cur_dead

            latency = self._latency[:, slots]
            latency[:, stale] = np.nan
            latency[:, -1] = _percentiles(self._current_histogram())

            depths = self._depths[: len(self._queue_names), slots]
            depths[:, stale] = np.nan
            depths[:, -1] = self._held_depths(cur)

            return FlowFrame(
                t=secs.astype(np.float64),
                status_names=tuple(self._status_names),
                status_counts=counts,
                dead_letters=dead,
                latency_ms=latency,
                queue_names=tuple(self._queue_names),
                queue_depths=depths,
                headline=self._headline(),
            )

    def headline(self) -> Headline:
        """The headline counters alone (see ``Headline``)."""
        with self._lock:
            self._advance(int(self._clock()))
            return self._headline()

    # -- internals -------------------------------------------------------------

    def _headline(self) -> Headline:
        cur = self._cur_sec
        complete = min(HEADLINE_WINDOW_S, cur - self._start_sec)
        total_events = sum(self._totals.values()) + sum(self._cur_counts.values())
        events_per_s = 0.0
        failure_rate: float | None = None
        p99: float | None = None
        replayed = 0
        if complete > 0:
            secs = np.arange(cur - complete, cur, dtype=np.int64)
            slots = secs % self._cap
            fresh = self._ring_sec[slots] == secs
            per_status = self._counts[: len(self._status_names)][:, slots[fresh]].sum(axis=1)
            total = float(per_status.sum())
            events_per_s = total / complete
            replayed = int(self._replayed[slots[fresh]].sum())
            if total > 0:
                failures = sum(
                    float(per_status[row])
                    for name in self._failure_statuses
                    if (row := self._status_rows.get(name)) is not None
                    and self._status_names[row] == name
                )
                failure_rate = failures / total * 100.0
            hist_fresh = (self._hist_sec >= cur - complete) & (self._hist_sec < cur)
            p99_value = _percentiles(self._hist[hist_fresh].sum(axis=0))[-1]
            p99 = None if math.isnan(p99_value) else float(p99_value)
        return Headline(
            events_per_s=events_per_s,
            failure_rate_pct=failure_rate,
            dlq_depth=self._dlq_depth(),
            latency_p99_ms=p99,
            tap_dropped=self._tap_dropped,
            total_events=total_events,
            replayed_events=replayed,
            window_s=HEADLINE_WINDOW_S,
        )

    def _dlq_depth(self) -> int | None:
        known = [
            depth
            for name in self._dead_letter_queues
            if (depth := self._latest_depth.get(name, (None, 0))[0]) is not None
        ]
        return sum(known) if known else None

    def _advance(self, sec: int) -> None:
        """Flush the current second when the clock has moved past it."""
        cur = self._cur_sec
        if sec <= cur:  # same second, or the clock stepped back: keep filling this one
            return
        self._flush(cur)
        # Seconds with nothing recorded still hold recent depths.
        for gap in range(cur + 1, min(sec, cur + 1 + self._depth_hold_s)):
            self._write_empty(gap)
        self._cur_sec = sec

    def _flush(self, sec: int) -> None:
        slot = sec % self._cap
        self._ring_sec[slot] = sec
        counts = self._cur_counts
        if counts:
            rows = [(self._status_row(s), c) for s, c in counts.items()]
            column = self._counts[:, slot]
            column[:] = 0.0
            totals = self._totals
            for row, c in rows:
                column[row] += c
                name = self._status_names[row]
                totals[name] = totals.get(name, 0) + c
            self._cur_counts = {}
        else:
            self._counts[:, slot] = 0.0
        self._dead[slot] = self._cur_dead
        self._cur_dead = 0
        self._replayed[slot] = self._cur_replayed
        self._cur_replayed = 0
        self._reasons.pop(sec - self._cap, None)
        if self._cur_reasons:
            self._reasons[sec] = self._cur_reasons
            self._cur_reasons = {}
        if len(self._reasons) > self._cap:  # the clock jumped: keep the ring's seconds only
            oldest = sec - self._cap
            self._reasons = {k: v for k, v in self._reasons.items() if k > oldest}

        hist = self._current_histogram()
        self._latency[:, slot] = _percentiles(hist)
        hist_slot = sec % self._hist_slots
        self._hist_sec[hist_slot] = sec
        self._hist[hist_slot] = hist
        self._cur_latency = []
        self._lat_stride = 1
        self._lat_countdown = 1

        self._depths[:, slot] = np.nan
        self._depths[: len(self._queue_names), slot] = self._held_depths(sec)

    def _write_empty(self, sec: int) -> None:
        slot = sec % self._cap
        self._ring_sec[slot] = sec
        self._counts[:, slot] = 0.0
        self._dead[slot] = 0.0
        self._replayed[slot] = 0.0
        self._latency[:, slot] = np.nan
        hist_slot = sec % self._hist_slots
        self._hist_sec[hist_slot] = sec
        self._hist[hist_slot] = 0.0
        self._depths[:, slot] = np.nan
        self._depths[: len(self._queue_names), slot] = self._held_depths(sec)

    def _held_depths(self, sec: int) -> FloatArray:
        values = np.full(len(self._queue_names), np.nan)
        oldest = sec - self._depth_hold_s
        for row, name in enumerate(self._queue_names):
            depth, at = self._latest_depth.get(name, (None, 0))
            if depth is not None and oldest <= at <= sec:
                values[row] = depth
        return values

    def _current_histogram(self) -> FloatArray:
        samples = self._cur_latency
        if not samples:
            return np.zeros(_N_BINS, dtype=np.float64)
        values = np.asarray(samples, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            position = (np.log10(values) - _LOG_LO) * _BINS_PER_DECADE + 1.0
        position = np.nan_to_num(position, nan=0.0, posinf=_N_BINS - 1, neginf=0.0)
        bins = np.clip(position, 0, _N_BINS - 1).astype(np.intp)
        return np.bincount(bins, minlength=_N_BINS).astype(np.float64) * self._lat_stride

    def _status_row(self, status: str) -> int:
        row = self._status_rows.get(status)
        if row is not None:
            return row
        if len(self._status_names) >= self._max_statuses:
            # No alias is stored: unbounded distinct statuses must not grow the index.
            other = self._status_rows.get(OTHER_STATUS)
            if other is not None:
                return other
            status = OTHER_STATUS
        row = len(self._status_names)
        if row >= self._counts.shape[0]:
            grown = np.zeros((self._counts.shape[0] * 2, self._cap), dtype=np.float64)
            grown[:row] = self._counts
            self._counts = grown
        self._status_names.append(status)
        self._status_rows[status] = row
        return row

    def _queue_row(self, queue: str) -> int:
        row = self._queue_rows.get(queue)
        if row is not None:
            return row
        row = len(self._queue_names)
        if row >= self._depths.shape[0]:
            grown = np.full((self._depths.shape[0] * 2, self._cap), np.nan)
            grown[:row] = self._depths
            self._depths = grown
        self._queue_names.append(queue)
        self._queue_rows[queue] = row
        return row


def _percentiles(hist: FloatArray) -> FloatArray:
    """p50/p95/p99 (ms) of a latency histogram; NaN when it is empty."""
    cumulative = np.cumsum(hist)
    total = cumulative[-1] if cumulative.size else 0.0
    if total <= 0:
        return np.full(len(LATENCY_PERCENTILES), np.nan)
    index = np.searchsorted(cumulative, _PERCENTILE_FRACTIONS * total, side="left")
    return _BIN_VALUES[np.minimum(index, _N_BINS - 1)]
