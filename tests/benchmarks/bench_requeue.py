"""bench_requeue: bulk requeue of N parked entries (default 100,000) against RabbitMQ's shovel.

Set-up: N persistent payment events dead-lettered by RabbitMQ (a work queue
with a 1 ms TTL) into a DLQ and parked by the parker; the work queue is then
declared again without the TTL, durable, as the requeue target.

- **requeue**: :meth:`ActionService.requeue` of everything parked (a query
  target, resolved through the entry index), exactly once: claims, intent
  records, publishes with confirms and ``mandatory=True``, completions, audit.
  Timed from the confirmed (frozen) target on: the query is resolved once,
  before, as for the confirmation dialog, and that time is printed beside it.
- **reference**: RabbitMQ's own shovel doing the same work: moving N dead
  letters of the same events (dead-lettered by RabbitMQ as the requeue's were,
  so they carry their ``x-death`` history) from a DLQ back to a durable work
  queue (a dynamic shovel, ``src-delete-after`` ``queue-length``, confirms),
  timed from its first message in the destination until the destination holds
  N. Until this head the shovel moved freshly published messages without any
  headers; that rate is still measured once and printed beside it (the shovel,
  inside the broker, moves both at about the same rate; a client publishing
  headers is much slower than one publishing none: see the ceiling).
- **ceiling**: a raw pika publisher (``AsyncioConnection``, the library the
  requeue publishes with) sending N persistent messages of the same shape (the
  bench's bodies with the headers of a message the requeue published: RabbitMQ
  takes a message with headers much slower than one without) to a durable queue
  with ``mandatory=True`` and confirms, as many awaiting their confirm as the
  requeue keeps (window x depth), nothing else: what publishing alone allows on
  this machine.

The ratio is requeue rate / shovel rate (target >= 0.8, issue 12); the raw
publisher's ratio to the shovel is printed beside it. Each also prints what a
message costs the machine in CPU (``server_cpu``): the requeue's own process,
Redis (``INFO cpu``) and RabbitMQ (a local node's ``beam.smp``, from /proc; "n/a"
for a broker elsewhere), the shovel's RabbitMQ, the raw publisher's process and
RabbitMQ - on two cores, what the three together need per message bounds the
rate as much as any latency. The set-up enables
``rabbitmq_shovel`` with ``rabbitmq-plugins`` (and disables it again if it
was not enabled; the product itself never needs it), so it needs to run where
``rabbitmqctl`` can reach the broker. Queues, the shovel and the Redis keys
(benchmark database, default db 14) are removed afterwards.

    python -m tests.benchmarks requeue --n 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
import uuid
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import pika
import pika.adapters.asyncio_connection
import pika.channel
import pika.frame

from services.config import FieldPaths, Profile
from services.links.endpoints import RedisSettings
from services.links.redis_client import make_redis_client
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ACTION_DEPTH, ACTION_WINDOW, ActionService
from services.workbench.model import EntryState
from services.workbench.park_link import ParkLink
from services.workbench.parker import Parker
from services.workbench.query import ActionTarget, Query
from services.workbench.store import ParkingStore
from tests.benchmarks.common import event_bodies
from tests.benchmarks.results import record_figures
from tests.benchmarks.server_cpu import ServerCpu, per_message_us, shown_us

DEFAULT_AMQP_URL = os.environ.get("PAYOPS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DEFAULT_REDIS_URL = os.environ.get("PAYOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TARGET_RATIO = 0.8
SHOVEL_PLUGIN = "rabbitmq_shovel"


async def command(*argv: str, check: bool = True) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {text.strip()}")
    return proc.returncode or 0, text


async def depth(connection: aio_pika.abc.AbstractConnection, queue: str) -> int:
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await channel.close()


async def wait_depth(
    connection: aio_pika.abc.AbstractConnection, queue: str, n: int, timeout_s: float = 900
) -> None:
    deadline = time.monotonic() + timeout_s
    while await depth(connection, queue) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{queue} never reached {n:,} messages")
        await asyncio.sleep(0.05)


async def publish_persistent(
    connection: aio_pika.abc.AbstractConnection, queue: str, n: int
) -> None:
    channel = await connection.channel(publisher_confirms=True)
    pending: list[asyncio.Future[object]] = []
    for _, body in event_bodies(n):
        message = aio_pika.Message(
            body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        pending.append(asyncio.ensure_future(channel.default_exchange.publish(message, queue)))
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await channel.close()


async def dead_letter(
    connection: aio_pika.abc.AbstractConnection,
    channel: aio_pika.abc.AbstractChannel,
    work: str,
    dlq: str,
    n: int,
) -> None:
    """N of the bench's events dead-lettered by RabbitMQ from ``work`` (declared with a
    1 ms TTL) through the default exchange straight into ``dlq``."""
    await channel.declare_queue(
        work,
        durable=True,
        arguments={
            "x-message-ttl": 1,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        },
    )
    await publish_persistent(connection, work, n)
    await wait_depth(connection, dlq, n)


async def set_up_parked(
    connection: aio_pika.abc.AbstractConnection,
    amqp_url: str,
    store: ParkingStore,
    work: str,
    dlq: str,
    n: int,
) -> float:
    """N real dead letters parked; ``work`` declared again, plain, as the target."""
    started = time.perf_counter()
    channel = await connection.channel()
    queue = await channel.declare_queue(dlq, durable=True)
    await dead_letter(connection, channel, work, dlq, n)
    parker = Parker(store, queue.name, FieldPaths(), prefetch=2000)
    link = ParkLink(amqp_url)
    await link.connect()
    try:
        stats = await parker.run(link, once=True)
    finally:
        await link.close()
    if stats.parked != n:
        raise RuntimeError(f"parked {stats.parked:,} of {n:,}")
    await channel.queue_delete(work)
    await channel.declare_queue(work, durable=True)
    await channel.close()
    return time.perf_counter() - started


async def run_requeue(
    args: argparse.Namespace,
    connection: aio_pika.abc.AbstractConnection,
    store: ParkingStore,
    work: str,
    dlq: str,
) -> tuple[float, float, float, ServerCpu]:
    """Seconds the requeue took, seconds resolving the query took, the requeue's CPU
    seconds in this process (nothing else runs in it meanwhile) and the servers' CPU
    meanwhile."""
    profile = Profile(
        name="bench",
        amqp_url=args.amqp_url,
        redis_url=args.redis_url,
        dead_letter_queues=(dlq,),
        redis_prefix=store.prefix,
    )
    publisher = ActionPublisher(args.amqp_url, window=args.window * args.depth)
    service = ActionService(
        store, publisher, profile, "bench", "bench", window=args.window, depth=args.depth
    )
    query = Query(states=frozenset({EntryState.PARKED}))
    try:
        await publisher.connect()
        started = time.perf_counter()
        # Resolved once, as the console and the CLI do for the confirmation: the action
        # acts on the frozen rows.
        target = await service.freeze(ActionTarget.for_query(query, args.n))
        resolved = time.perf_counter() - started
        servers = await ServerCpu().start(store.redis)
        started, cpu = time.perf_counter(), time.process_time()
        report = await service.requeue(target)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await servers.stop(store.redis)
    finally:
        await publisher.close()
    if report.succeeded != args.n:
        raise RuntimeError(f"requeued {report.succeeded:,} of {args.n:,}: {report.headline()}")
    if await depth(connection, work) != args.n:
        raise RuntimeError(f"{work} holds {await depth(connection, work):,}, not {args.n:,}")
    return elapsed, resolved, cpu, servers


def vhost_of(amqp_url: str) -> str:
    """The virtual host an AMQP URL names ("/" when it names none)."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


async def run_shovel(
    connection: aio_pika.abc.AbstractConnection,
    source: str,
    dest: str,
    n: int,
    name: str,
    vhost: str = "/",
    *,
    dead_letters: bool = True,
) -> tuple[float, float | None]:
    """Seconds RabbitMQ's shovel takes to move ``n`` messages ``source`` -> ``dest`` in
    ``vhost`` (the shovel's parameter and its URIs name it: a shovel in another vhost
    than the queues' would find no source, delete itself and never move anything), and
    the broker's CPU seconds meanwhile (None: not on this machine). ``source`` holds
    ``n`` dead letters of the bench's events, or with ``dead_letters=False`` the
    events as published, without headers."""
    channel = await connection.channel()
    await channel.declare_queue(source, durable=True)
    await channel.declare_queue(dest, durable=True)
    if dead_letters:  # dead-lettered by RabbitMQ, as the parked entries were
        feed = f"{source}.feed"
        await dead_letter(connection, channel, feed, source, n)
        await channel.queue_delete(feed)
    else:
        await publish_persistent(connection, source, n)
        await wait_depth(connection, source, n)
    await channel.close()
    uri = "amqp://" if vhost == "/" else "amqp:///" + quote(vhost, safe="")
    definition = {
        "src-protocol": "amqp091",
        "src-uri": uri,
        "src-queue": source,
        "src-delete-after": "queue-length",
        "dest-protocol": "amqp091",
        "dest-uri": uri,
        "dest-queue": dest,
        "ack-mode": "on-confirm",
    }
    first: float | None = None
    first_depth = 0
    done: float | None = None

    async def watch() -> None:
        nonlocal first, first_depth, done
        while True:
            now_depth = await depth(connection, dest)
            now = time.perf_counter()
            if first is None and now_depth > 0:
                first, first_depth = now, now_depth
            if now_depth >= n:
                done = now
                return
            await asyncio.sleep(0.01)

    watcher = asyncio.ensure_future(watch())
    servers = await ServerCpu().start()
    try:
        await command(
            "rabbitmqctl", "set_parameter", "-p", vhost, "shovel", name, json.dumps(definition)
        )
        await asyncio.wait_for(watcher, 900)
        await servers.stop()
    finally:
        watcher.cancel()
        await command("rabbitmqctl", "clear_parameter", "-p", vhost, "shovel", name, check=False)
    assert first is not None and done is not None
    # Rate over what moved between the first and the last observation.
    return (done - first) * n / max(n - first_depth, 1), servers.broker_s


async def published_headers(
    connection: aio_pika.abc.AbstractConnection, queue: str
) -> dict[str, object]:
    """The headers of the first message in ``queue`` (left there)."""
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        message = await declared.get(no_ack=False)
        await message.nack(requeue=True)
        return dict(message.headers or {})
    finally:
        await channel.close()


async def run_raw_publisher(
    amqp_url: str, queue: str, n: int, window: int, headers: dict[str, object]
) -> tuple[float, float, float | None]:
    """Seconds a bare pika publisher takes to send ``n`` persistent messages with
    ``headers`` to ``queue`` (declared durable) with confirms and ``mandatory=True``,
    ``window`` unconfirmed; its CPU seconds and the broker's meanwhile (None: not on this
    machine)."""
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[pika.adapters.asyncio_connection.AsyncioConnection] = (
        loop.create_future()
    )
    connection = pika.adapters.asyncio_connection.AsyncioConnection(
        pika.URLParameters(amqp_url),
        on_open_callback=opened.set_result,
        on_open_error_callback=lambda _c, exc: opened.set_exception(RuntimeError(str(exc))),
        custom_ioloop=loop,
    )
    await opened
    ready: asyncio.Future[None] = loop.create_future()
    channels: list[pika.channel.Channel] = []

    def on_channel(channel: pika.channel.Channel) -> None:
        channels.append(channel)
        channel.queue_declare(queue, durable=True, callback=lambda _f: ready.set_result(None))

    connection.channel(on_open_callback=on_channel)
    await ready
    channel = channels[0]
    confirmed = 0
    space = asyncio.Event()
    done: asyncio.Future[None] = loop.create_future()
    unconfirmed: set[int] = set()

    def on_confirm(frame: pika.frame.Method) -> None:
        nonlocal confirmed
        tag = frame.method.delivery_tag
        settled = [t for t in unconfirmed if t <= tag] if frame.method.multiple else [tag]
        unconfirmed.difference_update(settled)
        confirmed += len(settled)
        space.set()
        if confirmed >= n and not done.done():
            done.set_result(None)

    selected: asyncio.Future[None] = loop.create_future()
    channel.confirm_delivery(on_confirm, callback=lambda _f: selected.set_result(None))
    await selected
    properties = pika.BasicProperties(
        content_type="application/json", delivery_mode=2, headers=headers
    )
    bodies = [body for _, body in event_bodies(n)]
    servers = await ServerCpu().start()
    started, cpu = time.perf_counter(), time.process_time()
    for tag, body in enumerate(bodies, start=1):
        while len(unconfirmed) >= window:
            space.clear()
            await space.wait()
        unconfirmed.add(tag)
        channel.basic_publish("", queue, body, properties=properties, mandatory=True)
        if tag % 100 == 0:
            await asyncio.sleep(0)  # let the socket drain, as the requeue's windows do
    await done
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await servers.stop()
    connection.close()
    return elapsed, cpu, servers.broker_s


async def run(args: argparse.Namespace) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    work, dlq = f"bench.requeue.{tag}.work", f"bench.requeue.{tag}.dlq"
    shovel_queues = [
        f"bench.shovel.{tag}.{part}" for part in ("src1", "dest1", "src2", "dest2", "src3", "dest3")
    ]
    raw_queue = f"bench.raw.{tag}"
    code, _ = await command("rabbitmq-plugins", "is_enabled", SHOVEL_PLUGIN, check=False)
    was_enabled = code == 0
    if not was_enabled:
        print(f"set-up: enabling {SHOVEL_PLUGIN} for the reference")
        await command("rabbitmq-plugins", "enable", SHOVEL_PLUGIN)
    connection = await aio_pika.connect(args.amqp_url)
    redis = make_redis_client(RedisSettings.standalone(args.redis_url))  # as the product's
    store = ParkingStore(redis, f"bench-requeue-{tag}")
    try:
        setup_s = await set_up_parked(connection, args.amqp_url, store, work, dlq, args.n)
        print(f"set-up: {args.n:,} dead letters parked in {setup_s:.1f} s")
        # The reference runs before and after the requeue: a busy machine drifts.
        src, dst = shovel_queues[0], shovel_queues[1]
        shovel_before, shovel_cpu_before = await run_shovel(
            connection, src, dst, args.n, f"bench-{tag}-1", vhost_of(args.amqp_url)
        )
        requeue_s, resolve_s, cpu_s, servers = await run_requeue(args, connection, store, work, dlq)
        headers = await published_headers(connection, work)
        raw_s, raw_cpu_s, raw_broker_s = await run_raw_publisher(
            args.amqp_url, raw_queue, args.n, args.window * args.depth, headers
        )
        src, dst = shovel_queues[2], shovel_queues[3]
        shovel_after, shovel_cpu_after = await run_shovel(
            connection, src, dst, args.n, f"bench-{tag}-2", vhost_of(args.amqp_url)
        )
        shovel_s = (shovel_before + shovel_after) / 2
        src, dst = shovel_queues[4], shovel_queues[5]
        plain_s, _ = await run_shovel(
            connection, src, dst, args.n, f"bench-{tag}-3", vhost_of(args.amqp_url),
            dead_letters=False,
        )  # fmt: skip
    finally:
        channel = await connection.channel()
        for queue in (work, dlq, raw_queue, *shovel_queues):
            with contextlib.suppress(Exception):
                await channel.queue_delete(queue)
        await connection.close()
        await store.delete_all(dlq)
        async for key in redis.scan_iter(match=f"{store.prefix}*", count=1000):
            await redis.unlink(key)  # the job's records, its replay claims
        await redis.aclose()
        if not was_enabled:
            await command("rabbitmq-plugins", "disable", SHOVEL_PLUGIN, check=False)
    requeue_rate = args.n / requeue_s
    shovel_rate = args.n / shovel_s
    ratio = requeue_rate / shovel_rate
    print(
        f"requeue:   {args.n:,} parked entries in {requeue_s:.2f} s = {requeue_rate:,.0f} msg/s"
        f" (window {args.window} x {args.depth}; resolving the query alone: {resolve_s:.2f} s)"
    )
    own_us = cpu_s * 1e6 / args.n
    redis_us = per_message_us(servers.redis_s, args.n)
    broker_us = per_message_us(servers.broker_s, args.n)
    machine_us = None if redis_us is None or broker_us is None else own_us + redis_us + broker_us
    print(
        f"           CPU per entry: this process {own_us:.1f} µs, Redis {shown_us(redis_us)},"
        f" RabbitMQ {shown_us(broker_us)}: {shown_us(machine_us)} of the machine's"
    )
    shovel_cpu = (
        None
        if shovel_cpu_before is None or shovel_cpu_after is None
        else (shovel_cpu_before + shovel_cpu_after) / 2
    )
    shovel_us = per_message_us(shovel_cpu, args.n)
    raw_own_us = raw_cpu_s * 1e6 / args.n
    raw_broker_us = per_message_us(raw_broker_s, args.n)
    print(
        f"reference: rabbitmq shovel, {args.n:,} durable dead letters DLQ to work queue in"
        f" {shovel_s:.2f} s = {shovel_rate:,.0f} msg/s (mean of a run before,"
        f" {args.n / shovel_before:,.0f} msg/s, and one after, {args.n / shovel_after:,.0f} msg/s);"
        f" RabbitMQ's CPU {shown_us(shovel_us)} per message"
    )
    plain_rate = args.n / plain_s
    print(
        f"           the same shovel moving {args.n:,} messages without headers (the reference"
        f" before): {plain_rate:,.0f} msg/s; the requeue is {requeue_rate / plain_rate:.2f} of it"
    )
    raw_rate = args.n / raw_s
    print(
        f"ceiling:   a raw pika publisher (confirms, mandatory, {args.window * args.depth}"
        f" unconfirmed), {args.n:,} persistent messages with the requeue's headers"
        f" ({', '.join(sorted(headers))}) in {raw_s:.2f} s = {raw_rate:,.0f}"
        f" msg/s = {raw_rate / shovel_rate:.2f} of the shovel; the requeue is"
        f" {requeue_rate / raw_rate:.2f} of it; CPU per message: the publisher"
        f" {raw_own_us:.1f} µs, RabbitMQ {shown_us(raw_broker_us)}"
    )
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"ratio:     {ratio:.2f} (target >= {TARGET_RATIO}) - {verdict} the target")
    print("for scale: AWS SQS redrive is capped at 500 msg/s")
    return {
        "requeue_rate": requeue_rate,
        "shovel_rate": shovel_rate,
        "plain_shovel_rate": plain_rate,
        "plain_shovel_ratio": requeue_rate / plain_rate,
        "ratio": ratio,
        "requeue_cpu_us_per_entry": own_us,
        **({} if redis_us is None else {"requeue_redis_cpu_us_per_entry": redis_us}),
        **({} if broker_us is None else {"requeue_broker_cpu_us_per_entry": broker_us}),
        **({} if shovel_us is None else {"shovel_broker_cpu_us_per_message": shovel_us}),
        "raw_publisher_cpu_us_per_message": raw_own_us,
        **({} if raw_broker_us is None else {"raw_broker_cpu_us_per_message": raw_broker_us}),
        "raw_publisher_rate": raw_rate,
        "raw_publisher_ratio": raw_rate / shovel_rate,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench requeue", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="parked entries (default 100,000)")
    parser.add_argument(
        "--window", type=int, default=ACTION_WINDOW, help="entries per window (the product's)"
    )
    parser.add_argument(
        "--depth", type=int, default=ACTION_DEPTH, help="windows in flight (the product's)"
    )
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    record_figures("requeue", await run(parse_args(argv)))


if __name__ == "__main__":
    asyncio.run(main())
