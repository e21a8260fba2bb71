"""``payops trace PAYMENT_ID``: one payment's whole story, from Redis.

Every flow event of the payment the consoles and collectors recorded, each
dead-lettering (every ``x-death`` hop), its parking, and every operator action
on it (who, when, what, the note) with what happened after it, oldest first
(:mod:`services.trace`). Times are local, the zone named, as everywhere in the
CLI; ``--json`` gives ISO 8601 times with their offset. Card numbers are masked.

Exit codes: 0 found; 1 nothing is known of the payment; 2 bad configuration;
3 Redis unreachable; 4 Redis refused the login.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli import exit_codes
from app.cli.dlq_output import print_json
from app.cli.runner import profile_from, redis_client, run_command
from services.config import Profile
from services.masking.json import mask_identifier, mask_sensitive_text
from services.time_range import format_duration, format_local_time, iso_local
from services.trace import PaymentTrace, TraceStep, trace_payment

_DESCRIPTION = """\
Show what happened to one payment: the events the flow carried for it (as
recorded by any running console or `payops collect`), each dead-lettering, its
parking, every operator action (who, when, the note) and what followed. An
ordinary payment's events are kept for payment_events_recent_min after its last
one; a payment that failed, was dead-lettered or acted on for
history_retention_h.
"""

_WHAT_WIDTH = 19


def add_trace_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common_parent: argparse.ArgumentParser,
) -> None:
    """Register ``payops trace`` (call from ``app.cli.main.build_parser``)."""
    trace = subparsers.add_parser(
        "trace",
        parents=[common_parent],
        help="show one payment's timeline: flow events, dead-letterings, actions",
        description=_DESCRIPTION,
    )
    trace.add_argument("payment_id", metavar="PAYMENT_ID", help="the payment's id")
    trace.add_argument("--json", action="store_true", help="machine-readable output")
    trace.set_defaults(handler=_cmd_trace)


def _cmd_trace(args: argparse.Namespace) -> int:
    profile = profile_from(args)
    payment_id = args.payment_id.strip()
    if not payment_id:
        print("payops: trace: give a payment id", file=sys.stderr)
        return exit_codes.USAGE

    async def body() -> int:
        async with redis_client(profile) as client:
            trace = await trace_payment(client, profile, payment_id)
        if not trace.found:
            print(f"payops: {_nothing_known(trace, profile)}", file=sys.stderr)
            return exit_codes.FAILED
        if args.json:
            print_json(trace_json(trace))
        else:
            print(trace_text(trace))
        return exit_codes.OK

    return run_command(profile, body())


def _nothing_known(trace: PaymentTrace, profile: Profile) -> str:
    """Why a payment has no timeline, and where it was looked for."""
    where = ", ".join(profile.dead_letter_queues) or "no dead-letter queue configured"
    if profile.payment_events:
        record = (
            "no flow event recorded (an ordinary payment's events are kept"
            f" {format_duration(profile.payment_events_recent_s)} after its last one;"
            " recording needs a running console or `payops collect`)"
        )
    else:
        record = "the payment record is off in this profile (payment_events = false)"
    return f"no payment {trace.shown_id} known: {record}, and no parked entry ({where})"


def _when(step: TraceStep) -> str:
    return format_local_time(step.at_ms / 1000)


def step_line(step: TraceStep) -> str:
    """One step as a line: time, what, details."""
    what = step.what + (" (replayed)" if step.replayed else "")
    parts = [step.detail] if step.detail else []
    if step.operator:
        parts.insert(0, f"by {mask_sensitive_text(step.operator)}")
    if step.after:
        parts.append("then " + ", ".join(step.after))
    detail = "  ".join(parts)
    return f"  {_when(step)}  {what.ljust(_WHAT_WIDTH)}  {detail}".rstrip()


def trace_text(trace: PaymentTrace) -> str:
    """The timeline for people."""
    lines = [f"payment {trace.shown_id}"]
    lines += [step_line(step) for step in trace.steps]
    if not trace.events_recorded:
        lines.append("  (no flow event recorded: only what the workbench holds)")
    if trace.entries:
        lines.append("parked entries")
        for entry in trace.entries:
            lines.append(f"  {entry.entry_id} in {mask_sensitive_text(entry.dlq)}: {entry.state}")
    return "\n".join(lines)


def trace_json(trace: PaymentTrace) -> dict[str, Any]:
    """The timeline for ``--json`` (times ISO 8601, local with their offset)."""
    return {
        "payment_id": trace.shown_id,
        "events_recorded": trace.events_recorded,
        "steps": [
            {
                "at": iso_local(step.at_ms),
                "at_ms": step.at_ms,
                "exact": step.exact,
                "kind": step.kind,
                "what": step.what,
                "detail": step.detail,
                "operator": mask_sensitive_text(step.operator) if step.operator else None,
                "replayed": step.replayed,
                "dlq": mask_sensitive_text(step.dlq) if step.dlq else None,
                "entry_id": mask_identifier(step.entry_id) if step.entry_id else None,
                "after": list(step.after),
            }
            for step in trace.steps
        ],
        "entries": [
            {
                "dlq": mask_sensitive_text(entry.dlq),
                "entry_id": entry.entry_id,
                "state": str(entry.state),
                "parked_at": iso_local(entry.parked_at_ms),
            }
            for entry in trace.entries
        ],
    }
