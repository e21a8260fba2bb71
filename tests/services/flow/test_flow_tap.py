"""The tap against the real broker: exact counts, dead letters, its queue, missing exchanges."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import struct
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import aiormq.exceptions
import orjson
import pika
import pytest

from services.config import Profile, TapBinding
from services.flow.aggregator import FlowAggregator
from services.flow.decoder import EventDecoder
from services.flow.tap import FlowTap, tap_queue_arguments
from services.flow.tap_link import AmqpChannelError
from tests.helpers import wire_kit
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractConnection]:
    conn = await aio_pika.connect(amqp_url)
    yield conn
    await conn.close()


@pytest.fixture
async def cleanup(connection: aio_pika.abc.AbstractConnection) -> AsyncIterator[list[Any]]:
    """Names to delete afterwards: ("exchange", name) or ("queue", name)."""
    names: list[Any] = []
    yield names
    channel = await connection.channel()
    for kind, name in names:
        with contextlib.suppress(Exception):
            if channel.is_closed:
                channel = await connection.channel()
            if kind == "exchange":
                await channel.exchange_delete(name)
            else:
                await channel.queue_delete(name)
    await channel.close()


def profile(amqp_url: str, *bindings: TapBinding, **kw: Any) -> Profile:
    return Profile(
        name="test",
        amqp_url=amqp_url,
        redis_url="redis://127.0.0.1:6379/15",
        tap_exchanges=bindings,
        **kw,
    )


class RunningTap:
    def __init__(self, tap: FlowTap, task: asyncio.Task[None]) -> None:
        self.tap, self.task = tap, task

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


StartTap = Callable[..., Awaitable[RunningTap]]


@pytest.fixture
async def start_tap(connection: aio_pika.abc.AbstractConnection) -> AsyncIterator[StartTap]:
    running: list[RunningTap] = []

    async def start(prof: Profile, agg: FlowAggregator, **kw: Any) -> RunningTap:
        conn = kw.pop("conn", connection)
        tap = FlowTap(prof, agg, EventDecoder(prof.fields), **kw)
        task = asyncio.create_task(tap.run(conn))
        await asyncio.wait_for(tap.ready.wait(), 10)
        run = RunningTap(tap, task)
        running.append(run)
        return run

    yield start
    for run in running:
        await run.stop()


def publish_with_pika(url: str, exchange: str, events: list[tuple[str, bytes]]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for key, body in events:
            channel.basic_publish(
                exchange, key, body, pika.BasicProperties(timestamp=int(time.time()))
            )
    finally:
        conn.close()


async def test_counts_exactly_what_was_published(
    amqp_url: str, unique_prefix: str, connection, cleanup, start_tap: StartTap
) -> None:
    exchange_name = f"{unique_prefix}payments"
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True
    )
    cleanup.append(("exchange", exchange_name))
    agg = FlowAggregator()
    run = await start_tap(profile(amqp_url, TapBinding(exchange_name)), agg)

    expected: dict[str, int] = {}
    pika_events: list[tuple[str, bytes]] = []
    for i in range(3000):
        status = ("captured", "failed", "Refunded")[i % 3]
        body = orjson.dumps({"status": status, "created_at": time.time() * 1000, "i": i})
        pika_events.append((f"payment.{status.lower()}", body))
        expected[status.lower()] = expected.get(status.lower(), 0) + 1
    # Non-JSON bodies: the status comes from the routing key.
    for i in range(500):
        pika_events.append(("payment.settled", b"\xff\x00binary %d" % i))
    expected["settled"] = 500
    await asyncio.to_thread(publish_with_pika, amqp_url, exchange_name, pika_events)

    for i in range(2000):
        status = "authorized" if i % 4 else "failed"
        await exchange.publish(
            aio_pika.Message(orjson.dumps({"status": status}), timestamp=time.time()),
            routing_key="payment.any",
        )
        expected[status] = expected.get(status, 0) + 1
    total = sum(expected.values())

    await eventually(lambda: run.tap.consumed >= total)
    await asyncio.sleep(0.2)  # nothing more may arrive
    assert agg.totals_by_status() == expected
    frame = agg.frame(60)
    assert frame.status_counts.sum() == total
    for name, n in expected.items():
        assert frame.status_counts[frame.status_names.index(name)].sum() == n
    assert frame.dead_letters.sum() == 0
    assert frame.headline.tap_dropped == 0
    assert not run.tap.problems
    # Latency came from the body timestamps or the AMQP timestamp property.
    assert run.tap._ages
    await channel.close()


async def test_undecodable_headers_and_huge_bodies_are_counted_on_the_same_connection(
    amqp_url: str, unique_prefix: str, connection, cleanup, start_tap: StartTap
) -> None:
    """The tap reads the property bytes itself: a header key or message id that is not
    UTF-8, a timestamp past year 9999, a body of many frames are
    counted like any other message, and the connection stays up."""
    exchange_name = f"{unique_prefix}odd"
    channel = await connection.channel()
    await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    cleanup.append(("exchange", exchange_name))
    agg = FlowAggregator()
    run = await start_tap(profile(amqp_url, TapBinding(exchange_name)), agg)
    link = run.tap.link
    odd = wire_kit.properties(
        headers=wire_kit.table(
            wire_kit.entry(b"\xffkey", wire_kit.long_(b"S", b"\xfe")),
            wire_kit.entry(b"far", b"T" + struct.pack(">Q", 300_000_000_000)),
        ),
        message_id=wire_kit.short(b"\xff\xfe"),
        timestamp=struct.pack(">Q", 300_000_000_000),
    )
    huge = orjson.dumps({"status": "captured", "pad": "x" * (5 << 20)})
    messages = [(orjson.dumps({"status": "failed"}), odd), (b"\xff\x00binary", odd)]
    messages += [(huge, wire_kit.properties())] * 2
    messages += [(orjson.dumps({"status": "captured"}), wire_kit.properties())] * 100
    await asyncio.to_thread(wire_kit.publish_raw, amqp_url, exchange_name, "payment.x", messages)

    await eventually(lambda: run.tap.consumed >= len(messages))
    await asyncio.sleep(0.2)  # nothing more may arrive
    assert agg.totals_by_status() == {"failed": 1, "x": 1, "captured": 102}
    assert run.tap.link is link and not link.is_closed and not run.task.done()
    await channel.close()


async def test_dead_letters_are_counted_as_such(
    amqp_url: str, unique_prefix: str, connection, cleanup, start_tap: StartTap
) -> None:
    dlx_name = f"{unique_prefix}dlx"
    source_name = f"{unique_prefix}work"
    channel = await connection.channel()
    await channel.declare_exchange(dlx_name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    cleanup += [("exchange", dlx_name), ("queue", source_name)]
    source = await channel.declare_queue(
        source_name, arguments={"x-dead-letter-exchange": dlx_name}
    )
    agg = FlowAggregator()
    run = await start_tap(profile(amqp_url, TapBinding(dlx_name)), agg)

    for i in range(3):
        body = orjson.dumps({"status": "failed", "i": i})
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=source_name)
    for _ in range(3):
        message = await source.get(timeout=5)
        await message.reject(requeue=False)

    await eventually(lambda: run.tap.consumed >= 3)
    await asyncio.sleep(0.1)
    frame = agg.frame(60)
    assert frame.dead_letters.sum() == 3
    assert agg.totals_by_status() == {}
    await channel.close()


async def test_tap_queue_arguments_and_lifetime(
    amqp_url: str, unique_prefix: str, connection, cleanup, start_tap: StartTap
) -> None:
    exchange_name = f"{unique_prefix}ex"
    channel = await connection.channel()
    await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    cleanup.append(("exchange", exchange_name))
    prof = profile(amqp_url, TapBinding(exchange_name), tap_max_length=1234, tap_expires_s=7)
    assert tap_queue_arguments(prof) == {
        "x-max-length": 1234,
        "x-overflow": "drop-head",
        "x-expires": 7000,
    }
    tap_conn = await aio_pika.connect(amqp_url)
    run = await start_tap(prof, FlowAggregator(), conn=tap_conn)
    name = run.tap.queue_name
    assert name and name.startswith("payops.tap.")

    # The queue belongs to the tap's own connection (it is exclusive): look through it.
    link = run.tap.link
    assert link is not None
    own = await link.channel()
    # Same arguments and flags: accepted (the broker checks equivalence).
    await own.queue_declare(
        name, exclusive=True, auto_delete=True, arguments=dict(tap_queue_arguments(prof))
    )
    # A dead-letter exchange or other limits: refused as inequivalent,
    # which proves the queue has none of them.
    for arguments in (
        {**tap_queue_arguments(prof), "x-dead-letter-exchange": "dlx"},
        {**tap_queue_arguments(prof), "x-max-length": 1},
        {**tap_queue_arguments(prof), "x-overflow": "reject-publish"},
        {**tap_queue_arguments(prof), "x-dead-letter-routing-key": "k"},
        {"x-max-length": 1234, "x-overflow": "drop-head"},
    ):
        if own.is_closed:
            own = await link.channel()
        with pytest.raises(AmqpChannelError) as refused:
            await own.queue_declare(name, exclusive=True, auto_delete=True, arguments=arguments)
        assert refused.value.code == 406  # PRECONDITION_FAILED

    # Exclusive: another connection may not even look at it.
    other = await connection.channel()
    with pytest.raises(aiormq.exceptions.ChannelLockedResource):
        await other.declare_queue(name, passive=True)

    await run.stop()
    await tap_conn.close()
    probe = await connection.channel()
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await probe.declare_queue(name, passive=True)
    await channel.close()


async def test_missing_exchange_is_reported_and_others_still_count(
    amqp_url: str, unique_prefix: str, connection, cleanup, start_tap: StartTap
) -> None:
    good = f"{unique_prefix}good"
    channel = await connection.channel()
    exchange = await channel.declare_exchange(good, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    cleanup.append(("exchange", good))
    problems: list[str] = []
    agg = FlowAggregator()
    prof = profile(
        amqp_url,
        TapBinding(f"{unique_prefix}missing-1"),
        TapBinding(good, "payment.#"),
        TapBinding(f"{unique_prefix}missing-2"),
    )
    run = await start_tap(prof, agg, on_problem=problems.append)
    assert len(problems) == 2
    assert f"{unique_prefix}missing-1" in problems[0]
    assert "NOT_FOUND" in problems[0]
    assert run.tap.problems == problems

    for _ in range(10):
        await exchange.publish(aio_pika.Message(b"x"), routing_key="payment.captured")
    await exchange.publish(aio_pika.Message(b"x"), routing_key="refund.captured")  # not bound
    await eventually(lambda: run.tap.consumed >= 10)
    await asyncio.sleep(0.2)
    assert agg.totals_by_status() == {"captured": 10}
    # The poll loop still works on a reopened channel.
    await asyncio.sleep(1.3)
    assert not run.task.done()
    await channel.close()


# -- drop probes -------------------------------------------------------------------

# Publishes argv[3] events of about argv[5] bytes to exchange argv[2] at argv[4] per
# second, from a process of its own: a busy consumer in the test process holds the GIL.
PACED_PUBLISHER = """
import sys, time
import orjson, pika
url, exchange = sys.argv[1], sys.argv[2]
n, rate, pad = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
conn = pika.BlockingConnection(pika.URLParameters(url))
channel = conn.channel()
filler = "x" * pad
start = time.monotonic()
for i in range(n):
    event = {"status": "captured", "created_at": time.time() * 1000, "i": i, "pad": filler}
    body = orjson.dumps(event)
    channel.basic_publish(exchange, "payment.captured", body)
    if i % 50 == 0:
        ahead = i / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
conn.close()
"""


async def publish_paced(
    url: str, exchange: str, *, publishers: int, each: int, rate: float, pad: int
) -> None:
    """Publish ``publishers * each`` events from that many processes; wait for all."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", PACED_PUBLISHER, url, exchange, str(each), str(rate), str(pad)
        )
        for _ in range(publishers)
    ]
    try:
        codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 120)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert codes == [0] * publishers


async def settled(value: Callable[[], int], quiet_s: float, timeout: float = 60.0) -> int:
    """Wait until ``value()`` has not changed for ``quiet_s``; return it."""
    deadline = time.monotonic() + timeout
    last, since = value(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise AssertionError("value did not settle in time")
        await asyncio.sleep(0.1)
        if (current := value()) != last:
            last, since = current, time.monotonic()
    return last


def slow_consumer(agg: FlowAggregator, seconds_per_event: float) -> None:
    """Make counting each event take at least ``seconds_per_event`` (a busy wait)."""
    record = agg.record_event

    def slow(status: str, latency_ms: float | None, reason: str | None = None) -> None:
        until = time.perf_counter() + seconds_per_event
        while time.perf_counter() < until:
            pass
        record(status, latency_ms, reason)

    agg.record_event = slow  # type: ignore[method-assign]


async def test_drop_estimate_tracks_the_real_drops_of_an_overloaded_tap(
    amqp_url: str, unique_prefix: str, connection, cleanup, start_tap: StartTap
) -> None:
    exchange_name = f"{unique_prefix}payments"
    channel = await connection.channel()
    await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    cleanup.append(("exchange", exchange_name))
    agg = FlowAggregator()
    slow_consumer(agg, 400e-6)  # at most ~2,500 events/s
    prof = dataclasses.replace(profile(amqp_url, TapBinding(exchange_name)), tap_max_length=200)
    tap_conn = await aio_pika.connect(amqp_url)
    run: RunningTap | None = None
    try:
        run = await start_tap(prof, agg, conn=tap_conn, poll_interval_s=0.5)
        # 40,000 events at up to 6,000/s: far more than the tap queue and the
        # socket buffers between it and the console can hold.
        publishers, each = 2, 20_000
        await publish_paced(
            amqp_url, exchange_name, publishers=publishers, each=each, rate=3_000, pad=1_000
        )
        await settled(lambda: run.tap.consumed, quiet_s=2.0)
        estimate = await settled(lambda: agg.headline().tap_dropped, quiet_s=3.0)
        counted = sum(agg.totals_by_status().values())
        true_drops = publishers * each - counted
        print(f"\ntap dropped {true_drops}, estimated {estimate}")
        assert counted == run.tap.consumed  # probes are not events
        assert true_drops > 2_000, "the test did not overload the tap"
        assert 0.3 * true_drops <= estimate <= 3 * true_drops
        assert run.tap.probes_received > 0
        assert not run.tap.problems
    finally:
        if run is not None:
            await run.stop()
        await tap_conn.close()
    await channel.close()


async def test_no_overload_estimates_no_drops(
    amqp_url: str, unique_prefix: str, connection, cleanup, start_tap: StartTap
) -> None:
    exchange_name = f"{unique_prefix}payments"
    channel = await connection.channel()
    await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    cleanup.append(("exchange", exchange_name))
    agg = FlowAggregator()
    # The same small tap queue as above, but a console that keeps up (1,000 events/s).
    prof = dataclasses.replace(profile(amqp_url, TapBinding(exchange_name)), tap_max_length=200)
    run = await start_tap(prof, agg, poll_interval_s=0.5)
    await publish_paced(amqp_url, exchange_name, publishers=2, each=2_000, rate=500, pad=100)
    await eventually(lambda: run.tap.consumed >= 4_000)
    received = run.tap.probes_received
    await eventually(lambda: run.tap.probes_received >= received + 25)  # half a second more
    await asyncio.sleep(1.1)  # two more polls
    assert agg.totals_by_status() == {"captured": 4_000}
    assert run.tap.consumed == 4_000
    assert run.tap._probes.missing_total == 0
    assert agg.headline().tap_dropped == 0
    assert agg.frame(60).dead_letters.sum() == 0
    await channel.close()


def live_probe_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "payops-probes" and not t.done()]


async def test_probes_stop_with_the_tap_and_never_outlive_its_connection(
    amqp_url: str, unique_prefix: str, connection, cleanup
) -> None:
    exchange_name = f"{unique_prefix}ex"
    channel = await connection.channel()
    await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    cleanup.append(("exchange", exchange_name))
    prof = profile(amqp_url, TapBinding(exchange_name))
    tap_conn = await aio_pika.connect(amqp_url)
    try:
        tap = FlowTap(prof, FlowAggregator(), EventDecoder(prof.fields), poll_interval_s=0.2)
        task = asyncio.create_task(tap.run(tap_conn))
        await asyncio.wait_for(tap.ready.wait(), 10)
        await eventually(lambda: tap.probes_received >= 5)
        assert len(live_probe_tasks()) == 1
        assert tap.consumed == 0  # probes are not deliveries of the flow
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not live_probe_tasks()
        sent = tap.probes_sent
        await asyncio.sleep(0.3)
        assert tap.probes_sent == sent
        # Only the connection's own channels are left: the tap closed all of its.
        assert not [c for c in tap_conn.transport.connection.channels.values() if not c.is_closed]

        # Tapping again on the same connection, which then fails: the tap ends, and so
        # do its probes.
        task = asyncio.create_task(tap.run(tap_conn))
        await asyncio.wait_for(tap.ready.wait(), 10)
        await eventually(lambda: tap.probes_received >= sent + 5)
        assert len(live_probe_tasks()) == 1
        await tap_conn.close()
        done, _ = await asyncio.wait([task], timeout=10)
        assert done
        assert isinstance(task.exception(), Exception)  # the connection is gone
        assert not live_probe_tasks()
    finally:
        await tap_conn.close()
    await channel.close()


async def rabbitmqctl(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"rabbitmqctl {args[0]} timed out") from None
    if proc.returncode:
        raise RuntimeError(err.decode(errors="replace"))


@pytest.fixture
async def no_default_exchange_url(amqp_url: str) -> AsyncIterator[str]:
    """A broker user who may do everything but publish to the default exchange."""
    host = amqp_url.rsplit("@", 1)[-1]
    if shutil.which("rabbitmqctl") is None or not host.startswith(("127.0.0.1", "localhost")):
        pytest.skip("needs rabbitmqctl of the local broker to add a restricted user")
    user = f"payops-test-{uuid.uuid4().hex[:10]}"
    try:
        await rabbitmqctl("add_user", user, "secret")
    except RuntimeError as exc:
        pytest.skip(f"rabbitmqctl cannot add a user here: {exc}")
    try:
        await rabbitmqctl("set_permissions", "-p", "/", user, ".*", r"^(?!amq\.default$).*", ".*")
        yield f"amqp://{user}:secret@{host}"
    finally:
        await rabbitmqctl("delete_user", user)


async def test_refused_probes_are_reported_once_and_the_tap_carries_on(
    no_default_exchange_url: str, unique_prefix: str, cleanup
) -> None:
    url = no_default_exchange_url
    exchange_name = f"{unique_prefix}payments"
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC)
        cleanup.append(("exchange", exchange_name))
        problems: list[str] = []
        agg = FlowAggregator()
        prof = profile(url, TapBinding(exchange_name))
        tap = FlowTap(prof, agg, EventDecoder(prof.fields), problems.append, poll_interval_s=0.2)
        for _ in range(2):  # a second run (after a reconnect) does not report it again
            task = asyncio.create_task(tap.run(conn))
            await asyncio.wait_for(tap.ready.wait(), 10)
            await eventually(lambda: tap._probes_refused)
            for _ in range(10):
                await exchange.publish(aio_pika.Message(b"x"), routing_key="payment.captured")
            await asyncio.sleep(0.5)
            assert not task.done()
            assert not live_probe_tasks()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert agg.totals_by_status() == {"captured": 20}
        assert tap.probes_received == 0
        assert len(problems) == 1
        assert "ACCESS_REFUSED" in problems[0]
        assert "drop probes" in problems[0]
        await channel.close()
    finally:
        await conn.close()
