"""The incident snapshot's summary: a plain model, the tallies that build it, and its HTML.

The snapshot writer streams entries, audit records and alert events through
the tallies here (:class:`FailedPaymentTally`, :class:`ActionTally`), which
keep counts and a bounded number of rows for the report, and then renders
:class:`ReportSummary` with ``resources/snapshot_report.html.j2`` (Jinja2,
autoescaped). The page is self-contained: inline CSS, charts as ``data:``
URIs, no scripts, no external resources, print-friendly.

Every figure the tests compare with the bundle's files is written in an
element with a stable id and its raw number in ``data-value``
(``<td id="count-failed-payments" data-value="42">42</td>``); see
:data:`COUNT_IDS`.

Values put into the summary must already be masked (the tallies mask what
they take); autoescaping protects the page, not the card data.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import jinja2

from resources import resource_path
from services.alerts.model import AlertEvent
from services.masking.json import mask_optional_text
from services.snapshot.model import FiringSpan
from services.time_range import format_duration, format_local_time, format_utc, iso_utc
from services.workbench.cause import failure_group
from services.workbench.failure_groups import FailureGroupTally
from services.workbench.model import AUDIT_STARTED, AuditRecord, EntrySummary

TEMPLATE_NAME: Final = "snapshot_report.html.j2"
TOP_REASONS: Final = 15
TOP_MERCHANTS: Final = 20
TOP_REASON_QUEUES: Final = 30
TOP_FAILURE_GROUPS: Final = 30
MAX_TABLE_ROWS: Final = 500
"""Most alert events / operator actions listed in the report (the JSONL files hold all)."""

COUNT_IDS: Final = {
    "seconds": "count-seconds",
    "events": "count-events",
    "dead_letters": "count-dead-letters",
    "failed_payments": "count-failed-payments",
    "audit_records": "count-audit-records",
    "alert_events": "count-alert-events",
}
"""Element ids of the figures that match the bundle's files."""


@dataclass(frozen=True, slots=True)
class CountRow:
    """A label, how many, and its share of the table's total (percent)."""

    label: str
    count: int
    share_pct: float | None = None
    flagged: bool = False  # e.g. a failure status


@dataclass(frozen=True, slots=True)
class ReasonQueueRow:
    """Dead-lettered payments of one reason from one origin queue."""

    reason: str
    origin_queue: str
    count: int


@dataclass(frozen=True, slots=True)
class FailureGroupRow:
    """One failure group of the failed payments (masked; times as shown)."""

    group: str
    count: int
    open: int
    amount_at_risk: str
    merchants: int
    first_seen: str
    last_seen: str
    sources: str
    example: str


@dataclass(frozen=True, slots=True)
class MerchantRow:
    """A merchant with failed payments: how many, and their summed amount per currency."""

    merchant: str
    count: int
    amounts: tuple[str, ...]  # "1,234.50 EUR", one per currency


@dataclass(frozen=True, slots=True)
class AlertSpanRow:
    """A stretch of time an alert rule was firing within the range."""

    rule: str
    severity: str
    start: str
    end: str
    duration: str
    started_before: bool
    still_firing: bool


@dataclass(frozen=True, slots=True)
class AlertEventRow:
    """One alert transition, as listed in the report."""

    time_local: str
    time_utc: str
    rule: str
    kind: str
    severity: str
    value: str
    message: str


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One operator action (an audit record), as listed in the report."""

    time_local: str
    dlq: str
    operator: str
    host: str
    action: str
    entries: int
    target: str
    result: str
    detail: str


@dataclass(frozen=True, slots=True)
class ChartImage:
    """One chart embedded in the page."""

    name: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True, slots=True)
class BundleFile:
    """A file of the bundle, listed at the end of the report."""

    name: str
    description: str
    rows: int | None = None


@dataclass(frozen=True)
class ReportSummary:
    """Everything report.html shows (already masked)."""

    profile_name: str
    tool_version: str
    created_at_s: float
    from_s: int
    to_s: int
    # the flow (history)
    seconds: int
    seconds_with_data: int
    events: int
    statuses: tuple[CountRow, ...]
    failure_statuses: tuple[str, ...]
    failures: int
    dead_letters: int
    peak_events_per_s: int
    peak_at_s: int | None
    max_p99_ms: float | None
    failure_reasons: tuple[CountRow, ...]
    failure_reasons_total: int
    # failed payments (the parking store)
    failed_payments: int
    parked_in_range: int
    acted_on_earlier: int
    dead_letter_queues_configured: tuple[str, ...]
    entry_states: tuple[CountRow, ...]
    reason_queues: tuple[ReasonQueueRow, ...]
    reason_queues_total: int
    merchants: tuple[MerchantRow, ...]
    merchants_total: int
    origin_queues: tuple[CountRow, ...]
    dead_letter_queues: tuple[CountRow, ...]
    # alerts and actions
    alert_spans: tuple[AlertSpanRow, ...]
    alert_events: tuple[AlertEventRow, ...]
    alert_events_total: int
    alerts_fired: int
    actions: tuple[ActionRow, ...]
    audit_records: int  # every audit record of the range (audit.jsonl)
    actions_total: int  # finished actions (see ``ActionTally``)
    actions_by_kind: tuple[CountRow, ...]
    actions_unfinished: int
    # charts and files
    charts: tuple[ChartImage, ...] = ()
    charts_note: str = ""
    files: tuple[BundleFile, ...] = ()
    failure_groups: tuple[FailureGroupRow, ...] = ()
    failure_groups_total: int = 0

    @property
    def failure_rate_pct(self) -> float | None:
        return self.failures / self.events * 100.0 if self.events else None

    @property
    def headline(self) -> str:
        """The range in one line: the date once when it starts and ends the same day."""
        start, end = self.range_local
        if start[:10] == end[:10] and start[19:] == end[19:]:
            return f"{start[:19]} → {end[11:19]} {end[20:]}"
        return f"{start} → {end}"

    @property
    def range_local(self) -> tuple[str, str]:
        return format_local_time(self.from_s), format_local_time(self.to_s)

    @property
    def range_utc(self) -> tuple[str, str]:
        return format_utc(self.from_s), format_utc(self.to_s)

    @property
    def duration(self) -> str:
        return format_duration(self.to_s - self.from_s)

    @property
    def created_local(self) -> str:
        return format_local_time(self.created_at_s)

    @property
    def created_utc(self) -> str:
        return format_utc(self.created_at_s)

    @property
    def counts(self) -> dict[str, int]:
        """The figures that must match the bundle's files, by :data:`COUNT_IDS` key."""
        return {
            "seconds": self.seconds,
            "events": self.events,
            "dead_letters": self.dead_letters,
            "failed_payments": self.failed_payments,
            "audit_records": self.audit_records,
            "alert_events": self.alert_events_total,
        }


# --------------------------------------------------------------------------- tallies


def count_rows(
    counts: Mapping[str, int], *, top: int | None = None, flagged: Iterable[str] = ()
) -> tuple[CountRow, ...]:
    """Rows by count (largest first, then by label) with their shares; ``top`` keeps the
    largest and sums the rest into one ``other`` row."""
    total = sum(counts.values())
    marked = {f.lower() for f in flagged}
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    rest = 0
    if top is not None and len(ordered) > top:
        rest = sum(n for _, n in ordered[top - 1 :])
        ordered = ordered[: top - 1]

    def share(n: int) -> float | None:
        return n / total * 100.0 if total else None

    rows = [CountRow(label, n, share(n), label.lower() in marked) for label, n in ordered]
    if rest:
        rows.append(CountRow(f"other ({len(counts) - len(ordered)})", rest, share(rest)))
    return tuple(rows)


TAP_OTHER_REASON: Final = "other"
"""What the tap counts reasons under once it has told its most apart
(``services.flow.aggregator.OTHER_REASON``)."""


def failure_reason_rows(
    reasons: Mapping[str, int], *, top: int = TOP_REASONS
) -> tuple[CountRow, ...]:
    """The failure events' reasons by failure group (``timeout after # ms on acq-#``, not
    each number apart), largest first; the rest and the reasons the tap did not tell apart
    (its own ``other``) in one ``other`` row, last."""
    groups: Counter[str] = Counter()
    untold = 0
    for reason, count in reasons.items():
        if reason == TAP_OTHER_REASON:
            untold += count
        else:
            groups[failure_group(reason)] += count
    total = sum(groups.values()) + untold
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = top - 1 if untold or len(ordered) > top else top
    shown, rest = ordered[:keep], ordered[keep:]
    rows = [CountRow(label, n, n / total * 100.0) for label, n in shown]
    rest_count = sum(n for _, n in rest) + untold
    if rest_count:
        parts = [f"{len(rest)} more groups"] if rest else []
        if untold:
            parts.append("reasons the tap did not tell apart")
        rows.append(CountRow(f"other ({', '.join(parts)})", rest_count, rest_count / total * 100.0))
    return tuple(rows)


def _amount_text(value: float) -> str:
    return f"{value:,.2f}"


_masked_texts = lru_cache(maxsize=8192)(mask_optional_text)


def _masked(text: str | None) -> str:
    """``mask_optional_text``, a text remembered: a range's reasons, queues, merchants and
    currencies repeat (the masking is a function of the text alone)."""
    return _masked_texts(text) if type(text) is str else mask_optional_text(text)


@dataclass
class FailedPaymentTally:
    """Counts over the exported failed payments (fed one summary at a time)."""

    total: int = 0
    parked_in_range: int = 0
    states: Counter[str] = field(default_factory=Counter)
    reason_queues: Counter[tuple[str, str]] = field(default_factory=Counter)
    merchants: Counter[str] = field(default_factory=Counter)
    merchant_amounts: dict[str, dict[str, float]] = field(default_factory=dict)
    origin_queues: Counter[str] = field(default_factory=Counter)
    dlqs: Counter[str] = field(default_factory=Counter)
    groups: FailureGroupTally = field(default_factory=FailureGroupTally)

    def add(self, summary: EntrySummary, *, in_range: bool) -> None:
        """Count one exported entry (``in_range``: parked within the range)."""
        self.total += 1
        self.groups.add(summary)
        self.parked_in_range += in_range
        self.states[str(summary.state)] += 1
        reason = _masked(summary.reason) or "(unknown)"
        origin = _masked(summary.origin_queue) or "(unknown)"
        self.reason_queues[(reason, origin)] += 1
        self.origin_queues[origin] += 1
        self.dlqs[summary.dlq] += 1
        merchant = _masked(summary.merchant) or "(unknown)"
        self.merchants[merchant] += 1
        if summary.amount_value is not None and math.isfinite(summary.amount_value):
            currency = _masked(summary.currency) or "?"
            sums = self.merchant_amounts.setdefault(merchant, {})
            sums[currency] = sums.get(currency, 0.0) + summary.amount_value

    def merchant_rows(self) -> tuple[MerchantRow, ...]:
        rows = []
        for merchant, count in sorted(self.merchants.items(), key=lambda kv: (-kv[1], kv[0]))[
            :TOP_MERCHANTS
        ]:
            sums = self.merchant_amounts.get(merchant, {})
            amounts = tuple(f"{_amount_text(v)} {c}" for c, v in sorted(sums.items()))
            rows.append(MerchantRow(merchant, count, amounts))
        return tuple(rows)

    def failure_group_rows(self) -> tuple[FailureGroupRow, ...]:
        """The largest failure groups, masked, times in local time with their zone."""
        rows = []
        for group in self.groups.stats()[:TOP_FAILURE_GROUPS]:
            sources = ", ".join(
                f"{source.replace('_', '-')} {count:,}"
                for source, count in sorted(group.sources.items(), key=lambda kv: -kv[1])
            )
            rows.append(
                FailureGroupRow(
                    group=mask_optional_text(group.group) or "(unknown)",
                    count=group.count,
                    open=group.open,
                    amount_at_risk=mask_optional_text(group.amount_text),
                    merchants=group.merchants,
                    first_seen=format_local_time(group.first_seen_ms / 1000),
                    last_seen=format_local_time(group.last_seen_ms / 1000),
                    sources=sources,
                    example=mask_optional_text(group.example),
                )
            )
        return tuple(rows)

    def reason_queue_rows(self) -> tuple[ReasonQueueRow, ...]:
        ordered = sorted(self.reason_queues.items(), key=lambda kv: (-kv[1], kv[0]))
        return tuple(ReasonQueueRow(r, q, n) for (r, q), n in ordered[:TOP_REASON_QUEUES])


@dataclass
class ActionTally:
    """Counts over the audit records of the range, and the first rows for the report.

    ``records`` counts every audit record (the lines of audit.jsonl) and
    ``rows`` lists the first of them. An action counts once it finished:
    ``total`` and ``kinds`` count the finished actions, one per action id
    (an action over several dead-letter queues writes a record in each), not
    the ``started`` records an action writes before it claims anything.
    ``unfinished`` counts the actions started in the range without a record of
    their end in it (still running at its end, or interrupted).
    """

    records: int = 0
    total: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rows: list[ActionRow] = field(default_factory=list)
    _started: set[tuple[str, str]] = field(default_factory=set)
    _finished: set[tuple[str, str]] = field(default_factory=set)

    @property
    def unfinished(self) -> int:
        return len(self._started - self._finished)

    def add(self, record: AuditRecord, dlq: str) -> None:
        self.records += 1
        action = mask_optional_text(record.action) or "(unknown)"
        key = (action, record.action_id or f"{dlq}/{record.stream_id or self.records}")
        if record.result == AUDIT_STARTED:
            self._started.add(key)
        elif key not in self._finished:
            self._finished.add(key)
            self.total += 1
            self.kinds[action] += 1
        if len(self.rows) < MAX_TABLE_ROWS:
            self.rows.append(
                ActionRow(
                    time_local=format_local_time(record.ts / 1000),
                    dlq=dlq,
                    operator=mask_optional_text(record.operator),
                    host=mask_optional_text(record.host),
                    action=action,
                    entries=len(record.entry_ids),
                    target=mask_optional_text(record.target),
                    result=mask_optional_text(record.result),
                    detail=mask_optional_text(record.detail),
                )
            )


def alert_span_row(firing: FiringSpan) -> AlertSpanRow:
    """A stretch an alert rule was firing, as listed in the report."""
    s = firing.span
    return AlertSpanRow(
        rule=mask_optional_text(s.rule),
        severity=s.severity,
        start=format_local_time(s.start_s),
        end=format_local_time(s.end_s),
        duration=format_duration(s.end_s - s.start_s),
        started_before=firing.started_before,
        still_firing=firing.still_firing,
    )


def alert_event_row(event: AlertEvent) -> AlertEventRow:
    """One alert event, as listed in the report."""
    return AlertEventRow(
        time_local=format_local_time(event.ts),
        time_utc=iso_utc(event.ts_ms),
        rule=mask_optional_text(event.rule),
        kind=event.kind,
        severity=event.severity,
        value="" if event.value is None else f"{event.value:,.4g}",
        message=mask_optional_text(event.message),
    )


# --------------------------------------------------------------------------- rendering


def _number(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f} %"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _number
    env.filters["pct"] = _percent
    env.filters["ms"] = _ms
    env.filters["local"] = format_local_time
    env.globals["count_ids"] = COUNT_IDS
    return env.from_string(resource_path(TEMPLATE_NAME).read_text(encoding="utf-8"))


def render_report(summary: ReportSummary) -> str:
    """report.html for ``summary``: one self-contained page."""
    return _template().render(s=summary)
