"""The per-second series of a snapshot's whole range, built one history chunk at a time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from services.flow.history import frame_from_rows, unpack_row
from services.flow.types import LATENCY_PERCENTILES, FloatArray, FlowFrame, Headline


@dataclass(frozen=True, slots=True)
class HistoryChunk:
    """``frame_from_rows`` of the seconds ``start <= second < end``, how many of them hold a
    row, and the failure reasons counted over those rows."""

    end: int
    frame: FlowFrame
    seconds_with_data: int
    reasons: Counter[str]


def history_chunks(
    blobs: Sequence[tuple[int, bytes]], start: int, end: int, chunk_s: int
) -> list[HistoryChunk]:
    """:func:`iter_history_chunks` all at once: what a snapshot's worker process does for
    the writer while it reads the history."""
    return list(iter_history_chunks(blobs, start, end, chunk_s))


def iter_history_chunks(
    blobs: Sequence[tuple[int, bytes]], start: int, end: int, chunk_s: int
) -> Iterator[HistoryChunk]:
    """The stored rows of ``start <= second < end`` (``HistoryStore.read_blobs``, oldest
    first) unpacked and made frames of ``chunk_s`` seconds, one chunk at a time."""
    first = 0
    for chunk_start in range(start, end, chunk_s):
        chunk_end = min(chunk_start + chunk_s, end)
        last = first
        while last < len(blobs) and blobs[last][0] < chunk_end:
            last += 1
        rows = [unpack_row(second, blob) for second, blob in blobs[first:last]]
        first = last
        reasons: Counter[str] = Counter()
        for row in rows:
            reasons.update(row.failure_reasons)
        frame = frame_from_rows(rows, chunk_start, chunk_end)
        yield HistoryChunk(chunk_end, frame, len(rows), reasons)


class SeriesBuilder:
    """The dense per-second series of the whole range, filled one chunk frame at a time."""

    def __init__(self, from_s: int, to_s: int) -> None:
        self.from_s = from_s
        self.n = to_s - from_s
        self.counts: dict[str, FloatArray] = {}
        self.depths: dict[str, FloatArray] = {}
        # NaN where nobody recorded the second (see ``frame_from_rows``).
        self.dead: FloatArray = np.full(self.n, np.nan)
        self.latency: FloatArray = np.full((len(LATENCY_PERCENTILES), self.n), np.nan)

    def add(self, frame: FlowFrame) -> None:
        if frame.seconds == 0:
            return
        start = int(frame.t[0]) - self.from_s
        end = start + frame.seconds
        for row, name in enumerate(frame.status_names):
            series = self.counts.setdefault(name, np.zeros(self.n))
            series[start:end] = frame.status_counts[row]
        for row, name in enumerate(frame.queue_names):
            series = self.depths.setdefault(name, np.full(self.n, np.nan))
            series[start:end] = frame.queue_depths[row]
        self.dead[start:end] = frame.dead_letters
        self.latency[:, start:end] = frame.latency_ms

    def frame(self, failure_statuses: frozenset[str]) -> FlowFrame:
        names = tuple(self.counts)
        counts = np.vstack([self.counts[n] for n in names]) if names else np.zeros((0, self.n))
        # A status first seen in a later chunk was 0 in the recorded seconds before it.
        counts = np.nan_to_num(counts, nan=0.0)
        counts[:, np.isnan(self.dead)] = np.nan
        queues = tuple(self.depths)
        depths = np.vstack([self.depths[q] for q in queues]) if queues else np.zeros((0, self.n))
        total = float(np.nansum(counts))
        failures = sum(
            float(np.nansum(counts[i]))
            for i, n in enumerate(names)
            if n.lower() in failure_statuses
        )
        p99 = self.latency[-1]
        return FlowFrame(
            t=np.arange(self.from_s, self.from_s + self.n, dtype=np.float64),
            status_names=names,
            status_counts=counts,
            dead_letters=self.dead,
            latency_ms=self.latency,
            queue_names=queues,
            queue_depths=depths,
            headline=Headline(
                events_per_s=total / self.n if self.n else 0.0,
                failure_rate_pct=failures / total * 100.0 if total else None,
                dlq_depth=None,
                latency_p99_ms=None if np.all(np.isnan(p99)) else float(np.nanmax(p99)),
                tap_dropped=0,
                total_events=int(total),
            ),
        )
