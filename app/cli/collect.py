"""``payops collect``: the headless collector of the flow history and the alert log.

The same live flow as the console's (``FlowProcess``: the tap, the depth
poller, the aggregator and the ``FlowRecorder`` in a spawned child process) on
a plain asyncio loop, with no Qt. It writes the history and records alert
transitions while it holds the history lease (``services.flow.recorder``), so a
team can keep one running all the time and the consoles fill in when it is
gone. One line per change goes to stdout: the RabbitMQ link, the recorder's
role, alerts firing and resolved, tap problems. It keeps retrying while
RabbitMQ or Redis is down and runs until SIGINT/SIGTERM or ``--duration``
(exit 0); a bad config exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from typing import TextIO

from app.cli import arg_types, exit_codes
from app.cli.runner import profile_from
from services.alerts.model import Alert, AlertEvent
from services.config import Profile
from services.flow.process import FlowProcess
from services.flow.protocol import ChildConfig
from services.flow.recorder import RecorderState
from services.links.status import LinkState, LinkStatus
from services.time_range import format_local_time


def add_collect_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common_parent: argparse.ArgumentParser,
) -> None:
    """Register ``payops collect`` (call from ``app.cli.main.build_parser``)."""
    collect = subparsers.add_parser(
        "collect",
        parents=[common_parent],
        help="record the flow history and alerts headless (until Ctrl+C)",
        description="Tap the flow like the console does and, while holding the history "
        "lease, write the per-second history and the alert log to Redis. Prints link, "
        "recorder and alert changes, one line each.",
    )
    collect.add_argument(
        "--duration",
        type=arg_types.positive(float),
        default=None,
        metavar="SECONDS",
        help="stop after this long (default: until Ctrl+C or SIGTERM)",
    )
    collect.set_defaults(handler=_cmd_collect)


def _cmd_collect(args: argparse.Namespace) -> int:
    profile = profile_from(args)
    if not getattr(args, "verbose", False):
        # The report below says what changed; the flow process's INFO lines would repeat it.
        logging.getLogger().setLevel(logging.WARNING)
    return asyncio.run(collect(profile, duration_s=args.duration))


class CollectReport:
    """Prints what the collector sees, one timestamped line per change."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._link: tuple[LinkState, str] | None = None
        self._recorder: tuple[str, str | None, str] | None = None

    def line(self, text: str, at: float | None = None) -> None:
        """Print ``text`` with the local time ``at`` (default: now)."""
        moment = format_local_time(time.time() if at is None else at)
        print(f"{moment} {text}", file=self._out, flush=True)

    def on_status(self, status: LinkStatus) -> None:
        """A link status: printed when its state or reason changed."""
        key = (status.state, status.detail)
        if key == self._link or (status.state is LinkState.CONNECTING and self._link):
            return  # each retry passes through CONNECTING: say it once
        self._link = key
        text = f"{status.service} {status.state.value}"
        if status.state is LinkState.CONNECTED or not status.detail:
            text += f" ({status.target})" if status.target else ""
        else:
            text += f": {status.detail}"
        if status.retry_in_s is not None:
            text += f"; retrying in {status.retry_in_s:g} s"
        self.line(text)

    def on_problem(self, text: str) -> None:
        self.line(f"problem: {text}")

    def on_resolved(self, text: str) -> None:
        self.line(f"resolved: {text}")

    def on_recorder(self, state: RecorderState) -> None:
        """The recorder's state: printed when its role, the holder or the reason changed."""
        key = (state.role, state.holder, state.detail)
        if key == self._recorder:
            return
        self._recorder = key
        self.line(f"history: {state.describe()}")

    def on_alerts(self, active: list[Alert], events: list[AlertEvent]) -> None:
        """Each alert transition, with its time, rule, severity and message."""
        for event in events:
            kind = "FIRING" if event.kind == "firing" else "resolved"
            message = event.message.removeprefix("resolved: ")
            self.line(f"alert {kind} {event.severity} {event.rule}: {message}", event.ts)


async def collect(
    profile: Profile, *, duration_s: float | None = None, out: TextIO | None = None
) -> int:
    """Run the collector until SIGINT/SIGTERM or ``duration_s``; the exit code."""
    report = CollectReport(out or sys.stdout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    flow = FlowProcess(
        ChildConfig(profile),
        report.on_status,
        report.on_problem,
        report.on_resolved,
        on_alerts=report.on_alerts,
        on_recorder=report.on_recorder,
    )
    report.line(
        f"payops collect: profile '{profile.name}', RabbitMQ {profile.amqp_display_url}, "
        f"Redis {profile.redis_display_url} (prefix '{profile.redis_prefix}')"
    )
    try:
        flow.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration_s)
        report.line("stopping")
    finally:
        await flow.stop()
        for sig in handled:
            loop.remove_signal_handler(sig)
    report.line("stopped")
    return exit_codes.OK
