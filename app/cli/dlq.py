"""``payops dlq ...``: the failed-payments workbench on the command line.

Shares the console's services: the parker, the parking store, the entry
index for filters, and :class:`~services.workbench.actions.service.ActionService` for
requeue / retry / cancel (exactly once, audited) and crash recovery.

Exit codes (:mod:`app.cli.exit_codes`): 0 everything asked for succeeded (entries
someone else had already acted on are skipped, not failed); 1 something
failed (the summary on stderr says what and why), or recovery left entries
in doubt; 2 usage, configuration or a refusal (read-only, no ``--yes``
without a terminal, missing ``--reason``); 3 RabbitMQ or Redis unreachable.
Card numbers are masked in every output, ``--json`` included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from app.cli import exit_codes
from services.config import ConfigError, Profile, load_profile
from services.masking.json import dumps_pretty, loads_exact, mask_json, mask_sensitive_text
from services.workbench.actions.publisher import ActionPublisher, AmqpUnavailable
from services.workbench.actions.recovery import RecoveryReport
from services.workbench.actions.report import ActionName, ActionPlan, ActionReport
from services.workbench.actions.service import (
    ActionRefused,
    ActionService,
    default_operator,
    summary_line,
)
from services.workbench.index import ActionTarget, EntryIndex, Query
from services.workbench.model import AuditRecord, EntryState, EntrySummary, ParkedEntry, body_kind
from services.workbench.store import ParkingStore

T = TypeVar("T")

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_VERBS = {"requeue": "requeued", "retry": "retried", "cancel": "cancelled"}


class Unreachable(Exception):
    """RabbitMQ or Redis could not be reached (exit 3)."""


class Refused(Exception):
    """The command refuses to go on (exit 2)."""


# --------------------------------------------------------------------------- parsing


def parse_time(text: str, *, now: datetime.datetime | None = None) -> int:
    """``1h``/``30m``/``2d`` ago, or an ISO-8601 time (local when naive): epoch ms."""
    moment = now or datetime.datetime.now(datetime.UTC)
    match = _RELATIVE.match(text)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
        return int((moment - datetime.timedelta(seconds=seconds)).timestamp() * 1000)
    try:
        parsed = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use ISO-8601 like 2024-05-01T12:00 or relative like 1h, 30m)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return int(parsed.timestamp() * 1000)


def _amount(text: str) -> float:
    try:
        return float(Decimal(text))
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None


def _delay(text: str) -> int:
    match = _RELATIVE.match(text)
    try:
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a delay: {text!r} (seconds, or 30s, 5m)") from None
    if seconds < 1 or seconds != int(seconds):
        raise argparse.ArgumentTypeError(f"a delay is a whole number of seconds >= 1: {text!r}")
    return int(seconds)


def _states(text: str) -> list[EntryState]:
    states = []
    for part in text.split(","):
        name = part.strip().lower()
        try:
            states.append(EntryState(name))
        except ValueError:
            names = ", ".join(s.value for s in EntryState)
            raise argparse.ArgumentTypeError(f"unknown state {name!r} (one of {names})") from None
    return states


def _add_filters(parser: argparse.ArgumentParser, *, reason_flag: bool = True) -> None:
    """The filters; ``cancel`` keeps ``--reason`` for its own reason, so there the
    dead-letter reason is ``--dead-letter-reason`` only."""
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--state",
        type=_states,
        action="append",
        default=[],
        metavar="STATE",
        help="parked, claimed, requeued, retried, cancelled (repeat or comma-separate)",
    )
    flags = ("--reason", "--dead-letter-reason") if reason_flag else ("--dead-letter-reason",)
    group.add_argument(
        *flags,
        dest="reason",
        action="append",
        default=[],
        help="dead-letter reason: rejected, expired, maxlen, delivery_limit",
    )
    group.add_argument("--queue", action="append", default=[], help="the queue the message died in")
    group.add_argument("--dlq", action="append", default=[], help="the dead-letter queue")
    group.add_argument("--merchant", action="append", default=[], help="merchant (exact)")
    group.add_argument("--search", default="", metavar="TEXT", help="free text (payment id ...)")
    group.add_argument("--since", type=parse_time, metavar="TIME", help="dead-lettered since")
    group.add_argument("--until", type=parse_time, metavar="TIME", help="dead-lettered before")
    group.add_argument("--min-amount", type=_amount, metavar="AMOUNT")
    group.add_argument("--max-amount", type=_amount, metavar="AMOUNT")


def query_from(args: argparse.Namespace, *, default_states: Sequence[EntryState] = ()) -> Query:
    states = [state for group in args.state for state in group] or list(default_states)
    return Query(
        text=args.search,
        states=frozenset(states),
        reasons=frozenset(args.reason),
        dlqs=frozenset(args.dlq),
        queues=frozenset(args.queue),
        merchants=frozenset(args.merchant),
        dead_from_ms=args.since,
        dead_until_ms=args.until,
        amount_min=args.min_amount,
        amount_max=args.max_amount,
    )


def _has_filters(args: argparse.Namespace) -> bool:
    return bool(
        args.state
        or args.reason
        or args.queue
        or args.dlq
        or args.merchant
        or args.search
        or args.since is not None
        or args.until is not None
        or args.min_amount is not None
        or args.max_amount is not None
    )


# --------------------------------------------------------------------------- parser


def add_dlq_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common_parent: argparse.ArgumentParser,
) -> None:
    """Register ``payops dlq ...`` (call from ``app.cli.main.build_parser``)."""
    common = [common_parent]
    dlq = subparsers.add_parser(
        "dlq", parents=common, help="the failed-payments workbench: park, list, act, audit"
    )
    sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)

    park = sub.add_parser("park", parents=common, help="park dead letters into Redis")
    park.add_argument("--once", action="store_true", help="drain what is there, then exit")
    park.add_argument(
        "--queue", action="append", default=[], help="DLQ to park (default: the profile's)"
    )
    park.set_defaults(handler=_cmd_park)

    listing = sub.add_parser("list", parents=common, help="list parked entries")
    _add_filters(listing)
    listing.add_argument("--json", action="store_true", help="JSON output")
    listing.add_argument("--limit", type=int, default=100, help="rows to show (default 100)")
    listing.set_defaults(handler=_cmd_list)

    show = sub.add_parser("show", parents=common, help="one entry in full")
    show.add_argument("entry_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="JSON output")
    show.set_defaults(handler=_cmd_show)

    for action, text in (
        ("requeue", "send back, unchanged, to the queue each message died in"),
        ("retry", "a new attempt through the origin queue (attempt counter +1)"),
        ("cancel", "remove from the workbench, publishing payment.cancelled"),
    ):
        command = sub.add_parser(action, parents=common, help=text)
        command.add_argument("entry_ids", nargs="*", metavar="ID")
        command.add_argument(
            "--all-matching",
            action="store_true",
            help="every entry matching the filters (default state: parked)",
        )
        _add_filters(command, reason_flag=action != "cancel")
        if action == "retry":
            command.add_argument(
                "--delay", type=_delay, default=None, metavar="SECONDS", help="wait first (30, 5m)"
            )
            command.add_argument(
                "--edit-body",
                type=Path,
                metavar="FILE",
                help="send this JSON body instead (one entry; - reads stdin)",
            )
        if action == "cancel":
            command.add_argument(
                "--reason",
                dest="cancel_reason",
                required=True,
                metavar="TEXT",
                help="why (required; goes into the audit trail and the event)",
            )
        command.add_argument("--dry-run", action="store_true", help="say what would happen")
        command.add_argument("--yes", "-y", action="store_true", help="do not ask")
        command.add_argument("--read-only", action="store_true", help="refuse to act")
        command.set_defaults(handler=_cmd_action, action=action)

    recover = sub.add_parser("recover", parents=common, help="settle interrupted actions")
    recover.add_argument("--json", action="store_true")
    recover.add_argument("--read-only", action="store_true", help="only report")
    recover.set_defaults(handler=_cmd_recover)

    resolve = sub.add_parser("resolve", parents=common, help="settle one in-doubt entry")
    resolve.add_argument("entry_id", metavar="ID")
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--delivered", dest="how", action="store_const", const="delivered",
        help="the message is in its target queue: mark the action done",
    )  # fmt: skip
    how.add_argument(
        "--republish", dest="how", action="store_const", const="republish",
        help="publish it again with the same action id, then mark it done",
    )  # fmt: skip
    how.add_argument(
        "--release", dest="how", action="store_const", const="release",
        help="the message is not there: put the entry back to parked",
    )  # fmt: skip
    resolve.add_argument("--read-only", action="store_true", help="refuse to act")
    resolve.set_defaults(handler=_cmd_resolve)

    audit = sub.add_parser("audit", parents=common, help="the audit trail")
    audit.add_argument("--entry", metavar="ID", help="records naming this entry")
    audit.add_argument("--operator", metavar="NAME", help="records of this operator")
    audit.add_argument("--action", metavar="ACTION", help="requeue, retry, cancel, recover ...")
    audit.add_argument("--limit", type=int, default=50, help="records to show (default 50)")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(handler=_cmd_audit)


# --------------------------------------------------------------------------- plumbing


def _profile(args: argparse.Namespace) -> Profile:
    return load_profile(getattr(args, "config", None), getattr(args, "profile", None))


@contextlib.asynccontextmanager
async def _store(profile: Profile) -> AsyncIterator[ParkingStore]:
    client = aioredis.from_url(profile.redis_url, socket_connect_timeout=5)
    try:
        try:
            await client.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise Unreachable(f"cannot reach Redis at {profile.redis_display_url}: {exc}") from None
        yield ParkingStore(client, profile.redis_prefix)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def _action_service(profile: Profile, read_only: bool) -> AsyncIterator[ActionService]:
    """An ActionService on a reachable Redis, its publisher closed afterwards."""
    publisher = ActionPublisher(profile.amqp_url)
    try:
        async with _store(profile) as store:
            yield ActionService(
                store, publisher, profile, default_operator(profile), read_only=read_only
            )
    finally:
        await publisher.close()


def _run(args: argparse.Namespace, body: Callable[[Profile], Coroutine[Any, Any, int]]) -> int:
    profile = _profile(args)
    try:
        return asyncio.run(body(profile))
    except Unreachable as exc:
        print(f"payops: {exc}", file=sys.stderr)
        return exit_codes.UNAVAILABLE
    except AmqpUnavailable as exc:
        print(f"payops: {exc}", file=sys.stderr)
        return exit_codes.UNAVAILABLE
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        print(
            f"payops: lost Redis at {profile.redis_display_url}: {exc}",
            file=sys.stderr,
        )
        return exit_codes.UNAVAILABLE
    except (ActionRefused, Refused) as exc:
        print(f"payops: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    except ConfigError:
        raise


def _dlqs(profile: Profile) -> list[str]:
    if not profile.dead_letter_queues:
        raise ConfigError(
            f"profile '{profile.name}' ({profile.source}) names no dead_letter_queues"
        )
    return list(profile.dead_letter_queues)


def _masked(text: str | None) -> str:
    return mask_sensitive_text(text) if text else ""


def _print_json(value: Any, stream: TextIO | None = None) -> None:
    """Print ``value`` as JSON; the callers mask its free text and payment data.

    Not masked wholesale: an epoch-ms timestamp or a hex id can pass the Luhn
    check and would be printed as a masked string.
    """
    print(json.dumps(_jsonable(value), indent=2, ensure_ascii=False), file=stream)


def _masked_texts(data: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """``data`` with the text values under ``keys`` masked."""
    for key in keys:
        if isinstance(data.get(key), str):
            data[key] = _masked(data[key])
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
    if not ms:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


async def _index(store: ParkingStore, dlqs: Sequence[str]) -> EntryIndex:
    index = EntryIndex()
    for dlq in dlqs:
        async for batch in store.iter_summaries(dlq):
            index.add(batch)
    return index


# --------------------------------------------------------------------------- park


def _cmd_park(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        import aio_pika

        from services.workbench.parker import Parker, ParkerStats

        dlqs = args.queue or _dlqs(profile)
        try:
            connection = await aio_pika.connect(profile.amqp_url, timeout=10)
        except (TimeoutError, OSError) as exc:
            raise Unreachable(
                f"cannot reach RabbitMQ at {profile.amqp_display_url}: {exc}"
            ) from None
        tty = sys.stderr.isatty()

        def progress(stats: ParkerStats) -> None:
            if tty:
                print(
                    f"\r{stats.dlq}: parked {stats.parked:,}, already parked"
                    f" {stats.already_parked:,}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )

        try:
            async with _store(profile) as store:
                parkers = [Parker(store, dlq, profile.fields, on_progress=progress) for dlq in dlqs]
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.add_signal_handler(sig, _stopper(parkers))
                channels = [await connection.channel() for _ in parkers]
                if not args.once:
                    print(
                        f"payops: parking {', '.join(dlqs)} into Redis; Ctrl+C to stop",
                        file=sys.stderr,
                    )
                results = await asyncio.gather(
                    *(p.run(ch, once=args.once) for p, ch in zip(parkers, channels, strict=True)),
                    return_exceptions=True,
                )
        finally:
            await connection.close()
        if tty:
            print(file=sys.stderr)
        code = exit_codes.OK
        for dlq, result in zip(dlqs, results, strict=True):
            if isinstance(result, BaseException):
                print(f"payops: parking {dlq} failed: {result}", file=sys.stderr)
                code = exit_codes.FAILED
            else:
                print(f"{dlq}: parked {result.parked:,}, already parked {result.already_parked:,}")
        return code

    return _run(args, body)


def _stopper(parkers: Sequence[Any]) -> Callable[[], None]:
    def stop() -> None:
        for parker in parkers:
            parker.request_stop()

    return stop


# --------------------------------------------------------------------------- list / show


_COLUMNS = (
    ("ID", 20),
    ("DEAD-LETTERED", 19),
    ("PAYMENT", 18),
    ("MERCHANT", 16),
    ("AMOUNT", 14),
    ("REASON", 14),
    ("QUEUE", 20),
    ("TRIES", 5),
    ("STATE", 9),
    ("BY", 10),
)


def _row(summary: EntrySummary) -> list[str]:
    amount = " ".join(p for p in (summary.amount, summary.currency) if p)
    return [
        summary.entry_id,
        _when(summary.dead_lettered_at_ms),
        _masked(summary.payment_id) or "-",
        _masked(summary.merchant) or "-",
        amount or "-",
        summary.reason or "-",
        _masked(summary.origin_queue) or "-",
        str(summary.attempts),
        str(summary.state),
        summary.last_operator or "",
    ]


def _summary_json(summary: EntrySummary) -> dict[str, Any]:
    data = dataclasses.asdict(summary)
    data["state"] = str(summary.state)
    # payment_id and merchant come masked from the summary; these are free text too.
    return _masked_texts(data, ("reason", "origin_queue", "routing_key", "message_id"))


def _cmd_list(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        query = query_from(args)
        dlqs = sorted(query.dlqs) or _dlqs(profile)
        async with _store(profile) as store:
            index = await _index(store, dlqs)
        rows = index.query(query)
        shown = index.rows(rows[: max(args.limit, 0)])
        if args.json:
            _print_json([_summary_json(s) for s in shown])
        else:
            print("  ".join(name.ljust(width) for name, width in _COLUMNS).rstrip())
            for summary in shown:
                cells = _row(summary)
                print(
                    "  ".join(
                        cell.ljust(width) for cell, (_, width) in zip(cells, _COLUMNS, strict=True)
                    ).rstrip()
                )
        if len(rows) > len(shown):
            print(
                f"payops: showing {len(shown):,} of {len(rows):,} matching entries (use --limit)",
                file=sys.stderr,
            )
        return exit_codes.OK

    return _run(args, body)


def _hex_dump(data: bytes, limit: int = 4096) -> str:
    # Card numbers are masked in the bytes themselves first, so neither the hex
    # nor the text column shows one.
    text = mask_sensitive_text(data[:limit].decode("latin-1")).encode("latin-1", "replace")
    lines = []
    for offset in range(0, len(text), 16):
        chunk = text[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {shown}")
    if len(data) > limit:
        lines.append(f"... {len(data) - limit:,} more bytes")
    return "\n".join(lines)


def _body_view(body: bytes) -> tuple[str, Any]:
    kind, _ = body_kind(body)
    if kind == "json":
        try:
            return kind, mask_json(loads_exact(body))
        except ValueError:
            kind = "text"
    if kind == "text":
        return kind, mask_sensitive_text(body.decode("utf-8", "replace"))
    if kind == "empty":
        return kind, ""
    return kind, _hex_dump(body)


def _cmd_show(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        async with _store(profile) as store:
            entry = await store.locate(args.entry_id, _dlqs(profile))
            if entry is None:
                print(f"payops: no entry {args.entry_id}", file=sys.stderr)
                return exit_codes.FAILED
            audit = await store.read_audit(entry.dlq, count=100, entry_id=entry.entry_id)
        if args.json:
            _print_json(_entry_json(entry, audit))
        else:
            print(_entry_text(entry, audit))
        return exit_codes.OK

    return _run(args, body)


def _entry_json(entry: ParkedEntry, audit: Sequence[AuditRecord]) -> dict[str, Any]:
    kind, shown = _body_view(entry.record.body)
    return {
        "entry": _summary_json(entry.summary),
        "action": entry.action,
        "action_id": entry.action_id,
        "operator": entry.operator,
        "detail": _masked(entry.detail),
        "last_error": _masked(entry.last_error),
        "updated_at_ms": entry.updated_at_ms,
        "exchange": entry.record.exchange,
        "routing_key": _masked(entry.record.routing_key),
        "properties": mask_json(_jsonable(entry.record.properties)),
        "headers": mask_json(
            _jsonable({k: v for k, v in entry.record.headers.items() if k != "x-death"})
        ),
        "x_death": [
            {**dataclasses.asdict(d), "routing_keys": [_masked(k) for k in d.routing_keys]}
            for d in entry.deaths
        ],
        "body": {"kind": kind, "size": len(entry.record.body), "content": shown},
        "audit": [_audit_json(a, entry.dlq) for a in audit],
    }


def _entry_text(entry: ParkedEntry, audit: Sequence[AuditRecord]) -> str:
    s = entry.summary
    by = f" by {s.last_operator}" if s.last_operator else ""
    out = [
        f"entry        {s.entry_id}  ({s.state}{by})",
        f"payment      {_masked(s.payment_id) or '-'}",
        f"merchant     {_masked(s.merchant) or '-'}",
        f"amount       {' '.join(p for p in (s.amount, s.currency) if p) or '-'}",
        f"reason       {s.reason or '-'} in queue {s.origin_queue or '-'}"
        f" (routing key {_masked(s.routing_key) or '-'})",
        f"dead-letter  {_when(s.dead_lettered_at_ms)}, parked {_when(s.parked_at_ms)}"
        f" from {s.dlq}, attempts {s.attempts}",
    ]
    if entry.action:
        out.append(f"last action  {entry.action} ({entry.action_id}) {_masked(entry.detail)}")
    if entry.last_error:
        out.append(f"last error   {_masked(entry.last_error)}")
    out.append("")
    out.append("properties")
    for key, value in entry.record.properties.items():
        out.append(f"  {key}: {_masked(str(_jsonable(value)))}")
    out.append("headers")
    for key, value in entry.record.headers.items():
        if key == "x-death":
            continue
        shown = json.dumps(mask_json(_jsonable(value)), ensure_ascii=False)
        out.append(f"  {mask_sensitive_text(key)}: {shown}")
    out.append("x-death (most recent first)")
    for death in entry.deaths:
        keys = ", ".join(death.routing_keys)
        out.append(
            f"  {death.reason} in {death.queue} x{death.count}"
            f" at {death.time.isoformat() if death.time else '-'}"
            f" (exchange {death.exchange or '(default)'}, routing keys {_masked(keys) or '-'})"
        )
    kind, shown = _body_view(entry.record.body)
    out.append(f"body ({kind}, {len(entry.record.body):,} bytes)")
    if kind == "json":
        out.append(dumps_pretty(shown))
    elif shown:
        out.append(str(shown))
    out.append("audit trail")
    if not audit:
        out.append("  (none)")
    for record in audit:
        out.append(f"  {_audit_line(record)}")
    return "\n".join(out)


# --------------------------------------------------------------------------- actions


def _progress(action: str) -> Callable[[int, int, int], None] | None:
    if not sys.stderr.isatty():
        return None
    verb = _VERBS.get(action, action)

    def show(done: int, total: int, failed: int) -> None:
        print(
            f"\r{action}: {done:,}/{total:,} {verb if done else ''}"
            f"{f' ({failed:,} failed)' if failed else ''}   ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def _confirm(plan: ActionPlan, delay: int, args: argparse.Namespace) -> bool:
    question = plan.describe(delay)
    if plan.total == 0:
        return True
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise Refused(f"{question}: refusing without --yes (stdin is not a terminal to ask on)")
    print(question + "?", file=sys.stderr)
    if plan.skipped_line():
        print(plan.skipped_line(), file=sys.stderr)
    print(plan.consequence(), file=sys.stderr)
    print("Proceed? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _target(args: argparse.Namespace) -> ActionTarget:
    if args.all_matching and args.entry_ids:
        raise Refused("give entry IDs or --all-matching, not both")
    if args.all_matching:
        query = query_from(args, default_states=(EntryState.PARKED,))
        return ActionTarget.for_query(query, 0, f"all matching {query.describe()}")
    if not args.entry_ids:
        raise Refused(f"{args.action}: give entry IDs, or --all-matching with filters")
    if _has_filters(args):
        raise Refused("filters apply with --all-matching only")
    return ActionTarget.for_entries(args.entry_ids)


def _read_body(path: Path) -> bytes:
    try:
        return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}") from None


def _report_text(report: ActionReport, stream: TextIO) -> None:
    problems = [o for o in report.outcomes if o.status == "failed"]
    for outcome in problems[:20]:
        payment = f" ({_masked(outcome.payment_id)})" if outcome.payment_id else ""
        print(f"failed {outcome.entry_id}{payment}: {_masked(outcome.detail)}", file=stream)
    if len(problems) > 20:
        print(f"... and {len(problems) - 20:,} more failures:", file=stream)
        for text, count in report.reasons("failed"):
            print(f"  {count:,} x {_masked(text)}", file=stream)


def _cmd_action(args: argparse.Namespace) -> int:
    action: ActionName = args.action

    async def body(profile: Profile) -> int:
        target = _target(args)
        delay = getattr(args, "delay", None) or 0
        edited = _read_body(args.edit_body) if getattr(args, "edit_body", None) else None
        async with _action_service(profile, args.read_only) as service:
            if not args.dry_run:
                service.refuse_if_read_only(action.capitalize())
                await service.publisher.connect()
                recovered = await service.recover()
                if not recovered.clean:
                    print(f"payops: {recovered.headline()}", file=sys.stderr)
            plan = await service.plan(action, target)
            if args.dry_run:
                report = await _act(
                    service, action, target, args, delay=delay, edited=edited, dry_run=True
                )
                print(plan.describe(delay))
                print(_dry_line(report))
                return exit_codes.OK
            if not _confirm(plan, delay, args):
                print("payops: nothing done", file=sys.stderr)
                return exit_codes.FAILED
            report = await _act(
                service, action, target, args, delay=delay, edited=edited, dry_run=False
            )
        if sys.stderr.isatty():
            print(file=sys.stderr)
        _report_text(report, sys.stderr)
        line = _masked(summary_line(report))
        print(line)
        if report.failed:
            print(f"payops: {line}", file=sys.stderr)
            return exit_codes.FAILED
        return exit_codes.OK

    return _run(args, body)


async def _act(
    service: ActionService,
    action: ActionName,
    target: ActionTarget,
    args: argparse.Namespace,
    *,
    delay: int,
    edited: bytes | None,
    dry_run: bool,
) -> ActionReport:
    progress = None if dry_run else _progress(action)
    if action == "requeue":
        return await service.requeue(target, dry_run=dry_run, progress=progress)
    if action == "retry":
        return await service.retry(
            target, delay_s=delay or None, edited_body=edited, dry_run=dry_run, progress=progress
        )
    return await service.cancel(
        target, reason=args.cancel_reason, dry_run=dry_run, progress=progress
    )


def _dry_line(report: ActionReport) -> str:
    would = [o for o in report.outcomes if o.detail.startswith("dry run:")]
    skipped = [o for o in report.outcomes if o.status == "skipped" and o not in would]
    failed = [o for o in report.outcomes if o.status == "failed"]
    verb = _VERBS.get(report.action, report.action)
    parts = [f"would have {verb} {len(would):,}"]
    reasons = sorted({o.detail for o in skipped})
    parts.append(
        f"would skip {len(skipped):,}" + (f" ({'; '.join(reasons[:3])})" if reasons else "")
    )
    if failed:
        parts.append(
            f"would fail {len(failed):,} ({'; '.join(sorted({o.detail for o in failed})[:3])})"
        )
    return _masked("dry run: " + ", ".join(parts))


# --------------------------------------------------------------------------- recover / resolve


def _recovery_json(report: RecoveryReport) -> dict[str, Any]:
    return {
        name: [
            _masked_texts(dataclasses.asdict(e), ("payment_id", "note"))
            for e in getattr(report, name)
        ]
        for name in ("released", "in_doubt", "in_progress")
    }


def _cmd_recover(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        async with _action_service(profile, args.read_only) as service:
            report = await service.recover()
        if args.json:
            _print_json(_recovery_json(report))
        else:
            print(report.headline())
            for name, entries in (
                ("released", report.released),
                ("in doubt", report.in_doubt),
                ("in progress", report.in_progress),
            ):
                for e in entries:
                    payment = f" ({_masked(e.payment_id)})" if e.payment_id else ""
                    print(
                        f"  {name}: {e.entry_id}{payment} {e.action} by {e.operator}:"
                        f" {_masked(e.note)}"
                    )
            if report.in_doubt:
                print(
                    "resolve each with `payops dlq resolve ID --delivered` (it is in the target"
                    " queue), `--republish` (send it again with the same action id) or"
                    " `--release` (it is not there: back to parked)"
                )
        return exit_codes.FAILED if report.in_doubt else exit_codes.OK

    return _run(args, body)


def _cmd_resolve(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        async with _action_service(profile, args.read_only) as service:
            outcome = await service.resolve(args.entry_id, args.how)
        text = f"{outcome.entry_id}: {outcome.status}: {_masked(outcome.detail)}"
        print(text, file=sys.stdout if outcome.ok else sys.stderr)
        return exit_codes.OK if outcome.ok else exit_codes.FAILED

    return _run(args, body)


# --------------------------------------------------------------------------- audit


def _audit_json(record: AuditRecord, dlq: str) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    data["dlq"] = dlq
    data["entry_ids"] = list(record.entry_ids)
    data["target"] = _masked(record.target)
    data["detail"] = _masked(record.detail)
    return data


def _audit_line(record: AuditRecord) -> str:
    entries = (
        record.entry_ids[0] if len(record.entry_ids) == 1 else f"{len(record.entry_ids):,} entries"
    )
    detail = _masked(record.detail).replace("\n", "; ")
    return (
        f"{_when(record.ts)}  {record.operator}@{record.host}  {record.action}  {entries}"
        f"  {_masked(record.target)}  {record.result}{'  ' + detail if detail else ''}"
    )


def _cmd_audit(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        records: list[tuple[AuditRecord, str]] = []
        async with _store(profile) as store:
            for dlq in _dlqs(profile):
                scan = args.limit if not (args.operator or args.action) else 100_000
                found = await store.read_audit(dlq, count=scan, entry_id=args.entry)
                records.extend((r, dlq) for r in found)
        records = [
            (r, dlq)
            for r, dlq in records
            if (not args.operator or r.operator == args.operator)
            and (not args.action or r.action == args.action)
        ]
        records.sort(key=lambda pair: (pair[0].ts, pair[0].stream_id or ""), reverse=True)
        records = records[: max(args.limit, 0)]
        if args.json:
            _print_json([_audit_json(r, dlq) for r, dlq in records])
        else:
            for record, _ in records:
                print(_audit_line(record))
        return exit_codes.OK

    return _run(args, body)


__all__ = ["add_dlq_commands", "parse_time", "query_from"]
