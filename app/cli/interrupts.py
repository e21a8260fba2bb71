"""Ctrl+C during a bulk ``payops dlq`` action: stop cleanly first, at once only if asked twice.

asyncio's own handling of Ctrl+C cancels the whole command wherever it is: an
action cancelled between a publish and its confirm leaves entries in doubt, and
on Python 3.11 a cancel racing a completed wait can even be lost (the action
goes on). :class:`BulkInterrupts` replaces it while an action runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from app.cli import exit_codes
from app.cli.dlq_output import print_recovery
from services.workbench.actions.report import ActionReport
from services.workbench.actions.service import ActionService

T = TypeVar("T")


class BulkInterrupts:
    """Ctrl+C (or SIGTERM) during a bulk action. The first sets ``stop``: the action
    sends no further window, the windows already sent finish (their confirms recorded)
    and the summary is printed. A second one cancels ``work`` at once: what awaits a
    confirm stays in doubt, and is listed. Replaces asyncio's own SIGINT handling (a
    cancel of the whole command) while the action runs."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.work: asyncio.Future[Any] | None = None
        self.forced = False
        self._loop = asyncio.get_running_loop()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> BulkInterrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self._interrupted)
                self._previous[sig] = previous
        return self

    def __exit__(self, *_: object) -> None:
        for sig, previous in self._previous.items():
            self._loop.remove_signal_handler(sig)
            signal.signal(sig, previous)

    def _interrupted(self) -> None:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        if not self.stop.is_set():
            self.stop.set()
            print(
                "payops: interrupted - stopping after the windows already sent"
                " (Ctrl+C again to stop at once, leaving unconfirmed entries in doubt)",
                file=sys.stderr,
                flush=True,
            )
            return
        if self.work is not None and not self.work.done() and not self.forced:
            self.forced = True
            print("payops: stopping at once", file=sys.stderr, flush=True)
            self.work.cancel()


async def run_interruptibly(
    work: Callable[[asyncio.Event], Awaitable[T]],
) -> tuple[T | None, BulkInterrupts]:
    """Run ``work(stop)`` under :class:`BulkInterrupts`: its result (None when a second
    Ctrl+C stopped it at once), and whether it was interrupted (``.stop.is_set()``)."""
    with BulkInterrupts() as interrupts:
        task = asyncio.ensure_future(work(interrupts.stop))
        interrupts.work = task
        try:
            return await task, interrupts
        except asyncio.CancelledError:
            if not interrupts.forced:
                raise
            return None, interrupts


async def interrupted(service: ActionService, report: ActionReport) -> int:
    """After a Ctrl+C: what was not attempted stays parked; anything the run left
    claimed (a send that got no confirm) is listed. Exit 130."""
    print(
        f"payops: interrupted: {report.not_attempted:,} not attempted (still parked)",
        file=sys.stderr,
    )
    await _list_left_behind(service)
    return exit_codes.INTERRUPTED


async def stopped_at_once(service: ActionService) -> int:
    print("payops: stopped at once; the summary is incomplete", file=sys.stderr)
    await _list_left_behind(service)
    return exit_codes.INTERRUPTED


async def _list_left_behind(service: ActionService) -> None:
    recovered = await service.recover()
    if not recovered.clean:
        with contextlib.redirect_stdout(sys.stderr):
            print_recovery(recovered)


__all__ = ["BulkInterrupts", "interrupted", "run_interruptibly", "stopped_at_once"]
