"""``payops dlq ...``: the failed-payments workbench on the command line.

Shares the console's services: the parker, the parking store, the entry
index for filters, and :class:`~services.workbench.actions.service.ActionService` for
requeue / retry / cancel (exactly once, audited) and crash recovery. What it
prints is in :mod:`app.cli.dlq_output`.

Exit codes (:mod:`app.cli.exit_codes`): 0 everything asked for succeeded (entries
someone else had already acted on are skipped, not failed); 1 something
failed (the summary on stderr says what and why), or recovery left entries
in doubt; 2 usage, configuration or a refusal (read-only, no ``--yes``
without a terminal, a cancel without ``--note``, the retired ``--reason``); 3
RabbitMQ or Redis unreachable; 4 RabbitMQ or Redis refused the login; 130
interrupted (Ctrl+C on a bulk action: it stops after the windows already sent and
prints its summary first), 143 the same on SIGTERM.
Card numbers are masked in every output, ``--json`` included.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from app.cli import arg_types, exit_codes
from app.cli.dlq_common import (
    action_service,
    dead_letter_queues,
    load_index,
    parking_store,
    run_dlq,
)
from app.cli.dlq_jobs import (
    add_job_commands,
    add_replay_arguments,
    check_force,
    held_back_line,
    job_line,
    pace_from,
)
from app.cli.dlq_output import (
    RESOLVE_VERBS,
    action_progress,
    audit_json,
    audit_line,
    dry_line,
    entry_json,
    entry_text,
    masked,
    print_failures,
    print_groups,
    print_in_doubt,
    print_json,
    print_outcomes,
    print_recovery,
    print_resolved,
    print_table,
    recovery_json,
    summary_json,
)
from app.cli.dlq_park import cmd_park
from app.cli.dlq_resolve import check_in_doubt
from app.cli.interrupts import interrupted, run_interruptibly, stopped_at_once
from app.cli.runner import Refused, fail
from services.config import Profile
from services.workbench.actions.names import Action
from services.workbench.actions.report import ActionPlan, ActionReport
from services.workbench.actions.service import ActionService
from services.workbench.failure_groups import failure_group_stats
from services.workbench.model import AuditRecord, EntryState
from services.workbench.query import ActionTarget, Query

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- filters


class _Ambiguous(argparse.Action):
    """``--reason``: it meant a filter on some commands and the cancel reason on another, so
    it is refused, naming the two flags that replace it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "--reason is ambiguous and no longer accepted: filter by why a message was"
            " dead-lettered with --dead-letter-reason (rejected, expired, maxlen,"
            " delivery_limit); give an action's note for the audit trail with --note TEXT"
        )


def _refuse_reason(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", action=_Ambiguous, nargs="?", help=argparse.SUPPRESS)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    """The filters of ``list``, and of an action's ``--all-matching``: the same flags,
    each honoured by both (see :func:`query_from`)."""
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--state",
        type=arg_types.states,
        action="append",
        default=[],
        metavar="STATE",
        help="parked, claimed, requeued, retried, cancelled (repeat or comma-separate)",
    )
    group.add_argument(
        "--dead-letter-reason",
        dest="dead_letter_reason",
        action="append",
        default=[],
        metavar="REASON",
        help="why RabbitMQ dead-lettered it: rejected, expired, maxlen, delivery_limit",
    )
    group.add_argument("--queue", action="append", default=[], help="the queue the message died in")
    group.add_argument("--dlq", action="append", default=[], help="the dead-letter queue")
    group.add_argument("--merchant", action="append", default=[], help="merchant (exact)")
    group.add_argument("--search", default="", metavar="TEXT", help="free text (payment id ...)")
    group.add_argument(
        "--cause",
        default="",
        metavar="TEXT",
        help="why it failed: text in the cause or the failure group (case-insensitive)",
    )
    group.add_argument(
        "--since", type=arg_types.moment_ms, metavar="TIME", help="dead-lettered since"
    )
    group.add_argument(
        "--until", type=arg_types.moment_ms, metavar="TIME", help="dead-lettered before"
    )
    group.add_argument("--min-amount", type=arg_types.amount, metavar="AMOUNT")
    group.add_argument("--max-amount", type=arg_types.amount, metavar="AMOUNT")
    _refuse_reason(parser)


FILTERS: Final = (
    "state",
    "dead_letter_reason",
    "queue",
    "dlq",
    "merchant",
    "search",
    "cause",
    "since",
    "until",
    "min_amount",
    "max_amount",
)
"""Every filter's ``dest``: :func:`query_from` reads each one (a test holds it to that)."""


def _add_targets(parser: argparse.ArgumentParser, ids: str, every: str, help_: str) -> None:
    """Entry ids (``entry_ids``: any number, ``entry_id``: at most one), or the flag
    ``every`` for every entry matching the filters."""
    parser.add_argument(ids, nargs="*" if ids.endswith("s") else "?", metavar="ID")
    parser.add_argument(every, action="store_true", help=help_)
    _add_filters(parser)


def query_from(args: argparse.Namespace, *, default_states: Sequence[EntryState] = ()) -> Query:
    """The filters of ``args`` as a :class:`Query`; a contradiction is refused (exit 2)."""
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise Refused("--since must be before --until")
    if (
        args.min_amount is not None
        and args.max_amount is not None
        and args.min_amount > args.max_amount
    ):
        raise Refused("--min-amount must not be more than --max-amount")
    states = [state for group in args.state for state in group] or list(default_states)
    return Query(
        text=args.search,
        states=frozenset(states),
        reasons=frozenset(args.dead_letter_reason),
        dlqs=frozenset(args.dlq),
        queues=frozenset(args.queue),
        merchants=frozenset(args.merchant),
        dead_from_ms=args.since,
        dead_until_ms=args.until,
        amount_min=args.min_amount,
        amount_max=args.max_amount,
        cause=args.cause.strip(),
    )


def _has_filters(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) not in (None, "", []) for name in FILTERS)


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
    park.set_defaults(handler=cmd_park)

    listing = sub.add_parser("list", parents=common, help="list parked entries")
    _add_filters(listing)
    listing.add_argument("--json", action="store_true", help="JSON output")
    listing.add_argument(
        "--limit", type=arg_types.count, default=100, help="rows to show (default 100)"
    )
    listing.add_argument(
        "--group-by",
        choices=["cause"],
        default=None,
        help="one line per failure group (cause): entries, open, amount at risk, merchants",
    )
    listing.set_defaults(handler=_cmd_list)

    show = sub.add_parser("show", parents=common, help="one entry in full")
    show.add_argument("entry_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="JSON output")
    _refuse_reason(show)
    show.set_defaults(handler=_cmd_show)

    for action, text in (
        (Action.REQUEUE, "send back, unchanged, to the queue each message died in"),
        (Action.RETRY, "a new attempt through the origin queue (attempt counter +1)"),
        (Action.CANCEL, "remove from the workbench, publishing payment.cancelled"),
    ):
        command = sub.add_parser(action, parents=common, help=text)
        _add_targets(
            command,
            "entry_ids",
            "--all-matching",
            "every entry matching the filters (default state: parked)",
        )
        if action is Action.RETRY:
            command.add_argument(
                "--delay",
                type=arg_types.delay,
                default=None,
                metavar="SECONDS",
                help="wait first (30, 5m)",
            )
            command.add_argument(
                "--edit-body",
                type=Path,
                metavar="FILE",
                help="send this JSON body instead (one entry; - reads stdin)",
            )
        command.add_argument(
            "--note",
            type=arg_types.note,
            required=action is Action.CANCEL,
            default=None,
            metavar="TEXT",
            help=(
                "why: required; goes into the audit trail and the payment.cancelled event"
                if action is Action.CANCEL
                else "why, for the audit trail"
            ),
        )
        if action is not Action.CANCEL:
            add_replay_arguments(command)
        command.add_argument("--dry-run", action="store_true", help="say what would happen")
        command.add_argument("--yes", "-y", action="store_true", help="do not ask")
        command.add_argument("--read-only", action="store_true", help="refuse to act")
        command.set_defaults(handler=_cmd_action, action=action)

    recover = sub.add_parser("recover", parents=common, help="settle interrupted actions")
    recover.add_argument("--json", action="store_true")
    recover.add_argument("--read-only", action="store_true", help="only report")
    recover.set_defaults(handler=_cmd_recover)

    resolve = sub.add_parser(
        "resolve", parents=common, help="settle in-doubt entries (one, or all matching)"
    )
    _add_targets(
        resolve,
        "entry_id",
        "--all-in-doubt",
        "every in-doubt entry matching the filters (try --dry-run first)",
    )
    resolve.add_argument(
        "--dry-run", action="store_true", help="list the in-doubt entries; change nothing"
    )
    resolve.add_argument(
        "--check",
        action="store_true",
        help="with --all-in-doubt: list them with the evidence of delivery; change nothing",
    )
    resolve.add_argument("--yes", "-y", action="store_true", help="do not ask")
    how = resolve.add_mutually_exclusive_group()
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

    add_job_commands(sub, common)

    audit = sub.add_parser("audit", parents=common, help="the audit trail")
    audit.add_argument("--entry", metavar="ID", help="records naming this entry")
    audit.add_argument("--operator", metavar="NAME", help="records of this operator")
    audit.add_argument("--action", metavar="ACTION", help="requeue, retry, cancel, recover ...")
    audit.add_argument(
        "--limit", type=arg_types.count, default=50, help="records to show (default 50)"
    )
    audit.add_argument("--json", action="store_true")
    _refuse_reason(audit)
    audit.set_defaults(handler=_cmd_audit)


# --------------------------------------------------------------------------- plumbing


# --------------------------------------------------------------------------- list / show


def _cmd_list(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        query = query_from(args)
        dlqs = sorted(query.dlqs) or dead_letter_queues(profile)
        async with parking_store(profile) as store:
            index = await load_index(store, dlqs)
        rows = index.query(query)
        if args.group_by == "cause":
            print_groups(failure_group_stats(index.rows(rows)), args.limit, as_json=args.json)
            return exit_codes.OK
        shown = index.rows(rows[: args.limit])
        if args.json:
            print_json([summary_json(s) for s in shown])
        else:
            print_table(shown)
        if len(rows) > len(shown):
            print(
                f"payops: showing {len(shown):,} of {len(rows):,} matching entries (use --limit)",
                file=sys.stderr,
            )
        return exit_codes.OK

    return run_dlq(args, body)


def _cmd_show(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        async with parking_store(profile) as store:
            entry = await store.locate(args.entry_id, dead_letter_queues(profile))
            if entry is None:
                print(f"payops: no entry {args.entry_id}", file=sys.stderr)
                return exit_codes.FAILED
            audit = await store.read_audit(entry.dlq, count=100, entry_id=entry.entry_id)
        if args.json:
            print_json(entry_json(entry, audit, profile.fields))
        else:
            print(entry_text(entry, audit, profile.fields))
        return exit_codes.OK

    return run_dlq(args, body)


# --------------------------------------------------------------------------- actions


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


def _cmd_action(args: argparse.Namespace) -> int:
    action: Action = args.action

    async def body(profile: Profile) -> int:
        target = _target(args)
        check_force(args)
        delay = getattr(args, "delay", None) or 0
        edited = _read_body(args.edit_body) if getattr(args, "edit_body", None) else None
        async with action_service(profile, args.read_only) as service:
            if not args.dry_run:
                service.refuse_if_read_only(action.label)
                await service.publisher.connect()
                recovered = await service.recover()
                if not recovered.clean:
                    print(f"payops: {recovered.headline()}", file=sys.stderr)
            existing, missing = await _existing(service, target)
            if existing is None:
                return exit_codes.FAILED
            target = existing
            plan = await service.plan(action, target)
            if args.dry_run:
                report = await _act(
                    service, action, target, args, delay=delay, edited=edited, dry_run=True
                )
                print(plan.describe(delay))
                print(dry_line(report))
                if held_back_line(report):
                    print(held_back_line(report))
                return exit_codes.FAILED if missing else exit_codes.OK
            if action is not Action.CANCEL and not getattr(args, "force", False):
                preview = await _act(
                    service, action, target, args, delay=delay, edited=edited, dry_run=True
                )
                if held_back_line(preview):
                    print(f"payops: {held_back_line(preview)}", file=sys.stderr)
            if not _confirm(plan, delay, args):
                print("payops: nothing done", file=sys.stderr)
                return exit_codes.FAILED
            done, interrupts = await run_interruptibly(
                lambda stop: _act(
                    service, action, target, args, delay=delay, edited=edited, cancel_event=stop
                )
            )
            if done is None:
                return await stopped_at_once(service, interrupts.exit_code)
            report = done
            if sys.stderr.isatty():
                print(file=sys.stderr)
            print_failures(report, sys.stderr)
            print_outcomes(report)
            if job_line(report):
                print(f"payops: {job_line(report)}", file=sys.stderr)
            if report.failed:
                print(f"payops: {masked(report.caption())}", file=sys.stderr)
            if interrupts.stop.is_set():
                return await interrupted(service, report, interrupts.exit_code)
        if report.failed:
            return exit_codes.FAILED
        return exit_codes.FAILED if missing else exit_codes.OK

    return run_dlq(args, body)


async def _existing(
    service: ActionService, target: ActionTarget
) -> tuple[ActionTarget | None, list[str]]:
    """The target without the entry ids that do not exist, which are named on stderr and
    left out of the action (and so of its audit record); None when none exists. Resolved
    once (frozen): the confirmation counts what the action then acts on."""
    target = await service.freeze(target)
    rows, missing = list(target.rows or ()), list(target.missing)
    if not missing:
        return target, []
    shown = ", ".join(missing[:10]) + (
        f" and {len(missing) - 10:,} more" if len(missing) > 10 else ""
    )
    where = ", ".join(service.dlqs)
    print(f"payops: no such entry: {shown} (looked in {where})", file=sys.stderr)
    if not rows:
        print("payops: nothing done", file=sys.stderr)
        return None, missing
    return ActionTarget.for_entries([row.entry_id for row in rows]).frozen(rows), missing


async def _act(
    service: ActionService,
    action: Action,
    target: ActionTarget,
    args: argparse.Namespace,
    *,
    delay: int,
    edited: bytes | None,
    dry_run: bool = False,
    cancel_event: asyncio.Event | None = None,
) -> ActionReport:
    progress = None if dry_run else action_progress(action)
    stop = cancel_event
    if action is not Action.CANCEL:
        return await service.replay(
            action,
            target,
            delay_s=delay or None,
            edited_body=edited,
            note=args.note or "",
            dry_run=dry_run,
            progress=progress,
            cancel_event=stop,
            pace=pace_from(args),
            force=args.force,
        )
    return await service.cancel(
        target, reason=args.note or "", dry_run=dry_run, progress=progress, cancel_event=stop
    )


# --------------------------------------------------------------------------- recover / resolve


def _cmd_recover(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        async with action_service(profile, args.read_only) as service:
            report = await service.recover()
        if args.json:
            print_json(recovery_json(report))
        else:
            print_recovery(report)
        return exit_codes.FAILED if report.in_doubt else exit_codes.OK

    return run_dlq(args, body)


def _cmd_resolve(args: argparse.Namespace) -> int:
    if args.all_in_doubt:
        return _resolve_all(args)
    if not args.entry_id:
        return fail("resolve: give an entry ID, or --all-in-doubt with filters", exit_codes.USAGE)
    if _has_filters(args) or args.dry_run or args.check:
        return fail(
            "filters, --dry-run and --check apply with --all-in-doubt only", exit_codes.USAGE
        )
    if not args.how:
        return fail("resolve: say how: --delivered, --republish or --release", exit_codes.USAGE)

    async def body(profile: Profile) -> int:
        async with action_service(profile, args.read_only) as service:
            outcome = await service.resolve(args.entry_id, args.how)
        text = f"{outcome.entry_id}: {outcome.status}: {masked(outcome.detail)}"
        print(text, file=sys.stdout if outcome.ok else sys.stderr)
        return exit_codes.OK if outcome.ok else exit_codes.FAILED

    return run_dlq(args, body)


def _resolve_all(args: argparse.Namespace) -> int:
    """``resolve --all-in-doubt``: list (``--dry-run``) or settle every matching in-doubt
    entry the same way, after recovery and a confirmation."""
    if args.entry_id:
        return fail("give an entry ID or --all-in-doubt, not both", exit_codes.USAGE)
    if args.check:
        args.dry_run = True
    if not args.how and not args.dry_run:
        return fail(
            "resolve --all-in-doubt: say how (--republish, --delivered or --release),"
            " or look first with --dry-run",
            exit_codes.USAGE,
        )

    async def body(profile: Profile) -> int:
        query = query_from(args)
        async with action_service(profile, args.read_only) as service:
            if not args.dry_run:
                service.refuse_if_read_only("resolve")
            report, found = await service.in_doubt(query, inspect_only=args.dry_run)
            print_in_doubt(found, report, args.how, query.describe())
            if args.check:
                await check_in_doubt(service, found)
            if args.dry_run or not found:
                return exit_codes.OK
            question = f"{RESOLVE_VERBS[args.how]} {len(found):,} in-doubt entries"
            if not args.yes:
                if not sys.stdin.isatty():
                    raise Refused(f"{question}: refusing without --yes (stdin is not a terminal)")
                print(f"{question}? [y/N] ", end="", file=sys.stderr, flush=True)
                try:
                    answer = input()
                except EOFError:
                    answer = ""
                if answer.strip().lower() not in ("y", "yes"):
                    print("payops: nothing done", file=sys.stderr)
                    return exit_codes.FAILED
            outcomes = await service.resolve_many(found, args.how)
        return exit_codes.FAILED if print_resolved(outcomes, args.how) else exit_codes.OK

    return run_dlq(args, body)


# --------------------------------------------------------------------------- audit


def _cmd_audit(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        records: list[tuple[AuditRecord, str]] = []
        async with parking_store(profile) as store:
            for dlq in dead_letter_queues(profile):
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
        records = records[: args.limit]
        if args.json:
            print_json([audit_json(r, dlq) for r, dlq in records])
        else:
            for record, _ in records:
                print(audit_line(record))
        return exit_codes.OK

    return run_dlq(args, body)


__all__ = ["add_dlq_commands", "query_from"]
