"""A parker in a process of its own, for the ``kill -9`` tests.

    python -m tests.helpers.parker_proc AMQP_URL REDIS_URL PREFIX DLQ
        [--once] [--batch N] [--pause-s S] [--crash-after-park N]

Prints ``parked acked`` after every batch and ``DONE parked already_parked``
at the end. ``--pause-s`` sleeps after each batch (so a test can kill it
mid-way); ``--crash-after-park N`` SIGKILLs the process right after the N-th
batch was written to Redis and before it is acked: the worst moment to die.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

import redis.asyncio as aioredis

from services.config import FieldPaths
from services.workbench.model import ParkResult
from services.workbench.parker import Parker, ParkerStats
from services.workbench.store import ParkingStore
from tests.helpers.park_links import park_link


async def main(args: argparse.Namespace) -> None:
    redis = aioredis.from_url(args.redis_url)
    store = ParkingStore(redis, args.prefix)
    original = store.park_many
    calls = 0

    async def park_many(*a: Any, **k: Any) -> list[ParkResult]:
        nonlocal calls
        results = await original(*a, **k)
        calls += 1
        if args.crash_after_park and calls >= args.crash_after_park:
            os.kill(os.getpid(), signal.SIGKILL)
        if args.pause_s:
            await asyncio.sleep(args.pause_s)
        return results

    store.park_many = park_many  # type: ignore[method-assign]

    def progress(stats: ParkerStats) -> None:
        print(stats.parked, stats.acked, flush=True)

    parker = Parker(store, args.dlq, FieldPaths(), on_progress=progress, batch_size=args.batch)
    async with park_link(args.amqp_url) as link:
        stats = await parker.run(link, once=args.once)
    print("DONE", stats.parked, stats.already_parked, flush=True)
    await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("amqp_url")
    parser.add_argument("redis_url")
    parser.add_argument("prefix")
    parser.add_argument("dlq")
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pause-s", type=float, default=0.0)
    parser.add_argument("--crash-after-park", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
