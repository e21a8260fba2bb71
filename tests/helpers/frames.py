"""Synthetic FlowFrames for widget tests, screenshots and README images (no broker needed).

``realistic_frame()`` gives a believable payment flow with an incident: failures
and latency climb, dead letters arrive and the dead-letter queue fills up;
latency and queue depth have NaN gaps (seconds without a sample or a poll).
``make_frame()`` builds a frame from exact numbers for assertions, and
``stage_demo_window()`` dresses a ``MainWindow`` for screenshots.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from services.flow.types import LATENCY_PERCENTILES, FloatArray, FlowFrame, Headline
from services.links.status import LinkState, LinkStatus

if TYPE_CHECKING:
    from widgets.main_window import MainWindow

STATUSES = ("requested", "authorized", "captured", "declined", "failed")
QUEUES = ("payments.requests", "payments.capture", "payments.settlement", "payments.dlq")
DEFAULT_END = 1_732_457_100.0  # 2024-11-24 14:05:00 UTC: a fixed clock for repeatable images


def _array(values: Sequence[float] | FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def make_headline(**overrides: float | int | None) -> Headline:
    """A headline with sensible defaults, any field overridden."""
    fields: dict[str, float | int | None] = {
        "events_per_s": 0.0,
        "failure_rate_pct": None,
        "dlq_depth": None,
        "latency_p99_ms": None,
        "tap_dropped": 0,
        "total_events": 0,
    }
    fields.update(overrides)
    return Headline(**fields)  # type: ignore[arg-type]


def make_frame(
    t: Sequence[float] | FloatArray,
    statuses: Mapping[str, Sequence[float]],
    *,
    dead_letters: Sequence[float] | None = None,
    latency: Sequence[Sequence[float]] | None = None,
    queues: Mapping[str, Sequence[float]] | None = None,
    headline: Headline | None = None,
) -> FlowFrame:
    """A frame holding exactly the given numbers (missing series are zeros / NaN)."""
    times = _array(t)
    n = times.shape[0]
    queues = queues or {}
    status_counts = (
        np.vstack([_array(v) for v in statuses.values()]) if statuses else np.zeros((0, n))
    )
    queue_depths = np.vstack([_array(v) for v in queues.values()]) if queues else np.zeros((0, n))
    latency_ms = (
        np.vstack([_array(v) for v in latency])
        if latency is not None
        else np.full((len(LATENCY_PERCENTILES), n), np.nan)
    )
    return FlowFrame(
        t=times,
        status_names=tuple(statuses),
        status_counts=status_counts,
        dead_letters=_array(dead_letters) if dead_letters is not None else np.zeros(n),
        latency_ms=latency_ms,
        queue_names=tuple(queues),
        queue_depths=queue_depths,
        headline=headline or make_headline(),
    )


def _bump(n: int, start: float, end: float, ramp: float = 8.0) -> FloatArray:
    """0 outside [start, end) (fractions of the window), 1 inside, with soft edges."""
    x = np.arange(n, dtype=np.float64)
    a, b = start * n, end * n
    rise = 1.0 / (1.0 + np.exp(np.clip(-(x - a) / ramp * 4, -50, 50)))
    fall = 1.0 / (1.0 + np.exp(np.clip((x - b) / ramp * 4, -50, 50)))
    return rise * fall


def realistic_frame(
    seconds: int = 300,
    *,
    end: float | None = DEFAULT_END,
    seed: int = 7,
    incident: tuple[float, float] = (0.66, 0.95),
    tap_dropped: int = 0,
) -> FlowFrame:
    """A believable flow over ``seconds`` ending at ``end`` (None: now), with one incident.

    During the incident (fractions of the window) the failure rate climbs to ~14 %,
    p99 latency to over a second, dead letters arrive and ``payments.dlq`` fills.
    """
    rng = np.random.default_rng(seed)
    end_s = float(math.floor(time.time()) if end is None else end)
    n = seconds
    t = end_s - n + 1 + np.arange(n, dtype=np.float64)
    x = np.arange(n, dtype=np.float64)
    hot = _bump(n, *incident)

    base = 140 + 18 * np.sin(2 * math.pi * x / max(n, 1) * 1.3) + 6 * np.sin(x / 9.0)
    requested = rng.poisson(np.clip(base, 1, None)).astype(np.float64)
    fail_p = 0.008 + 0.13 * hot
    decline_p = 0.05 + 0.01 * hot
    failed = rng.binomial(requested.astype(np.int64), fail_p).astype(np.float64)
    declined = rng.binomial(requested.astype(np.int64), decline_p).astype(np.float64)
    authorized = np.clip(requested - failed - declined + rng.normal(0, 2, n), 0, None).round()
    captured = np.clip(np.roll(authorized, 3) * 0.93 + rng.normal(0, 2, n), 0, None).round()
    captured[:3] = authorized[:3] * 0.93

    dead = rng.poisson(0.05 + failed * 0.8 * hot + 0.02).astype(np.float64)

    lag = hot * 180 + rng.normal(0, 3, n)
    requests_depth = np.clip(14 + 6 * np.sin(x / 7.0) + lag + rng.normal(0, 3, n), 0, None)
    capture_depth = np.clip(4 + 3 * np.sin(x / 5.0) + hot * 40 + rng.normal(0, 1.5, n), 0, None)
    settlement_depth = np.clip(60 + 25 * np.sin(x / 40.0) + rng.normal(0, 4, n), 0, None)
    dlq_depth = 3 + np.cumsum(dead)
    queue_depths = np.vstack(
        [requests_depth.round(), capture_depth.round(), settlement_depth.round(), dlq_depth]
    )
    unpolled = rng.random(n) < 0.015
    queue_depths[:, unpolled] = np.nan
    gap_at = int(n * 0.35)
    queue_depths[:, gap_at : gap_at + max(n // 40, 3)] = np.nan  # a reconnect: no polls

    p50 = 38 + 6 * np.sin(x / 11.0) + hot * 140 + rng.normal(0, 2.5, n)
    p95 = p50 * (2.4 + 0.8 * hot) + rng.normal(0, 6, n)
    p99 = p95 * (1.6 + 0.9 * hot) + np.abs(rng.normal(0, 20, n))
    latency_ms = np.vstack([p50, p95, p99])[: len(LATENCY_PERCENTILES)]
    quiet = rng.random(n) < 0.02
    latency_ms[:, quiet] = np.nan
    latency_ms[:, int(n * 0.2) : int(n * 0.2) + max(n // 50, 3)] = np.nan

    status_counts = np.vstack([requested, authorized, captured, declined, failed])

    recent = slice(max(n - 60, 0), n)
    events = float(status_counts[:, recent].sum())
    window_s = float(max(min(n, 60), 1))
    last_p99 = latency_ms[-1, recent]
    finite_p99 = last_p99[np.isfinite(last_p99)]
    headline = Headline(
        events_per_s=events / window_s,
        failure_rate_pct=(
            100.0 * float(failed[recent].sum()) / float(requested[recent].sum())
            if requested[recent].sum()
            else None
        ),
        dlq_depth=int(dlq_depth[-1]),
        latency_p99_ms=float(np.percentile(finite_p99, 99)) if finite_p99.size else None,
        tap_dropped=tap_dropped,
        total_events=int(status_counts.sum()),
    )
    return FlowFrame(
        t=t,
        status_names=STATUSES,
        status_counts=status_counts,
        dead_letters=dead,
        latency_ms=latency_ms,
        queue_names=QUEUES,
        queue_depths=queue_depths,
        headline=headline,
    )


def stage_demo_window(window: MainWindow, frame: FlowFrame | None = None) -> FlowFrame:
    """Dress a main window as a live incident for screenshots; returns the frame shown."""
    frame = frame or realistic_frame()
    window.set_profile(
        "demo",
        "resources/default_config.toml\nRabbitMQ amqp://payops@localhost:5672/\n"
        "Redis redis://localhost:6379/0",
    )
    window.show_link_status(
        LinkStatus("RabbitMQ", LinkState.CONNECTED, "amqp://payops@localhost:5672/")
    )
    window.show_link_status(LinkStatus("Redis", LinkState.CONNECTED, "redis://localhost:6379/0"))
    window.show_problem("exchange 'payments.refunds' not found")
    window.show_problem("queue 'payments.capture.dlq' not found: not watching it")
    window.show_frame(frame)
    return frame
