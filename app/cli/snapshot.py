"""``payops snapshot``: an incident snapshot bundle of a time range, headless.

Reads only Redis (the flow history, alert log, audit trail and parked failed
payments of the profile); the charts are drawn with Qt on the offscreen
platform, loaded only by this command. Exit codes: 0 written; 1 writing
failed; 2 bad range, an existing output without ``--force`` or a bad
configuration; 3 Redis unreachable; 130 interrupted (nothing is left behind).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app.cli import exit_codes
from app.cli.progress import SnapshotProgressLine
from app.cli.runner import Failed, fail, profile_from, redis_client, run_command
from services.config import Profile
from services.snapshot.bundle import default_file_name
from services.snapshot.entries import default_workers
from services.snapshot.job import write_snapshot
from services.snapshot.model import (
    MAX_RANGE_S,
    ChartRenderer,
    SnapshotRequest,
    SnapshotResult,
)
from services.time_range import (
    DURATION_HELP,
    MOMENT_HELP,
    TimeRange,
    check_range,
    format_duration,
    format_local_time,
    resolve_range,
)

_DESCRIPTION = """\
Write one zip for the post-mortem: report.html (summary and charts, opens with
no network), the per-second flow (throughput.csv), the failed payments parked
or acted on in the range (CSV and JSONL with the masked messages), the audit
records, the alert events and a manifest with the SHA-256 of every file. Card
numbers are masked and credentials removed everywhere.
"""


def add_snapshot_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common_parent: argparse.ArgumentParser,
) -> None:
    """Register ``payops snapshot`` (call from ``app.cli.main.build_parser``)."""
    snapshot = subparsers.add_parser(
        "snapshot",
        parents=[common_parent],
        help="write an incident snapshot bundle (zip) of a time range",
        description=_DESCRIPTION,
    )
    when = snapshot.add_argument_group("time range (default: --since 1h)")
    when.add_argument(
        "--since", metavar="DURATION", help=f"the last DURATION up to now ({DURATION_HELP})"
    )
    when.add_argument("--from", dest="from_time", metavar="TIME", help=f"start: {MOMENT_HELP}")
    when.add_argument(
        "--to", dest="to_time", metavar="TIME", help="end (exclusive; default: now), as --from"
    )
    snapshot.add_argument(
        "--out",
        "-o",
        type=Path,
        metavar="FILE",
        help="the zip to write (default: payops-snapshot-<profile>-<from>-<to>.zip here)",
    )
    snapshot.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    snapshot.add_argument(
        "--no-charts", action="store_true", help="leave the charts out (Qt is not loaded)"
    )
    snapshot.set_defaults(handler=_cmd_snapshot)


def _chart_renderer() -> ChartRenderer:
    """The console's chart renderer: the charts drawn in a child process of their own,
    on the offscreen platform (never a display: a stale ``DISPLAY``, an old SSH
    session, would abort Qt), while the failed payments are written."""
    from widgets.snapshot.chart_process import ChartProcess

    return ChartProcess()


async def _write(
    profile: Profile,
    request: SnapshotRequest,
    render: ChartRenderer | None,
    time_range: TimeRange,
) -> int:
    progress = SnapshotProgressLine(sys.stderr)
    try:
        async with redis_client(profile) as client:
            result = await write_snapshot(
                request, client, render_charts=render, progress=progress, workers=default_workers()
            )
    except OSError as exc:
        raise Failed(f"cannot write {request.out}: {exc}") from None
    finally:
        progress.clear()
    _print_result(result, time_range)
    return exit_codes.OK


def _cmd_snapshot(args: argparse.Namespace) -> int:
    profile = profile_from(args)
    now = time.time()
    try:
        time_range = resolve_range(
            since=args.since, from_text=args.from_time, to_text=args.to_time, now=now
        )
        check_range(time_range, now=now, retention_s=profile.history_retention_s, max_s=MAX_RANGE_S)
    except ValueError as exc:
        return fail(exc, exit_codes.USAGE)
    out: Path = args.out or Path(
        default_file_name(profile.name, time_range.from_s, time_range.to_s)
    )
    problem = _output_problem(out, force=args.force)
    if problem:
        return fail(problem, exit_codes.USAGE)
    render = None if args.no_charts else _chart_renderer()
    request = SnapshotRequest(profile, time_range.from_s, time_range.to_s, out, args.force)
    return run_command(
        profile,
        _write(profile, request, render, time_range),
        interrupted="snapshot interrupted; nothing was written",
    )


def _output_problem(out: Path, *, force: bool) -> str | None:
    if out.is_dir():
        return f"{out} is a directory; give a file name with --out"
    if out.exists() and not force:
        return f"{out} exists; use --force to overwrite it"
    if not out.parent.is_dir():
        return f"directory {out.parent} does not exist"
    return None


def _print_result(result: SnapshotResult, time_range: TimeRange) -> None:
    counts = result.counts
    print(result.path)
    rows = (
        (
            "range",
            f"{format_local_time(time_range.from_s)} → {format_local_time(time_range.to_s)}"
            f" ({format_duration(time_range.seconds)})",
        ),
        ("seconds", f"{counts.seconds:,}"),
        ("events", f"{counts.events:,}"),
        ("dead letters", f"{counts.dead_letters:,}"),
        ("failed payments", f"{counts.failed_payments:,}"),
        ("audit records", f"{counts.audit_records:,}"),
        ("alert events", f"{counts.alert_events:,}"),
        ("size", f"{result.size:,} bytes"),
        ("sha256", result.sha256),
    )
    for name, value in rows:
        print(f"  {name:<16} {value}")


__all__ = ["add_snapshot_command"]
