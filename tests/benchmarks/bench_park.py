"""bench_park: park N dead letters (default 100,000) against a plain consumer.

Set-up: a work queue with a 1 ms message TTL dead-letters into a fanout
exchange bound to two identical durable DLQs, so one publish of N small
payment events fills both with the same N real dead letters (``x-death``
and all).

- **park**: a :class:`~services.workbench.parker.Parker` drains DLQ A into the parking
  store (Redis), acking only what Redis holds.
- **reference**: a plain aio-pika consumer with manual acks (``async with
  message.process()``, the same prefetch) drains DLQ B.

Both are timed from the first consume until N acks; the ratio is park rate /
consumer rate (target >= 0.8). Redis keys live under a unique prefix in the
benchmark database (``--redis-url``, default db 14) and are deleted
afterwards, as are the queues.

    python -m tests.benchmarks park --n 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import aio_pika
import redis.asyncio as aioredis

from services.config import FieldPaths
from services.workbench.parker import Parker, ParkerStats
from services.workbench.store import ParkingStore
from tests.benchmarks.common import event_bodies
from tests.benchmarks.results import record_figures

DEFAULT_AMQP_URL = os.environ.get("PAYOPS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DEFAULT_REDIS_URL = os.environ.get("PAYOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TARGET_RATIO = 0.8
PREFETCH = 2000


class Topology:
    def __init__(self, tag: str) -> None:
        self.work = f"bench.park.{tag}.work"
        self.dlx = f"bench.park.{tag}.dlx"
        self.dlq_park = f"bench.park.{tag}.dlq-a"
        self.dlq_plain = f"bench.park.{tag}.dlq-b"

    async def declare(self, channel: aio_pika.abc.AbstractChannel) -> None:
        dlx = await channel.declare_exchange(self.dlx, aio_pika.ExchangeType.FANOUT)
        for name in (self.dlq_park, self.dlq_plain):
            queue = await channel.declare_queue(name, durable=True)
            await queue.bind(dlx)
        await channel.declare_queue(
            self.work,
            durable=True,
            arguments={"x-message-ttl": 1, "x-dead-letter-exchange": self.dlx},
        )

    async def delete(self, channel: aio_pika.abc.AbstractChannel) -> None:
        for name in (self.work, self.dlq_park, self.dlq_plain):
            await channel.queue_delete(name)
        await channel.exchange_delete(self.dlx)


async def depth(connection: aio_pika.abc.AbstractConnection, queue: str) -> int:
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await channel.close()


async def fill(connection: aio_pika.abc.AbstractConnection, topology: Topology, n: int) -> float:
    """Publish N events into the TTL queue; wait until both DLQs hold N."""
    started = time.perf_counter()
    channel = await connection.channel(publisher_confirms=True)
    pending: list[asyncio.Future[object]] = []
    for _, body in event_bodies(n):
        message = aio_pika.Message(
            body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        pending.append(
            asyncio.ensure_future(channel.default_exchange.publish(message, topology.work))
        )
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await channel.close()
    deadline = time.monotonic() + 600
    while min([await depth(connection, q) for q in (topology.dlq_park, topology.dlq_plain)]) < n:
        if time.monotonic() > deadline:
            raise TimeoutError("the DLQs never filled")
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


async def run_parker(
    connection: aio_pika.abc.AbstractConnection, store: ParkingStore, dlq: str, n: int
) -> float:
    done = asyncio.Event()
    marks: dict[str, float] = {}

    def progress(stats: ParkerStats) -> None:
        if stats.received and "start" not in marks:
            marks["start"] = time.perf_counter()
        if stats.acked >= n and not done.is_set():
            marks["end"] = time.perf_counter()
            done.set()

    parker = Parker(store, dlq, FieldPaths(), on_progress=progress, prefetch=PREFETCH)
    channel = await connection.channel()
    started = time.perf_counter()
    task = asyncio.ensure_future(parker.run(channel))
    await asyncio.wait({task, asyncio.ensure_future(done.wait())}, return_when="FIRST_COMPLETED")
    parker.request_stop()
    stats = await task
    await channel.close()
    if stats.acked < n:
        raise RuntimeError(f"the parker stopped after {stats.acked} of {n}: {stats.last_error}")
    return marks["end"] - started


async def run_consumer(connection: aio_pika.abc.AbstractConnection, dlq: str, n: int) -> float:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(dlq)
    done = asyncio.Event()
    count = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal count
        async with message.process():
            count += 1
        if count >= n:
            done.set()

    started = time.perf_counter()
    tag = await queue.consume(on_message)
    await done.wait()
    elapsed = time.perf_counter() - started
    await queue.cancel(tag)
    await channel.close()
    return elapsed


async def run(args: argparse.Namespace) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    topology = Topology(tag)
    prefix = f"bench-park-{tag}"
    connection = await aio_pika.connect(args.amqp_url)
    redis = aioredis.from_url(args.redis_url)
    store = ParkingStore(redis, prefix)
    channel = await connection.channel()
    try:
        await topology.declare(channel)
        fill_s = await fill(connection, topology, args.n)
        print(f"set-up: {args.n:,} dead letters in each DLQ after {fill_s:.1f} s")
        consumer_s = await run_consumer(connection, topology.dlq_plain, args.n)
        park_s = await run_parker(connection, store, topology.dlq_park, args.n)
        parked = await store.count(topology.dlq_park)
        if parked != args.n:
            raise RuntimeError(f"parked {parked} entries, expected {args.n}")
    finally:
        await topology.delete(channel)
        await connection.close()
        await store.delete_all(topology.dlq_park)
        await redis.aclose()
    park_rate = args.n / park_s
    consumer_rate = args.n / consumer_s
    ratio = park_rate / consumer_rate
    print(f"park:      {args.n:,} dead letters in {park_s:.2f} s = {park_rate:,.0f} msg/s")
    print(
        f"reference: plain aio-pika consumer (manual ack) {args.n:,} in {consumer_s:.2f} s"
        f" = {consumer_rate:,.0f} msg/s"
    )
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"ratio:     {ratio:.2f} (target >= {TARGET_RATIO}) - {verdict} the target")
    return {"park_rate": park_rate, "consumer_rate": consumer_rate, "ratio": ratio}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench park", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="dead letters (default 100,000)")
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    record_figures("park", await run(parse_args(argv)))


if __name__ == "__main__":
    asyncio.run(main())
