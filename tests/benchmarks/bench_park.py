"""bench_park: park N dead letters (default 100,000) against a plain consumer.

Set-up: a work queue with a 1 ms message TTL dead-letters into a fanout
exchange bound to two identical durable DLQs, so one publish of N small
payment events fills both with the same N real dead letters (``x-death``
and all).

- **park**: a :class:`~services.workbench.parker.Parker` drains DLQ A into the parking
  store (Redis), acking only what Redis holds.
- **reference**: a raw pika consume-and-batched-ack loop drains DLQ B: pika's
  ``BlockingConnection`` with the same prefetch; each delivery becomes the same
  record the parker stores (a :class:`~services.workbench.model.MessageRecord`
  from pika's decoded properties, :func:`~services.workbench.codec.encode_record`:
  body, properties, headers, exchange, routing key, and the requeue's encoded
  properties the parker stores in field ``rq``, written the shortest way from what
  pika decoded: :func:`reference_requeue_template`, checked after the run to give
  the bytes the parker stored); every ``BATCH``
  deliveries (or when no more are waiting) one pipelined round trip writes
  them as hashes, then one ``basic.ack(multiple=True)``. No durability check,
  no fingerprints, summaries, index or redelivery marks: the parker's
  guarantees are what the ratio measures.

They take turns (reference, park, reference, park..., ``--turns`` each, a
share of N per turn) so that the load of a shared machine weighs on both
alike; each turn is timed from the start of consuming until its share is
acked (the parker's turn: until it stopped, having parked and acked what it
held then too), and a rate is what was acked in its turns over their time:
both count N in all. The ratio
is park rate / reference rate (target >= 0.6, issue 12). The CPU each side
spent per dead letter is printed too (it moves less with the machine's load).
Redis keys live under a unique prefix in the benchmark database
(``--redis-url``, default db 14) and are deleted afterwards, as are the queues.

    python -m tests.benchmarks park --n 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import aio_pika
import pika
import redis
import redis.asyncio as aioredis

from services.config import FieldPaths
from services.links.headers import ACTION_ID_HEADER
from services.workbench.codec import (
    PROPERTY_NAMES,
    decode_props,
    encode_field_value,
    encode_properties,
    encode_record,
)
from services.workbench.model import MessageRecord
from services.workbench.park_link import ParkLink
from services.workbench.parker import Parker, ParkerStats
from services.workbench.republish import REQUEUE_FIELD, RUN_ID_LENGTH, requeue_headers
from services.workbench.store import ParkingStore
from tests.benchmarks.common import event_bodies
from tests.benchmarks.results import record_figures

DEFAULT_AMQP_URL = os.environ.get("PAYOPS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DEFAULT_REDIS_URL = os.environ.get("PAYOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TARGET_RATIO = 0.6
PREFETCH = 2000
BATCH = 500


def reference_requeue_template(record: MessageRecord, entry_id: str) -> bytes:
    """The requeue's encoded properties (field ``rq``, :mod:`services.workbench.republish`'s
    layout) as a hand-written loop writes them for these dead letters: the properties as
    pika decoded them, the requeue's headers in their order (the broker's own are all
    dropped, so none keeps its wire bytes), the placeholder action id last."""
    placeholder = "\x00" * RUN_ID_LENGTH + "." + entry_id
    headers = requeue_headers(record, "requeue")
    headers[ACTION_ID_HEADER] = placeholder
    table = b"".join(
        bytes((len(key),)) + key.encode() + encode_field_value(value)
        for key, value in headers.items()
    )
    plain = encode_properties(record.properties, None)
    flags = int.from_bytes(plain[:2], "big") | 0x2000
    before = 2  # content_type and content_encoding come before the headers
    for bit in (0x8000, 0x4000):
        if flags & bit:
            before += 1 + plain[before]
    table_at = before
    encoded = (
        flags.to_bytes(2, "big")
        + plain[2:before]
        + len(table).to_bytes(4, "big")
        + table
        + plain[before:]
    )
    slot_at = len(encoded) - len(plain[before:]) - len(placeholder) - 5
    return b"\x01" + table_at.to_bytes(4, "big") + slot_at.to_bytes(4, "big") + encoded


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
    amqp_url: str, store: ParkingStore, dlq: str, n: int
) -> tuple[int, float, float]:
    """Park until ``n`` are acked, then stop: (acked, seconds, CPU seconds of the process),
    counted and timed up to the parker's last ack. What it holds when ``n`` are acked (up
    to its prefetch window) is parked and acked before it stops: counted and timed too
    (they were once left out of both, so the turns' sum fell short of N: 92,700 printed
    for 100,000 parked)."""
    done = asyncio.Event()
    marks: dict[str, float] = {}

    def progress(stats: ParkerStats) -> None:
        marks["end"] = time.perf_counter()  # the last report: after its last ack
        marks["cpu"] = time.process_time()
        marks["acked"] = stats.acked
        if stats.acked >= n:
            done.set()

    parker = Parker(store, dlq, FieldPaths(), on_progress=progress, prefetch=PREFETCH)
    link = ParkLink(amqp_url)
    await link.connect()
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.ensure_future(parker.run(link))
    await asyncio.wait({task, asyncio.ensure_future(done.wait())}, return_when="FIRST_COMPLETED")
    parker.request_stop()
    stats = await task
    await link.close()
    if stats.acked < n:
        raise RuntimeError(f"the parker stopped after {stats.acked} of {n}: {stats.last_error}")
    return int(marks["acked"]), marks["end"] - started, marks["cpu"] - cpu


def run_reference(
    amqp_url: str, redis_url: str, dlq: str, prefix: str, n: int
) -> tuple[int, float, float]:
    """The raw pika loop (see the module docstring) until ``n`` are acked: (acked,
    seconds, CPU seconds of its thread); what it holds unacked then goes back to the
    queue with the connection."""
    client = redis.Redis.from_url(redis_url)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=PREFETCH)
    pending: list[tuple[int, bytes, pika.BasicProperties, str, str]] = []
    acked = 0

    def on_message(
        _channel: object,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        pending.append((method.delivery_tag, body, properties, method.exchange, method.routing_key))

    def flush() -> None:
        nonlocal acked
        pipe = client.pipeline(transaction=False)
        for tag, body, properties, exchange, routing_key in pending:
            record = MessageRecord(
                body=body,
                properties={
                    name: value
                    for name in PROPERTY_NAMES
                    if name != "headers" and (value := getattr(properties, name, None)) is not None
                },
                headers=properties.headers or {},
                exchange=exchange,
                routing_key=routing_key,
            )
            fields: dict[str, bytes] = encode_record(record)
            fields[REQUEUE_FIELD] = reference_requeue_template(record, str(tag))
            pipe.hset(f"{prefix}:ref:{tag}", mapping=fields)  # type: ignore[arg-type]
        pipe.execute()
        channel.basic_ack(pending[-1][0], multiple=True)
        acked += len(pending)
        pending.clear()

    started, cpu = time.perf_counter(), time.thread_time()
    channel.basic_consume(dlq, on_message, auto_ack=False)
    while acked < n:
        before = len(pending)
        connection.process_data_events(time_limit=0 if pending else 0.02)
        if pending and (len(pending) >= BATCH or len(pending) == before):
            flush()
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
    connection.close()  # what was delivered and not acked goes back to the queue
    for keys in _batched(list(client.scan_iter(f"{prefix}:ref:*", count=5000)), 5000):
        client.delete(*keys)
    client.close()
    return acked, elapsed, cpu


async def check_reference_template(client: aioredis.Redis, store: ParkingStore, dlq: str) -> None:
    """The reference writes the ``rq`` bytes the parker stored: one parked entry's raw
    properties, decoded by pika as the reference reads them, give its stored ``rq``."""
    keys = store.keys(dlq)
    (entry_id,) = [i.decode() for i in await client.zrange(keys.idx, 0, 0)]
    fields = await client.hgetall(keys.entry(entry_id))
    _, wire = decode_props(fields[b"props"])
    assert wire is not None
    properties = pika.BasicProperties()
    properties.decode(wire)
    record = MessageRecord(
        body=fields[b"body"],
        properties={
            name: value
            for name in PROPERTY_NAMES
            if name != "headers" and (value := getattr(properties, name, None)) is not None
        },
        headers=properties.headers or {},
    )
    if reference_requeue_template(record, entry_id) != fields[REQUEUE_FIELD.encode()]:
        raise RuntimeError("the reference's rq differs from what the parker stored")
    print("rq:        the reference writes the bytes the parker stored (checked on one entry)")


def _batched(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


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
        # In turns (reference, park, reference, park...), each its share of N, so that a
        # change in the machine's load during the run weighs on both alike.
        consumer_n = consumer_s = consumer_cpu = park_n = park_s = park_cpu = 0.0
        consumer_left = park_left = args.n
        for turn in range(args.turns, 0, -1):
            count, seconds, cpu = await asyncio.to_thread(
                run_reference,
                args.amqp_url,
                args.redis_url,
                topology.dlq_plain,
                prefix,
                -(-consumer_left // turn),
            )
            consumer_n, consumer_s, consumer_left = (
                consumer_n + count,
                consumer_s + seconds,
                consumer_left - count,
            )
            consumer_cpu += cpu
            count, seconds, cpu = await run_parker(
                args.amqp_url, store, topology.dlq_park, -(-park_left // turn)
            )
            park_n, park_s, park_cpu = park_n + count, park_s + seconds, park_cpu + cpu
            park_left = args.n - await store.count(topology.dlq_park)
            if consumer_left <= 0 and park_left <= 0:
                break
        parked = await store.count(topology.dlq_park)
        if parked != args.n or park_n != args.n:
            raise RuntimeError(f"parked {parked} entries ({park_n:,.0f} acked), expected {args.n}")
        await check_reference_template(redis, store, topology.dlq_park)
    finally:
        await topology.delete(channel)
        await connection.close()
        await store.delete_all(topology.dlq_park)
        await redis.aclose()
    park_rate = park_n / park_s
    consumer_rate = consumer_n / consumer_s
    ratio = park_rate / consumer_rate
    print(f"park:      {park_n:,.0f} dead letters in {park_s:.2f} s = {park_rate:,.0f} msg/s")
    print(
        f"reference: raw pika consume, pipelined Redis writes, batched acks: {consumer_n:,.0f}"
        f" in {consumer_s:.2f} s = {consumer_rate:,.0f} msg/s ({args.turns} turns each)"
    )
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"ratio:     {ratio:.2f} (target >= {TARGET_RATIO}) - {verdict} the target")
    park_us, consumer_us = 1e6 * park_cpu / park_n, 1e6 * consumer_cpu / consumer_n
    print(
        f"CPU:       park {park_us:.0f} us per dead letter (its process), reference"
        f" {consumer_us:.0f} us (its thread): {consumer_us / park_us:.2f} as a ratio of rates"
    )
    return {
        "park_rate": park_rate,
        "reference_rate": consumer_rate,
        "ratio": ratio,
        "park_cpu_us": park_us,
        "reference_cpu_us": consumer_us,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench park", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="dead letters (default 100,000)")
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--turns", type=int, default=4, help="alternate turns of each side (default 4)"
    )
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    record_figures("park", await run(parse_args(argv)))


if __name__ == "__main__":
    asyncio.run(main())
