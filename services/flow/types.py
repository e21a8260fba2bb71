"""Plain data the live flow hands to views: one frame of per-second series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LATENCY_PERCENTILES: tuple[int, ...] = (50, 95, 99)
HEADLINE_WINDOW_S = 10
"""The headline's rates, failure share and p99 cover this many finished seconds."""


@dataclass(frozen=True)
class Headline:
    """The headline counters over the recent past (see ``FlowAggregator``).

    ``events_per_s``, ``failure_rate_pct``, ``latency_p99_ms`` and
    ``replayed_events`` cover the last ``window_s`` finished seconds. The
    failure rate is the failure-status events as a share of all status events
    (dead letters are not events), as the failure-rate alert computes it over
    its own window. Replayed events (messages an operator sent back, and what
    the flow emits for them) count as events but not in the latency: their
    created time is the original payment's.
    """

    events_per_s: float
    failure_rate_pct: float | None  # None when no events in the window
    dlq_depth: int | None  # messages waiting in the dead-letter queues; None when unknown
    latency_p99_ms: float | None
    tap_dropped: int  # tap messages lost because the console fell behind
    total_events: int
    replayed_events: int = 0  # events of replayed messages in the window
    window_s: int = HEADLINE_WINDOW_S


@dataclass(frozen=True)
class FlowFrame:
    """Per-second series for the selected window, oldest first.

    All series share the time axis ``t`` (epoch seconds, one entry per second,
    ascending). Missing values are NaN (no latency sample in that second, a
    queue depth not polled or not known).
    """

    t: FloatArray  # shape (n,)
    status_names: tuple[str, ...]
    status_counts: FloatArray  # shape (len(status_names), n): events per second
    dead_letters: FloatArray  # shape (n,): dead-letter arrivals per second
    latency_ms: FloatArray  # shape (len(LATENCY_PERCENTILES), n): p50, p95, p99
    queue_names: tuple[str, ...]
    queue_depths: FloatArray  # shape (len(queue_names), n): depth at that second
    headline: Headline

    @property
    def seconds(self) -> int:
        """How many seconds the frame spans."""
        return int(self.t.shape[0])

    def finished(self) -> FlowFrame:
        """The frame without its last, still-filling second (a plot of it would dip)."""
        if self.seconds <= 1:
            return self
        return FlowFrame(
            t=self.t[:-1],
            status_names=self.status_names,
            status_counts=self.status_counts[:, :-1],
            dead_letters=self.dead_letters[:-1],
            latency_ms=self.latency_ms[:, :-1],
            queue_names=self.queue_names,
            queue_depths=self.queue_depths[:, :-1],
            headline=self.headline,
        )
