"""``payops dlq park``: park the profile's dead-letter queues into Redis, headless."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from app.cli import exit_codes
from app.cli.dlq_common import dead_letter_queues, parking_store, run_dlq
from app.cli.progress import overwrite_line
from app.cli.runner import Refused, amqp_failure
from app.flow_causes import flow_failure_lookup
from services.config import Profile
from services.links.amqp_connect import connect_aio_pika

log = logging.getLogger(__name__)

ONCE_GIVE_UP_S = 30.0
"""``park --once``: how long Redis may be away before the run gives up (exit 1)."""


def cmd_park(args: argparse.Namespace) -> int:
    async def body(profile: Profile) -> int:
        from services.workbench.durability import VolatileStore
        from services.workbench.park_runner import ParkingRunner
        from services.workbench.parker import ParkerStats

        dlqs = args.queue or dead_letter_queues(profile)
        try:  # fail fast on a wrong URL; later outages are reconnected
            await (await connect_aio_pika(profile.amqp_endpoint, timeout=10)).close()
        except (TimeoutError, OSError) as exc:
            raise amqp_failure(profile, exc) from None
        tty = sys.stderr.isatty()

        def progress(stats: ParkerStats) -> None:
            if tty:
                overwrite_line(
                    f"{stats.dlq}: parked {stats.parked:,}, already parked {stats.already_parked:,}"
                )

        def problem(text: str, active: bool) -> None:
            if tty:
                print(file=sys.stderr)
            print(f"payops: {text}" if active else f"payops: resolved: {text}", file=sys.stderr)

        async with parking_store(profile) as store:
            runner = ParkingRunner(
                profile,
                store,
                dlqs,
                once=args.once,
                on_progress=progress,
                on_problem=problem,
                give_up_after_s=ONCE_GIVE_UP_S if args.once else None,
                flow_failures=flow_failure_lookup(store.redis, profile),
            )
            try:
                durability = await runner.check_store()
            except VolatileStore as exc:
                log.error("%s", exc)
                raise Refused(str(exc)) from None
            if durability.durable is not True:
                print(f"payops: warning: {durability.detail}", file=sys.stderr)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, runner.request_stop)
            if not args.once:
                print(
                    f"payops: parking {', '.join(dlqs)} into Redis; Ctrl+C to stop",
                    file=sys.stderr,
                )
            results = await runner.run()
        if tty:
            print(file=sys.stderr)
        code = exit_codes.OK
        for dlq, result in zip(dlqs, results, strict=True):
            if isinstance(result, BaseException):
                why = str(result) or type(result).__name__
                print(f"payops: parking {dlq} failed: {why}", file=sys.stderr)
                code = exit_codes.FAILED
            else:
                print(f"{dlq}: parked {result.parked:,}, already parked {result.already_parked:,}")
        return code

    return run_dlq(args, body)
