"""What ``payops dlq`` prints: the entry table, one entry in full, reports, audit lines, JSON.

Card numbers are masked in every output, ``--json`` included: the free text of
entries, reports and audit records goes through
:func:`~services.masking.json.mask_sensitive_text`, message data (properties, headers,
a JSON body) through :func:`~services.masking.message.mask_untrusted`, nothing CVV-like
shown. Payment, message and correlation ids are identifiers
(:func:`~services.masking.json.mask_identifier`): ``pay_17d5570756950439`` is shown whole.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final, TextIO

from app.cli.progress import overwrite_line
from services.config import FieldPaths
from services.masking.json import (
    ID_PROPERTIES,
    dumps_pretty,
    id_tree,
    mask_optional_identifier,
)
from services.masking.message import mask_untrusted
from services.time_range import format_local_time, iso_local
from services.workbench.actions.names import Action
from services.workbench.actions.recovery import RecoveredEntry, RecoveryReport
from services.workbench.actions.report import ActionOutcome, ActionReport
from services.workbench.body_format import body_content
from services.workbench.columns import CLI_COLUMNS, COLUMN
from services.workbench.death_history import earlier_deaths, earlier_hops, total_deaths
from services.workbench.failure_groups import FailureGroupStats
from services.workbench.model import AuditRecord, EntryState, EntrySummary, ParkedEntry
from services.workbench.shown import masked_escaped, shown_death

# --------------------------------------------------------------------------- values


def masked(text: str | None) -> str:
    """``text`` as parked data is shown: card data masked, bytes that were not UTF-8 and
    control characters as ``\\xNN`` (:func:`masked_escaped`; "" for None)."""
    return masked_escaped(text) if text else ""


def print_json(value: Any, stream: TextIO | None = None) -> None:
    """Print ``value`` as JSON; the callers mask its free text and payment data.

    Not masked wholesale: an epoch-ms timestamp or a hex id can pass the Luhn
    check and would be printed as a masked string.
    """
    print(json.dumps(_jsonable(value), indent=2, ensure_ascii=False), file=stream)


def _masked_texts(data: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """``data`` with the text values under ``keys`` masked."""
    for key in keys:
        if isinstance(data.get(key), str):
            data[key] = masked(data[key])
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "hex:" + bytes(value).hex()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, EntryState):
        return value.value
    return value


def _when(ms: int | None) -> str:
    """A moment for people: local time with its zone (``2024-05-17 14:05:31 CEST``)."""
    if not ms:
        return "-"
    return format_local_time(ms / 1000)


# --------------------------------------------------------------------------- list


_COLUMNS = tuple((column.cli_title, column.cli_width) for column in CLI_COLUMNS)


def _row(summary: EntrySummary) -> list[str]:
    amount = " ".join(p for p in (summary.amount, summary.currency) if p)
    cells = {
        "entry_id": summary.entry_id,
        "dead_lettered_at": _when(summary.dead_lettered_at_ms),
        "payment_id": mask_optional_identifier(summary.payment_id) or "-",
        "merchant": masked(summary.merchant) or "-",
        "amount": amount or "-",
        "reason": masked(summary.reason) or "-",
        "cause": _cut(masked(summary.cause) or "-", COLUMN["cause"].cli_width),
        "origin_queue": masked(summary.origin_queue) or "-",
        "attempts": str(summary.attempts),
        "state": str(summary.state),
        "last_operator": summary.last_operator or "",
    }
    return [cells[column.name] for column in CLI_COLUMNS]


def _cut(text: str, width: int) -> str:
    """``text`` in ``width`` characters (an ellipsis where it was cut)."""
    return text if len(text) <= width else text[: width - 1] + "…"


MAX_CELL_CHARS: Final = 40
"""A column is as wide as its widest cell, up to its usual width or this, whichever is
more; a longer cell is cut with an ellipsis."""


def print_table(summaries: Sequence[EntrySummary]) -> None:
    """The entries as a table with a header line, each column as wide as its cells (so a
    20-character payment id does not push the rest of its row out of line)."""
    rows = [_row(summary) for summary in summaries]
    caps = [max(width, MAX_CELL_CHARS) for _, width in _COLUMNS]
    rows = [[_cut(cell, cap) for cell, cap in zip(row, caps, strict=True)] for row in rows]
    widths = [
        max([len(title), *(len(row[i]) for row in rows)]) for i, (title, _) in enumerate(_COLUMNS)
    ]
    print("  ".join(name.ljust(w) for (name, _), w in zip(_COLUMNS, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def summary_json(summary: EntrySummary) -> dict[str, Any]:
    """One entry's summary for ``--json``."""
    data = dataclasses.asdict(summary)
    data["state"] = str(summary.state)
    data["dead_lettered_at"] = iso_local(summary.dead_lettered_at_ms)
    data["parked_at"] = iso_local(summary.parked_at_ms)
    for key in ("payment_id", "message_id"):
        data[key] = mask_optional_identifier(data[key]) or None
    # merchant comes masked from the summary; these are free text too.
    texts = ("reason", "origin_queue", "origin_exchange", "routing_key", "cause", "failure_group")
    return _masked_texts(data, texts)


# --------------------------------------------------------------------------- failure groups


_GROUP_COLUMNS: Final = (("ENTRIES", 7), ("OPEN", 6), ("AT RISK", 22), ("MERCHANTS", 9))


def print_groups(groups: Sequence[FailureGroupStats], limit: int, *, as_json: bool) -> None:
    """``dlq list --group-by cause``: one line (or JSON object) per failure group, most
    entries first, at most ``limit`` of them (stderr says when there were more)."""
    shown = groups[:limit]
    if as_json:
        print_json([group_json(group) for group in shown])
    else:
        head = "  ".join(name.rjust(width) for name, width in _GROUP_COLUMNS)
        print(f"{head}  {'FIRST SEEN'.ljust(24)}  {'LAST SEEN'.ljust(24)}  FAILURE GROUP")
        for group in shown:
            numbers = (str(group.count), str(group.open), group.amount_text, str(group.merchants))
            cells = "  ".join(
                value.rjust(width)
                for value, (_, width) in zip(numbers, _GROUP_COLUMNS, strict=True)
            )
            first, last = _when(group.first_seen_ms), _when(group.last_seen_ms)
            print(f"{cells}  {first.ljust(24)}  {last.ljust(24)}  {masked(group.group)}")
    if len(groups) > len(shown):
        print(
            f"payops: showing {len(shown):,} of {len(groups):,} failure groups (use --limit)",
            file=sys.stderr,
        )


def group_json(group: FailureGroupStats) -> dict[str, Any]:
    """One failure group for ``--json``."""
    return {
        "failure_group": masked(group.group),
        "entries": group.count,
        "open": group.open,
        "amount_at_risk": {
            currency: f"{amount:.2f}" for currency, amount in sorted(group.amount_at_risk.items())
        },
        "merchants": group.merchants,
        "first_seen": iso_local(group.first_seen_ms),
        "last_seen": iso_local(group.last_seen_ms),
        "cause_sources": dict(sorted(group.sources.items())),
        "example_cause": masked(group.example),
    }


# --------------------------------------------------------------------------- show


def _headers(entry: ParkedEntry) -> Any:
    """The headers but ``x-death`` (shown apart), masked as message data."""
    return mask_untrusted({k: v for k, v in entry.record.headers.items() if k != "x-death"})


def _outcome_json(entry: ParkedEntry) -> dict[str, Any] | None:
    """What became of the payment after the last action, for ``--json``."""
    if entry.outcome is None:
        return None
    data = entry.outcome.as_json()
    data["detail"] = masked(entry.outcome.detail) or None
    data["at"] = iso_local(entry.outcome.at_ms)
    return data


def entry_json(
    entry: ParkedEntry, audit: Sequence[AuditRecord], fields: FieldPaths | None = None
) -> dict[str, Any]:
    """One entry in full for ``--json`` (``fields``: the profile's, where its ids are)."""
    ids = id_tree((fields or FieldPaths()).id_paths)
    kind, shown = body_content(entry.record.body, ids=ids)
    return {
        "entry": summary_json(entry.summary),
        "action": entry.action,
        "action_id": entry.action_id,
        "operator": entry.operator,
        "detail": masked(entry.detail),
        "last_error": masked(entry.last_error),
        "outcome": _outcome_json(entry),
        "updated_at_ms": entry.updated_at_ms,
        "updated_at": iso_local(entry.updated_at_ms or None),
        "exchange": masked(masked_escaped(entry.record.exchange)),  # not UTF-8: \xNN
        "routing_key": masked(masked_escaped(entry.record.routing_key)),
        "properties": mask_untrusted(entry.record.properties, ID_PROPERTIES),
        "headers": _headers(entry),
        "x_death": [
            {**dataclasses.asdict(d), "routing_keys": list(d.routing_keys)}
            for d in map(shown_death, entry.deaths)
        ],
        "earlier_deaths": earlier_deaths(entry.record.headers),
        "total_deaths": total_deaths(entry.record.headers),
        "body": {"kind": kind, "size": len(entry.record.body), "content": shown},
        "audit": [audit_json(a, entry.dlq) for a in audit],
    }


def entry_text(
    entry: ParkedEntry, audit: Sequence[AuditRecord], fields: FieldPaths | None = None
) -> str:
    """One entry in full, for people (``fields``: the profile's, where its ids are)."""
    s = entry.summary
    by = f" by {s.last_operator}" if s.last_operator else ""
    out = [
        f"entry        {s.entry_id}  ({s.state}{by})",
        f"payment      {mask_optional_identifier(s.payment_id) or '-'}",
        f"merchant     {masked(s.merchant) or '-'}",
        f"amount       {' '.join(p for p in (s.amount, s.currency) if p) or '-'}",
        f"reason       {masked(s.reason) or '-'} in queue {masked(s.origin_queue) or '-'}"
        f" (routing key {masked(s.routing_key) or '-'})"
        if s.origin_exchange is None
        else f"reason       {masked(s.reason) or '-'}; goes back through exchange"
        f" {masked(s.origin_exchange)} (routing key {masked(s.routing_key) or '-'})",
        f"cause        {masked(s.cause) or '-'}  (from {s.cause_source.replace('_', '-')})",
        f"group        {masked(s.failure_group) or '-'}",
        f"dead-letter  {_when(s.dead_lettered_at_ms)}, parked {_when(s.parked_at_ms)}"
        f" from {s.dlq}, attempts {s.attempts}",
    ]
    if entry.action:
        out.append(f"last action  {entry.action} ({entry.action_id}) {masked(entry.detail)}")
    if entry.last_error:
        out.append(f"last error   {masked(entry.last_error)}")
    if entry.outcome is not None:
        job = f"  (job {entry.outcome.job})" if entry.outcome.job else ""
        out.append(f"outcome      {masked(entry.outcome.text)}{job}")
    out.append("")
    out.append("properties")
    for key, value in mask_untrusted(entry.record.properties, ID_PROPERTIES).items():
        out.append(f"  {key}: {value if isinstance(value, str) else json.dumps(value)}")
    out.append("headers")
    for key, value in _headers(entry).items():
        out.append(f"  {key}: {json.dumps(value, ensure_ascii=False)}")
    out.append("x-death (most recent first)")
    for death in map(shown_death, entry.deaths):
        out.append(
            f"  {death.reason} in {death.queue} x{death.count}"
            f" at {format_local_time(death.time.timestamp()) if death.time else '-'}"
            f" (exchange {death.exchange or '(default)'},"
            f" routing keys {', '.join(death.routing_keys) or '-'})"
        )
    before = earlier_deaths(entry.record.headers)
    if before:
        out.append(
            f"earlier cycles: {before} deaths before earlier requeues (payops-deaths),"
            f" {total_deaths(entry.record.headers)} in all"
        )
        for death in map(shown_death, earlier_hops(entry.record.headers)):
            out.append(f"  {death.reason} in {death.queue} x{death.count}")
    kind, content = body_content(entry.record.body, ids=id_tree((fields or FieldPaths()).id_paths))
    out.append(f"body ({kind}, {len(entry.record.body):,} bytes)")
    if kind == "json":
        out.append(dumps_pretty(content))
    elif content:
        out.append(str(content))
    out.append("audit trail")
    if not audit:
        out.append("  (none)")
    for record in audit:
        out.append(f"  {audit_line(record)}")
    return "\n".join(out)


# --------------------------------------------------------------------------- actions


def action_progress(action: Action) -> Callable[[int, int, int], None] | None:
    """A progress callback for an action, on a terminal only."""
    if not sys.stderr.isatty():
        return None
    verb = action.past

    def show(done: int, total: int, failed: int) -> None:
        overwrite_line(
            f"{action}: {done:,}/{total:,} {verb if done else ''}"
            f"{f' ({failed:,} failed)' if failed else ''}   "
        )

    return show


def print_failures(report: ActionReport, stream: TextIO) -> None:
    """The first 20 failures of ``report``, then the reasons of the rest."""
    problems = [o for o in report.outcomes if o.status == "failed"]
    for outcome in problems[:20]:
        payment = f" ({mask_optional_identifier(outcome.payment_id)})" if outcome.payment_id else ""
        print(f"failed {outcome.entry_id}{payment}: {masked(outcome.detail)}", file=stream)
    if len(problems) > 20:
        print(f"... and {len(problems) - 20:,} more failures:", file=stream)
        for text, count in report.reasons("failed"):
            print(f"  {count:,} x {masked(text)}", file=stream)


def print_outcomes(report: ActionReport, stream: TextIO | None = None) -> None:
    """What the action did, one line per kind of outcome (masked): ``1,200 requeued to
    payments.capture``, ``3 skipped: already requeued by alice``, ``2 failed: ...``."""
    for line in report.outcome_lines():
        print(masked(line), file=stream)


def dry_line(report: ActionReport) -> str:
    """What a dry run would have done, in one line."""
    would = [o for o in report.outcomes if o.detail.startswith("dry run:")]
    skipped = [o for o in report.outcomes if o.status == "skipped" and o not in would]
    failed = [o for o in report.outcomes if o.status == "failed"]
    verb = report.action.past
    parts = [f"would have {verb} {len(would):,}"]
    reasons = sorted({o.detail for o in skipped})
    parts.append(
        f"would skip {len(skipped):,}" + (f" ({'; '.join(reasons[:3])})" if reasons else "")
    )
    if failed:
        parts.append(
            f"would fail {len(failed):,} ({'; '.join(sorted({o.detail for o in failed})[:3])})"
        )
    return masked("dry run: " + ", ".join(parts))


# --------------------------------------------------------------------------- recover


def recovery_json(report: RecoveryReport) -> dict[str, Any]:
    """A recovery report for ``--json``."""
    return {
        name: [
            {
                **_masked_texts(dataclasses.asdict(e), ("note",)),
                "payment_id": mask_optional_identifier(e.payment_id) or None,
            }
            for e in getattr(report, name)
        ]
        for name in ("released", "in_doubt", "in_progress")
    }


def print_recovery(report: RecoveryReport) -> None:
    """A recovery report for people, with how to settle what is in doubt."""
    print(report.headline())
    for name, entries in (
        ("released", report.released),
        ("in doubt", report.in_doubt),
        ("in progress", report.in_progress),
    ):
        for e in entries:
            payment = f" ({mask_optional_identifier(e.payment_id)})" if e.payment_id else ""
            print(f"  {name}: {e.entry_id}{payment} {e.action} by {e.operator}: {masked(e.note)}")
    if report.in_doubt:
        print(
            "resolve each with `payops dlq resolve ID --delivered` (it is in the target"
            " queue), `--republish` (send it again with the same action id) or"
            " `--release` (it is not there: back to parked); all at once with"
            " `payops dlq resolve --all-in-doubt --dry-run`, then `--republish`"
        )


RESOLVE_VERBS: Final = {
    "republish": "republish",
    "delivered": "mark as delivered",
    "release": "release back to parked",
}
_RESOLVED = {"republish": "republished", "delivered": "marked delivered", "release": "released"}


def print_in_doubt(
    found: Sequence[RecoveredEntry], report: RecoveryReport, how: str | None, matching: str
) -> None:
    """The in-doubt entries ``resolve --all-in-doubt`` covers, what is known of each, and
    which choice is safe (stdout); what recovery did besides (stderr)."""
    if report.released:
        print(
            f"payops: recovery released {len(report.released):,} entries never sent"
            " (back to parked)",
            file=sys.stderr,
        )
    if report.in_progress:
        print(
            f"payops: {len(report.in_progress):,} entries are held by an action still running"
            " (left alone)",
            file=sys.stderr,
        )
    for e in found:
        payment = f" ({masked(e.payment_id)})" if e.payment_id else ""
        print(
            f"  in doubt: {e.entry_id}{payment} {e.action} by {e.operator} -> {e.target or '?'}"
            f" at {_when(e.since_ms)}: unconfirmed"
        )
    if not found:
        print(f"no entries in doubt ({matching})")
        return
    print(
        f"{len(found):,} in doubt ({matching}); confirmed by the broker: 0, unconfirmed:"
        f" {len(found):,}. Every confirm is recorded as it arrives, so these are the"
        " publishes RabbitMQ had not confirmed when the action stopped: each message may"
        " or may not be in its queue, and a queue cannot be searched without consuming it."
    )
    print(
        "Safe: --republish (the copy carries the same payops-action-id, so a consumer that"
        " de-duplicates on it processes the payment once). --release risks a second copy"
        " later (one may be in the queue already); --delivered loses those that never"
        " arrived." + (f" Chosen: {RESOLVE_VERBS[how]}." if how else "")
    )


def print_resolved(outcomes: Sequence[ActionOutcome], how: str) -> int:
    """The result of ``resolve --all-in-doubt``: failures on stderr, a summary; how many
    failed."""
    counts = {status: sum(1 for o in outcomes if o.status == status) for status in _STATUSES}
    for outcome in [o for o in outcomes if o.status == "failed"][:20]:
        print(f"failed {outcome.entry_id}: {masked(outcome.detail)}", file=sys.stderr)
    line = (
        f"{_RESOLVED[how]} {counts['done']:,}, skipped {counts['skipped']:,},"
        f" failed {counts['failed']:,}"
    )
    print(line)
    if counts["failed"]:
        print(f"payops: {line}", file=sys.stderr)
    return counts["failed"]


_STATUSES: Final = ("done", "skipped", "failed")


# --------------------------------------------------------------------------- audit


def audit_json(record: AuditRecord, dlq: str) -> dict[str, Any]:
    """One audit record for ``--json``."""
    data = dataclasses.asdict(record)
    data["dlq"] = dlq
    data["time"] = iso_local(record.ts)
    data["entry_ids"] = list(record.entry_ids)
    data["target"] = masked(record.target)
    data["detail"] = masked(record.detail)
    return data


def audit_line(record: AuditRecord) -> str:
    """One audit record in one line."""
    entries = (
        record.entry_ids[0] if len(record.entry_ids) == 1 else f"{len(record.entry_ids):,} entries"
    )
    detail = masked(record.detail).replace("\n", "; ")
    return (
        f"{_when(record.ts)}  {record.operator}@{record.host}  {record.action}  {entries}"
        f"  {masked(record.target)}  {record.result}{'  ' + detail if detail else ''}"
    )
