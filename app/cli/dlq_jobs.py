"""``payops dlq jobs``, ``payops dlq job ID`` and ``payops dlq job pause|resume|cancel ID``;
the pace and gate options of ``requeue`` / ``retry`` (``--rate``, ``--canary``,
``--max-failed-pct``, ``--force``).

Every bulk action runs as a job in Redis (``services.workbench.actions.jobs``): what it
did (done, skipped, held back, failed) and what became of the payments since (pending,
succeeded, declined, failed again, no outcome), readable and steerable from any machine.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli import arg_types, exit_codes
from app.cli.dlq_common import action_service, run_dlq
from app.cli.dlq_output import masked, print_json
from app.cli.runner import Refused
from services.config import Profile
from services.time_range import format_local_time, iso_local
from services.workbench.actions.jobs import HELD_PREFIX, Job, JobState
from services.workbench.actions.pace import (
    DEFAULT_MAX_FAILED_PCT,
    Pace,
    pace_of,
    parse_percent,
    parse_rate,
)
from services.workbench.actions.report import ActionReport


def rate(text: str) -> float:
    """``50/s``, ``50``, ``600/min``: entries a second, more than 0."""
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def percent(text: str) -> float:
    """``10``, ``10%``: a share from 0 to 100."""
    try:
        return parse_percent(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_replay_arguments(command: argparse.ArgumentParser) -> None:
    """``--rate``, ``--canary``, ``--max-failed-pct`` and ``--force`` of requeue / retry."""
    group = command.add_argument_group("pace and replay gate")
    group.add_argument(
        "--rate", type=rate, default=None, metavar="N/s", help="send at most N a second"
    )
    group.add_argument(
        "--canary",
        type=arg_types.count,
        default=0,
        metavar="N",
        help="send N first, wait for their outcomes, go on only if few failed again",
    )
    group.add_argument(
        "--max-failed-pct",
        type=percent,
        default=DEFAULT_MAX_FAILED_PCT,
        metavar="PCT",
        help="pause when more of the replayed payments failed again (default %(default)g)",
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="send past the replay gate (needs --note: why; audited)",
    )


def pace_from(args: argparse.Namespace) -> Pace | None:
    """The pace the options ask for (None: full speed)."""
    return pace_of(
        getattr(args, "rate", None),
        getattr(args, "canary", 0) or 0,
        getattr(args, "max_failed_pct", DEFAULT_MAX_FAILED_PCT),
    )


def check_force(args: argparse.Namespace) -> None:
    if getattr(args, "force", False) and not args.note:
        raise Refused("--force needs --note: say why the replay gate is overridden")


def held_back_line(report: ActionReport) -> str:
    """``2 would be held back by the replay gate (captured at 14:05:31 CET by the flow)``."""
    held = [o.detail.removeprefix(HELD_PREFIX) for o in report.outcomes if is_held(o.detail)]
    if not held:
        return ""
    shown = "; ".join(sorted(set(held))[:3])
    return f"{len(held):,} held back by the replay gate ({masked(shown)})"


def is_held(detail: str) -> bool:
    return detail.startswith(HELD_PREFIX)


def job_line(report: ActionReport) -> str:
    """Where to follow the job of a finished action."""
    if not report.job_id:
        return ""
    return f"job {report.job_id}: follow its outcomes with `payops dlq job {report.job_id}`"


# --------------------------------------------------------------------------- commands


def add_job_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: list[argparse.ArgumentParser],
) -> None:
    jobs = sub.add_parser("jobs", parents=common, help="the latest jobs (bulk actions)")
    jobs.add_argument("--limit", type=arg_types.count, default=20, help="jobs (default 20)")
    jobs.add_argument("--json", action="store_true", help="JSON output")
    jobs.set_defaults(handler=_cmd_jobs)
    job = sub.add_parser(
        "job",
        parents=common,
        help="one job: `job ID`, `job pause ID`, `job resume ID`, `job cancel ID`",
    )
    job.add_argument("words", nargs="+", metavar="[pause|resume|cancel] ID")
    job.add_argument("--json", action="store_true", help="JSON output")
    job.add_argument("--note", type=arg_types.note, default=None, help="why, for the job")
    job.add_argument("--read-only", action="store_true", help="refuse to act")
    job.set_defaults(handler=_cmd_job)


def _cmd_jobs(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        async with action_service(profile, True) as service:
            found = await service.jobs.recent(args.limit)
        if args.json:
            print_json([job_json(job) for job in found])
            return exit_codes.OK
        print(f"{'JOB':<19} {'ACTION':<8} {'OPERATOR':<10} {'STARTED':<14} {'STATE':<10} OUTCOMES")
        for job in found:
            started = format_local_time(job.created_ms / 1000, date=False)
            print(
                f"{job.job_id:<19} {job.action:<8} {masked(job.operator)[:10]:<10}"
                f" {started:<14} {job.state.value:<10} {_counts(job)}"
            )
        return exit_codes.OK

    return run_dlq(args, body)


_VERBS = ("pause", "resume", "cancel")


def _cmd_job(args: argparse.Namespace) -> int:
    words: list[str] = args.words
    verb, job_id = ("show", words[0]) if len(words) == 1 else (words[0], words[-1])

    async def body(profile: Profile) -> int:
        if len(words) > 2 or (verb in _VERBS) == (len(words) == 1):
            raise Refused("usage: payops dlq job ID | payops dlq job pause|resume|cancel ID")
        async with action_service(profile, args.read_only or verb == "show") as service:
            if verb != "show":
                service.refuse_if_read_only(verb)
            job = await service.jobs.get(job_id)
            if job is None:
                print(f"payops: no job {job_id}", file=sys.stderr)
                return exit_codes.FAILED
            if verb == "show":
                if args.json:
                    print_json(job_json(job))
                else:
                    print(job_text(job))
                return exit_codes.OK
            if verb == "resume":
                report = await service.resume_job(job_id, note=args.note)
                if report is None:
                    print(f"payops: job {job_id} resumed; its runner goes on", file=sys.stderr)
                else:
                    print(f"payops: job {job_id} resumed here: {report.headline()}")
                    print(job_text(await service.jobs.get(job_id) or job))
                return exit_codes.OK
            who = f"{verb}d by {service.operator}" + (f": {args.note}" if args.note else "")
            state = JobState.PAUSED if verb == "pause" else JobState.CANCELLED
            allowed = (
                (JobState.RUNNING,)
                if verb == "pause"
                else (JobState.RUNNING, JobState.PAUSED, JobState.STOPPED)
            )
            moved, before = await service.jobs.set_state(
                job_id, state, masked(who), only_from=allowed
            )
            if not moved:
                print(f"payops: job {job_id} is {before}: cannot {verb} it", file=sys.stderr)
                return exit_codes.FAILED
            print(f"payops: job {job_id} {state.value} ({masked(who)})", file=sys.stderr)
            return exit_codes.OK

    return run_dlq(args, body)


# --------------------------------------------------------------------------- output


def _counts(job: Job) -> str:
    done = ", ".join(f"{n:,} {name}" for name, n in job.counts.items() if n)
    return f"{job.outcome_line()}  [{done or 'nothing sent'}]"


def _target_text(job: Job) -> str:
    """What the job acts on, its count said once ("894 selected entries", not
    "894 selected entries (894 selected)")."""
    target, count = masked(job.target), f"{job.total:,}"
    return target if target.startswith(f"{count} ") else f"{target} ({count} selected)"


def job_text(job: Job) -> str:
    """One job for people: what it did, what became of it, how it runs."""
    pace = (f"{job.pace.rate:g}/s" if job.pace.rate else "full speed") + (
        f", canary {job.pace.canary}" if job.pace.canary else ""
    )
    lines = [
        f"job          {job.job_id}  ({job.state.value}"
        + (f": {masked(job.reason)}" if job.reason else "")
        + ")",
        f"action       {job.action} by {masked(job.operator)} on {job.host},"
        f" {format_local_time(job.created_ms / 1000)}",
        f"target       {_target_text(job)}",
        f"pace         {pace}; pauses above {job.pace.max_failed_pct:g} % failed again"
        + (", forced past the replay gate" if job.force else ""),
        f"sent         {_counts(job).split('  [')[1].rstrip(']')}",
        f"outcomes     {job.outcome_line()}",
    ]
    if job.note:
        lines.append(f"note         {masked(job.note)}")
    if job.state in (JobState.RUNNING, JobState.PAUSED) and not job.runner_alive:
        lines.append(f"runner       gone: `payops dlq job resume {job.job_id}` runs the rest here")
    return "\n".join(lines)


def job_json(job: Job) -> dict[str, Any]:
    data = job.as_json()
    for key in ("note", "target", "reason", "operator"):
        data[key] = masked(data[key]) if data[key] else data[key]
    data["created_at"] = iso_local(job.created_ms)
    data["finished_at"] = iso_local(job.finished_ms)
    return data
