"""Alert events over time: sources merged, the spans the plots shade, the latest incident.

Each firing is paired with the next resolution of its rule; a firing with
none is still open (or ended while nobody recorded).
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterable, Iterator, Sequence
from typing import Final

from services.alerts.model import Alert, AlertEvent, AlertMark

INCIDENT_LEAD_MS: Final = 5 * 60 * 1000
"""How far before an incident's first firing ``incident_window`` starts."""


def merged_events(*sources: Iterable[AlertEvent]) -> list[AlertEvent]:
    """The events of every source once (same rule, kind and second), oldest first."""
    seen: set[tuple[str, str, int]] = set()
    merged: list[AlertEvent] = []
    for event in sorted((e for source in sources for e in source), key=lambda e: e.ts):
        key = (event.rule, event.kind, int(event.ts))
        if key not in seen:
            seen.add(key)
            merged.append(event)
    return merged


def in_effect_order(events: Sequence[AlertEvent], firing: Container[str]) -> Iterator[AlertEvent]:
    """The events by time; at one instant, each resolve of a rule firing until then first,
    then the firings, then the resolves of rules that fired at that very instant.

    A ``new_failure_group`` alert is a firing and its resolve at one millisecond: it is a
    span of no length, not a resolve of nothing followed by a firing left open (which
    made it shade every plot to now and pull the incident back to it). ``firing`` (the
    rules open) is read as the caller updates it.
    """
    ordered = sorted(events, key=lambda e: e.ts)
    index = 0
    while index < len(ordered):
        end = index
        while end < len(ordered) and ordered[end].ts == ordered[index].ts:
            end += 1
        same = ordered[index:end]
        closing = {id(e) for e in same if e.kind == "resolved" and e.rule in firing}
        yield from (e for e in same if id(e) in closing)
        yield from (e for e in same if e.kind == "firing")
        yield from (e for e in same if e.kind == "resolved" and id(e) not in closing)
        index = end


def alert_marks(
    events: Sequence[AlertEvent], active: Sequence[Alert], since_s: float
) -> list[AlertMark]:
    """The spans the plots shade: each firing to its resolution, or open while active.

    ``events`` oldest first. Spans that ended before ``since_s`` are left out.
    A firing the engine no longer reports as active and that has no recorded
    resolution is closed at its last known moment (it resolved while this
    console was not recording).
    """
    marks: list[AlertMark] = []
    open_at: dict[str, AlertEvent] = {}
    for event in in_effect_order(events, open_at):
        if event.kind == "firing":
            open_at.setdefault(event.rule, event)
            continue
        firing = open_at.pop(event.rule, None)
        if firing is not None and event.ts >= since_s:
            marks.append(AlertMark(firing.ts, event.ts, event.rule, firing.severity))
    active_rules = {alert.rule: alert for alert in active}
    for rule, firing in open_at.items():
        if rule in active_rules:
            continue
        marks.append(AlertMark(firing.ts, firing.ts, rule, firing.severity))
    for alert in active:
        start = open_at[alert.rule].ts if alert.rule in open_at else alert.since
        marks.append(AlertMark(min(start, alert.since), None, alert.rule, alert.severity))
    return [m for m in marks if m.end_s is None or m.end_s >= since_s]


def incident_window(
    events: Sequence[AlertEvent],
    now: float | None = None,
    lead_ms: int = INCIDENT_LEAD_MS,
) -> tuple[int, int] | None:
    """The time range (epoch ms) a snapshot of the latest incident should cover.

    Each firing is paired with the next resolution of its rule (or ``now``
    when it has none: still firing). The incident is the run of overlapping
    firing intervals that holds the most recent firing; the window runs from
    its first firing minus ``lead_ms`` (5 minutes) to its last resolution, or
    to ``now`` while any of it is still firing. None when there is no firing.
    The events may come in any order; a resolution whose firing is not among
    them is ignored.
    """
    now_ms = round((time.time() if now is None else now) * 1000)
    open_since: dict[str, int] = {}
    intervals: list[tuple[int, int]] = []
    for event in in_effect_order(events, open_since):
        if event.kind == "firing":
            open_since.setdefault(event.rule, event.ts_ms)
        elif event.rule in open_since:
            intervals.append((open_since.pop(event.rule), event.ts_ms))
    intervals.extend((start, max(start, now_ms)) for start in open_since.values())
    if not intervals:
        return None
    intervals.sort()
    start, end = intervals[-1]
    # Walk back through earlier intervals that overlap the incident.
    for earlier_start, earlier_end in reversed(intervals[:-1]):
        if earlier_end >= start:
            start = min(start, earlier_start)
            end = max(end, earlier_end)
    return start - lead_ms, end
