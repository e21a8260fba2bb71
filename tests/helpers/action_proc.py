"""A bulk requeue in a process of its own, for the ``kill -9`` tests.

    python -m tests.helpers.action_proc AMQP_URL REDIS_URL PREFIX DLQ
        [--window N] [--depth D] [--pause-s S] [--operator NAME]
        [--crash-after-claim W | --crash-after-publish W | --crash-when-overlapped W]
        [--rate R]

Requeues every parked entry of DLQ. Prints ``progress DONE TOTAL FAILED`` after
every window and ``DONE succeeded skipped failed`` at the end. ``--rate`` runs it as a
paced job (R entries a second). ``--pause-s``
sleeps before each window is sent so a test can kill it mid-way; the ``--crash-*``
options SIGKILL the process at a chosen point of window W: right after the
claims, which a requeue makes with its intents (announced, nothing sent), or right
after the broker confirmed them (confirms are recorded as they arrive, so some of
them may be complete, the last ones not); ``--crash-when-overlapped W`` kills it right
after the W-th claim made while entries of earlier windows were still unfinished (the
windows overlapping: claimed ahead while others publish and finish).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

import redis.asyncio as aioredis

from services.config import Profile
from services.workbench.actions.jobs import Pace
from services.workbench.actions.pipeline import ActionRun
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService
from services.workbench.model import EntryState
from services.workbench.query import ActionTarget, Query
from services.workbench.store import ParkingStore


def _crash_when_overlapped(ledger: Any, nth: int) -> None:
    """SIGKILL right after the ``nth`` claim made while other claimed entries were not
    finished yet."""
    claim, finish = ledger.claim_and_fetch, ledger.finish
    open_entries = 0
    overlapped = 0

    async def claiming(dlq: str, claims: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal open_entries, overlapped
        before = open_entries
        replies = await claim(dlq, claims, *args, **kwargs)
        open_entries += sum(1 for result, _ in replies or [] if result.ok)
        if before > 0:
            overlapped += 1
            if overlapped >= nth:
                print("overlapped", before, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
        return replies

    async def finishing(dlq: str, finishes: Any) -> Any:
        nonlocal open_entries
        replies = await finish(dlq, finishes)
        open_entries -= len(finishes)
        return replies

    ledger.claim_and_fetch, ledger.finish = claiming, finishing


def _crash_after(obj: Any, name: str, nth: int) -> None:
    original = getattr(obj, name)
    calls = 0

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = await original(*args, **kwargs)
        calls += 1
        if calls >= nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(obj, name, wrapper)


async def main(args: argparse.Namespace) -> None:
    redis = aioredis.from_url(args.redis_url)
    store = ParkingStore(redis, args.prefix)
    publisher = ActionPublisher(args.amqp_url)
    profile = Profile(
        name="kill-test",
        amqp_url=args.amqp_url,
        redis_url=args.redis_url,
        dead_letter_queues=(args.dlq,),
        redis_prefix=args.prefix,
    )
    service = ActionService(
        store, publisher, profile, args.operator, "proc", window=args.window, depth=args.depth
    )
    if args.crash_when_overlapped:
        _crash_when_overlapped(service.ledger, args.crash_when_overlapped)
    if args.crash_after_claim:
        _crash_after(service.ledger, "claim_and_fetch", args.crash_after_claim)
    if args.crash_after_publish:
        _crash_after(publisher, "publish_many", args.crash_after_publish)

    original_send = ActionRun._send

    async def send(*a: Any, **k: Any) -> Any:
        if args.pause_s:
            await asyncio.sleep(args.pause_s)
        return await original_send(*a, **k)

    ActionRun._send = send  # type: ignore[method-assign]

    def progress(done: int, total: int, failed: int) -> None:
        print("progress", done, total, failed, flush=True)

    query = Query(states=frozenset({EntryState.PARKED}))
    pace = Pace(rate=args.rate) if args.rate else None
    report = await service.requeue(ActionTarget.for_query(query, 0), progress=progress, pace=pace)
    print("DONE", report.succeeded, report.skipped, report.failed, flush=True)
    await publisher.close()
    await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("amqp_url")
    parser.add_argument("redis_url")
    parser.add_argument("prefix")
    parser.add_argument("dlq")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--crash-when-overlapped", type=int, default=0)
    parser.add_argument("--pause-s", type=float, default=0.0)
    parser.add_argument("--operator", default="robot")
    parser.add_argument("--crash-after-claim", type=int, default=0)
    parser.add_argument("--crash-after-publish", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0)
    asyncio.run(main(parser.parse_args()))
