"""Stopping background tasks on close: a lost cancel does not keep one running, a task that
will not stop is named in the log and left behind instead of hanging the console."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from services.stopping import stop_tasks


async def test_a_cancel_dropped_by_wait_for_does_not_keep_a_loop_running() -> None:
    """The console's hang on close: redis-py sends each command through asyncio.wait_for,
    which on Python 3.11 drops a cancel that lands as the future it waits for completes
    (CPython gh-86296); the loop then goes on and ``cancel(); await task`` never returns."""
    loop = asyncio.get_running_loop()
    replies: list[asyncio.Future[None]] = []
    sending = asyncio.Event()
    dropped = [0]

    async def follow() -> None:  # a changes-stream loop, as the workbench follows one
        while True:
            reply = loop.create_future()
            replies.append(reply)
            sending.set()
            await asyncio.wait_for(reply, 10)  # the command's send, as redis-py awaits it
            sending.clear()
            if task.cancelling():
                dropped[0] += 1  # cancelled, yet still looping
            await asyncio.sleep(0.05)  # the blocking read

    task = asyncio.ensure_future(follow())
    await sending.wait()
    replies[-1].set_result(None)  # the send completes ...
    left = await stop_tasks([task], "test")  # ... as stop() cancels
    assert left == []
    assert task.cancelled()
    if sys.version_info < (3, 12):
        assert dropped[0] == 1  # the first cancel was lost: the re-cancel stopped it


async def test_a_task_that_will_not_stop_is_named_in_the_log_and_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn_parker() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue  # swallows every cancel

    task = asyncio.ensure_future(stubborn_parker())
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="services.stopping"):
        left = await stop_tasks([task], "workbench parking", timeout_s=0.3)
    assert left == [task]
    assert not task.done()
    (record,) = [r for r in caplog.records if "did not stop" in r.getMessage()]
    assert "workbench parking" in record.getMessage()
    assert "stubborn_parker" in record.getMessage()  # where it is
    release.set()
    await asyncio.wait_for(task, 5)


async def test_tasks_asked_to_stop_finish_on_their_own_within_the_grace() -> None:
    """A parker asked to stop parks and acks what it holds: it is not cancelled meanwhile."""
    stop = asyncio.Event()
    parked_all = asyncio.Event()

    async def parker() -> None:
        await stop.wait()
        await asyncio.sleep(0.05)  # park and ack the batch in hand
        parked_all.set()

    task = asyncio.ensure_future(parker())
    await asyncio.sleep(0)
    stop.set()
    left = await stop_tasks([task], "parking", grace_s=5.0)
    assert left == [] and parked_all.is_set() and not task.cancelled()
