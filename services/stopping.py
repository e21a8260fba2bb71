"""Stopping background tasks: bounded in time, and sure to reach every task (the console's
controllers, the flow child).

Why a plain ``task.cancel(); await task`` is not enough here: on Python 3.11,
``asyncio.wait_for`` drops a cancellation that arrives just as the future it
waits for completes (CPython gh-86296, fixed in 3.12). redis-py sends every
command through ``asyncio.wait_for`` when the client has a ``socket_timeout``,
so a cancel that lands while a command is being sent is lost and the task goes
on: a ``while True`` loop (following a changes stream, parking) then never
ends, and whoever awaits it hangs. That was the console's intermittent hang on
close (about one SIGTERM in three during a demo incident).

:func:`stop_tasks` therefore cancels again while a task is still running, waits
at most ``timeout_s`` in all, and logs each task that did not finish with where
it is, so the caller can close the connections anyway and shut down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, Final

log = logging.getLogger(__name__)

STOP_TIMEOUT_S: Final = 5.0
"""How long a controller waits for its tasks before it gives up on them."""
RECANCEL_S: Final = 1.0
"""A task still running this long after a cancel is cancelled again (the cancel may
have been dropped, see the module docstring)."""


async def stop_tasks(
    tasks: Iterable[asyncio.Future[Any]],
    what: str,
    *,
    grace_s: float = 0.0,
    timeout_s: float = STOP_TIMEOUT_S,
) -> list[asyncio.Future[Any]]:
    """Stop ``tasks``; return those still running after ``grace_s + timeout_s`` (logged).

    For ``grace_s`` the tasks may finish on their own (the caller asked them to,
    e.g. a parker finishing its batch); then each is cancelled, and cancelled
    again every :data:`RECANCEL_S` while it runs, until ``timeout_s`` has passed.
    Their results and errors are collected (never "exception was never retrieved").
    """
    pending = {task for task in tasks if not task.done()}
    finished = [task for task in tasks if task.done()]
    loop = asyncio.get_running_loop()
    if pending and grace_s > 0:
        done, pending = await asyncio.wait(pending, timeout=grace_s)
        finished += done
    deadline = loop.time() + timeout_s
    while pending:
        left = deadline - loop.time()
        if left <= 0:
            break
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
        finished += done
    for task in finished:
        _collect(task, what)
    for task in pending:
        log.error(
            "%s: a task did not stop within %.1f s; going on without it: %s",
            what,
            grace_s + timeout_s,
            describe_task(task),
        )
    return list(pending)


async def bounded(step: Awaitable[Any], what: str, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Await ``step`` (a stop or close) for at most ``timeout_s``; False (logged) if it did
    not finish, then it is cancelled like :func:`stop_tasks` cancels."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if done:
        _collect(task, what)
        return True
    log.error("%s did not finish within %.1f s: %s", what, timeout_s, describe_task(task))
    await stop_tasks([task], what, timeout_s=RECANCEL_S * 2)
    return False


def describe_task(task: asyncio.Future[Any]) -> str:
    """The task's name and its chain of awaits, innermost last (``file:line function``)."""
    name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
    frames: list[str] = []
    awaited: Any = task.get_coro() if isinstance(task, asyncio.Task) else None
    while awaited is not None and len(frames) < 40:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        frame = frame or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        frames.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        awaited = (
            getattr(awaited, "cr_await", None)
            or getattr(awaited, "ag_await", None)
            or getattr(awaited, "gi_yieldfrom", None)
        )
    return f"{name} at " + (" -> ".join(frames) if frames else "(no frame)")


def _collect(task: asyncio.Future[Any], what: str) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.warning("%s: a task ended with %s: %s", what, type(exc).__name__, exc)
