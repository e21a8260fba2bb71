"""What a snapshot is asked for and reports back: the request, progress, result, alert spans.

Plain data shared by the writer (:mod:`services.snapshot.job`), the CLI, the GUI's
controller and the chart renderer, which gets the range's series and the
:class:`AlertSpan` of each stretch an alert rule was firing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, NamedTuple

from services.alerts.model import AlertEvent
from services.alerts.timeline import in_effect_order
from services.config import Profile
from services.flow.types import FlowFrame

MAX_RANGE_S: Final = 7 * 86400
"""The longest range a snapshot covers (its per-second series is held in memory)."""

CHARTS: Final = {
    "throughput": ("Throughput by status", "Events per status over the range."),
    "dead_letters": ("Dead-letter arrivals", "Messages dead-lettered over the range."),
    "queue_depths": ("Queue depths", "Depth of the watched queues (messages)."),
    "latency": ("End-to-end latency", "Latency percentiles p50, p95 and p99."),
}
"""The charts a renderer is asked for: name (``charts/<name>.png``) -> (title, caption)."""

STAGE_HISTORY: Final = "flow history"
STAGE_ALERTS: Final = "alerts"
STAGE_AUDIT: Final = "audit trail"
STAGE_ENTRIES: Final = "failed payments"
STAGE_CHARTS: Final = "charts"
STAGE_REPORT: Final = "report"
STAGE_PACKING: Final = "packing"
STAGES: Final = (
    STAGE_HISTORY,
    STAGE_ALERTS,
    STAGE_AUDIT,
    STAGE_ENTRIES,
    STAGE_CHARTS,
    STAGE_REPORT,
    STAGE_PACKING,
)
"""The stages in the order they run (``charts`` only with a renderer)."""


@dataclasses.dataclass(frozen=True)
class SnapshotRequest:
    """What to snapshot: a profile's data of ``from_s <= t < to_s``, into ``out``.

    ``overwrite`` allows replacing an existing ``out``; ``batch`` is how many
    entries or audit records are read and written at a time.
    """

    profile: Profile
    from_s: int
    to_s: int
    out: Path
    overwrite: bool = False
    batch: int = 200


class AlertSpan(NamedTuple):
    """A stretch of time an alert rule was firing (epoch seconds), clipped to the range.

    A plain tuple ``(start_s, end_s, rule, severity)`` for the chart renderer.
    """

    start_s: float
    end_s: float
    rule: str
    severity: str


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotProgress:
    """Where the writer is: a stage, and how far into it (``total`` None when unknown)."""

    stage: str
    done: int
    total: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotCounts:
    """What the bundle holds; the same numbers report.html shows."""

    seconds: int  # rows of throughput.csv
    events: int
    dead_letters: int
    failed_payments: int  # rows of failed_payments.csv / .jsonl
    audit_records: int  # lines of audit.jsonl
    alert_events: int  # lines of alerts.jsonl


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotResult:
    """The bundle written: where, what it holds, its SHA-256 and size in bytes."""

    path: Path
    counts: SnapshotCounts
    sha256: str
    size: int


class SnapshotCancelled(Exception):
    """The snapshot was cancelled (its ``cancel`` event was set); nothing was left behind."""


ChartRenderer = Callable[
    [FlowFrame, Sequence[AlertSpan]], Mapping[str, bytes] | Awaitable[Mapping[str, bytes]]
]
"""PNGs by chart name. A renderer that returns an awaitable (a coroutine function, one
that draws in another process) is started as soon as the series and spans are known and
runs while the entries are written; a plain one is called at the charts stage."""
ProgressCallback = Callable[[SnapshotProgress], None]


# --------------------------------------------------------------------------- alert spans


@dataclasses.dataclass(frozen=True, slots=True)
class FiringSpan:
    """An :class:`AlertSpan`, and whether it began before the range or runs past its end."""

    span: AlertSpan
    started_before: bool
    still_firing: bool


def alert_spans(
    events: Sequence[AlertEvent],
    from_s: float,
    to_s: float,
    *,
    earlier: Iterable[AlertEvent] = (),
) -> list[AlertSpan]:
    """When each rule was firing within ``[from_s, to_s)``, from the range's events and
    (``earlier``) the events before it, which tell what was firing at its start."""
    return [s.span for s in firing_spans(events, from_s, to_s, earlier=earlier)]


def firing_spans(
    events: Sequence[AlertEvent],
    from_s: float,
    to_s: float,
    *,
    earlier: Iterable[AlertEvent] = (),
) -> list[FiringSpan]:
    """:func:`alert_spans`, each with whether it was firing at the range's start and end."""
    latest: dict[str, AlertEvent] = {}
    for event in sorted(earlier, key=lambda e: e.ts):
        latest[event.rule] = event
    open_: dict[str, tuple[float, str, bool]] = {
        rule: (from_s, event.severity, True)
        for rule, event in latest.items()
        if event.kind == "firing"
    }
    spans: list[FiringSpan] = []
    for event in in_effect_order(events, open_):
        ts = min(max(event.ts, from_s), to_s)
        if event.kind == "firing":
            open_.setdefault(event.rule, (ts, event.severity, False))
            continue
        start, severity, before = open_.pop(event.rule, (from_s, event.severity, True))
        spans.append(FiringSpan(AlertSpan(start, ts, event.rule, severity), before, False))
    for rule, (start, severity, before) in open_.items():
        spans.append(FiringSpan(AlertSpan(start, to_s, rule, severity), before, True))
    spans.sort(key=lambda s: (s.span.start_s, s.span.rule))
    return spans
