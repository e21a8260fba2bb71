"""The parker against the real RabbitMQ and Redis: every dead-letter reason, bad inputs,
redeliveries, ``kill -9`` mid-way, Redis failures."""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aio_pika
import aio_pika.abc
import orjson
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.config import FieldPaths
from services.workbench.actions.pika_link import AmqpUnavailable, ChannelClosed
from services.workbench.codec import record_from_delivery
from services.workbench.model import EntryState, ParkedEntry
from services.workbench.parker import Parker, ParkerStats, ParkingFailed
from services.workbench.store import ParkingStore
from tests.helpers.park_links import park_link
from tests.helpers.paths import REPO_ROOT
from tests.helpers.raw_str import RawStr

FIELDS = FieldPaths()


class Broker:
    """Names of this test's queues and exchanges, and a channel; deletes them afterwards."""

    def __init__(
        self, connection: aio_pika.abc.AbstractRobustConnection, prefix: str, amqp_url: str
    ) -> None:
        self.connection = connection
        self.amqp_url = amqp_url
        self.prefix = prefix
        self.queues: list[str] = []
        self.exchanges: list[str] = []
        self.channel: aio_pika.abc.AbstractChannel | None = None

    async def open(self) -> aio_pika.abc.AbstractChannel:
        self.channel = await self.connection.channel()
        return self.channel

    async def queue(self, name: str, **kwargs: Any) -> aio_pika.abc.AbstractQueue:
        assert self.channel is not None
        full = self.prefix + name
        self.queues.append(full)
        return await self.channel.declare_queue(full, **kwargs)

    async def exchange(self, name: str, kind: str) -> aio_pika.abc.AbstractExchange:
        assert self.channel is not None
        full = self.prefix + name
        self.exchanges.append(full)
        return await self.channel.declare_exchange(full, kind)

    async def depth(self, queue: str) -> int:
        channel = await self.connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            return declared.declaration_result.message_count or 0
        finally:
            await channel.close()

    async def wait_depth(self, queue: str, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.depth(queue) < count:
            assert time.monotonic() < deadline, f"{queue} never reached {count} messages"
            await asyncio.sleep(0.02)

    async def publish(
        self, queue: str, body: bytes, confirm: bool = True, **properties: Any
    ) -> None:
        channel = await self.connection.channel(publisher_confirms=confirm)
        try:
            await channel.default_exchange.publish(aio_pika.Message(body, **properties), queue)
        finally:
            await channel.close()

    async def cleanup(self) -> None:
        channel = await self.connection.channel()
        for queue in self.queues:
            await channel.queue_delete(queue)
        for exchange in self.exchanges:
            await channel.exchange_delete(exchange)
        await channel.close()


@pytest.fixture
async def broker(amqp_url: str, unique_prefix: str) -> AsyncIterator[Broker]:
    connection = await aio_pika.connect_robust(amqp_url)
    state = Broker(connection, unique_prefix, amqp_url)
    await state.open()
    yield state
    await state.cleanup()
    await connection.close()


async def park_once(
    broker: Broker, store: ParkingStore, dlq: str, **kwargs: Any
) -> tuple[ParkerStats, list[ParkedEntry]]:
    async with park_link(broker.amqp_url) as link:
        stats = await Parker(store, dlq, FIELDS, **kwargs).run(link, once=True)
    entries: list[ParkedEntry] = []
    async for batch in store.iter_summaries(dlq):
        for summary in batch:
            entry = await store.get(dlq, summary.entry_id)
            assert entry is not None
            entries.append(entry)
    return stats, entries


def payment(n: int) -> bytes:
    return orjson.dumps(
        {"payment_id": f"pay_{n}", "merchant": "Acme Books", "amount": "42.50", "currency": "EUR"}
    )


# ------------------------------------------------------------------- every dead-letter reason


@pytest.mark.parametrize("reason", ["rejected", "expired", "maxlen", "delivery_limit"])
async def test_dead_letters_of_every_reason_are_parked(
    broker: Broker, store: ParkingStore, reason: str
) -> None:
    assert broker.channel is not None
    dlx = await broker.exchange("dlx", aio_pika.ExchangeType.FANOUT)
    dlq = await broker.queue("dlq")
    await dlq.bind(dlx)
    payments = await broker.exchange("payments", aio_pika.ExchangeType.TOPIC)

    arguments: dict[str, Any] = {"x-dead-letter-exchange": dlx.name}
    durable = False
    if reason == "expired":
        arguments["x-message-ttl"] = 1
    elif reason == "maxlen":
        arguments["x-max-length"] = 1
    elif reason == "delivery_limit":
        arguments.update({"x-queue-type": "quorum", "x-delivery-limit": 1})
        durable = True
    work = await broker.queue("work", durable=durable, arguments=arguments)
    await work.bind(payments, "payment.#")

    confirm = await broker.connection.channel(publisher_confirms=True)
    target = await confirm.get_exchange(payments.name)
    await target.publish(
        aio_pika.Message(payment(1), message_id="m-1", content_type="application/json"),
        "payment.failed",
    )
    if reason == "maxlen":  # pushes the first one out of the head of the queue
        await target.publish(aio_pika.Message(payment(2)), "payment.failed")
    await confirm.close()

    if reason == "rejected":
        message = await work.get(no_ack=False, timeout=5)
        await message.reject(requeue=False)
    elif reason == "delivery_limit":
        deadline = time.monotonic() + 15
        while await broker.depth(dlq.name) < 1:
            assert time.monotonic() < deadline
            message = await work.get(no_ack=False, fail=False)
            if message is not None:
                await message.nack(requeue=True)
            else:
                await asyncio.sleep(0.02)
    await broker.wait_depth(dlq.name, 1)

    stats, entries = await park_once(broker, store, dlq.name)

    assert stats.parked == 1 and stats.acked == 1 and stats.already_parked == 0
    assert await broker.depth(dlq.name) == 0
    (entry,) = entries
    assert entry.record.body == payment(1)
    assert entry.record.properties["message_id"] == "m-1"
    assert entry.record.exchange == dlx.name
    death = entry.deaths[0]
    assert (death.reason, death.queue, death.exchange) == (reason, work.name, payments.name)
    assert death.routing_keys == ("payment.failed",)
    assert death.count >= 1 and isinstance(death.time, datetime.datetime)
    assert entry.record.headers["x-first-death-reason"] == reason
    assert entry.record.headers["x-first-death-queue"] == work.name
    summary = entry.summary
    assert summary.reason == reason and summary.origin_queue == work.name
    assert summary.routing_key == "payment.failed"
    assert (summary.payment_id, summary.merchant, summary.amount, summary.currency) == (
        "pay_1",
        "Acme Books",
        "42.50",
        "EUR",
    )
    assert summary.amount_value == 42.5 and summary.attempts >= 1
    assert summary.state is EntryState.PARKED and summary.body_kind == "json"
    assert abs(summary.dead_lettered_at_ms - time.time() * 1000) < 120_000


# --------------------------------------------------------------------------- bad inputs

BIG = os.urandom(8 * 1024 * 1024)

BAD_INPUTS: dict[str, tuple[bytes, dict[str, Any]]] = {
    "text": (b"plain text, not JSON {", {"content_type": "text/plain"}),
    "invalid_utf8": (b"\xff\xfe\xfd\x00\xc3\x28", {}),
    "empty": (b"", {}),
    "big": (BIG, {"content_type": "application/octet-stream"}),
    "no_message_id": (b'{"payment_id": "pay_x", "amount": 7}', {}),
    "odd_headers": (
        b"{}",
        {
            "headers": {
                "x-death": "garbage",
                "invalid_utf8": RawStr(b"\xc3\x28"),
                "decimal": Decimal("1.25"),
                "bytearray": bytearray(b"\x00\xff"),
                "int64": 2**63 - 1,
                "none": None,
                "nested": [[{"a": [None, {"b": bytearray(b"x")}]}], []],
                "ts": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
                "payops-attempt": 2,
            }
        },
    ),
    "bogus_x_death": (
        b"[1, 2",
        {"headers": {"x-death": [1, "two", {"count": "many", "queue": 5, "time": "noon"}]}},
    ),
}


def publish_with_pika(amqp_url: str, queue: str, body: bytes, headers: dict[str, Any]) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, body, pika.BasicProperties(headers=headers))
    finally:
        connection.close()


async def test_bad_inputs_are_parked_and_retrievable_byte_exact(
    broker: Broker, store: ParkingStore
) -> None:
    dlq = await broker.queue("dlq")
    for case, (body, given) in BAD_INPUTS.items():
        properties = dict(given)
        headers = dict(properties.pop("headers", {}))
        headers["case"] = case
        if case == "no_message_id":  # aiormq gives every message it publishes an id
            await asyncio.to_thread(publish_with_pika, broker.amqp_url, dlq.name, body, headers)
        else:
            await broker.publish(dlq.name, body, headers=headers, **properties)
    await broker.wait_depth(dlq.name, len(BAD_INPUTS))

    stats, entries = await park_once(broker, store, dlq.name)

    assert stats.parked == len(BAD_INPUTS) and stats.acked == len(BAD_INPUTS)
    assert await broker.depth(dlq.name) == 0
    by_case = {entry.record.headers["case"]: entry for entry in entries}
    assert set(by_case) == set(BAD_INPUTS)
    for case, (body, _) in BAD_INPUTS.items():
        assert by_case[case].record.body == body, case
        assert by_case[case].summary.size == len(body)
    kinds = {case: entry.summary.body_kind for case, entry in by_case.items()}
    assert kinds == {
        "text": "text",
        "invalid_utf8": "binary",
        "empty": "empty",
        "big": "binary",
        "no_message_id": "json",
        "odd_headers": "json",
        "bogus_x_death": "text",
    }
    assert by_case["no_message_id"].summary.message_id is None
    assert by_case["no_message_id"].summary.payment_id == "pay_x"
    assert by_case["no_message_id"].summary.amount == "7"
    odd = by_case["odd_headers"]
    headers = odd.record.headers
    assert headers["invalid_utf8"] == b"\xc3\x28" and type(headers["invalid_utf8"]) is bytes
    assert headers["decimal"] == Decimal("1.25")
    assert type(headers["bytearray"]) is bytearray and headers["int64"] == 2**63 - 1
    assert headers["nested"] == [[{"a": [None, {"b": bytearray(b"x")}]}], []]
    assert odd.deaths == () and odd.summary.attempts == 2 and odd.summary.reason == ""
    bogus = by_case["bogus_x_death"]
    assert len(bogus.deaths) == 1 and bogus.deaths[0].count == 0


# --------------------------------------------------------------------------- redeliveries


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
async def test_a_redelivery_after_a_crash_is_not_parked_twice(
    broker: Broker, store: ParkingStore, queue_type: str
) -> None:
    arguments = {"x-queue-type": queue_type}
    dlq = await broker.queue("dlq", durable=True, arguments=arguments)
    await broker.publish(dlq.name, payment(1), headers={"x-death": [{"queue": "q", "count": 1}]})
    await broker.wait_depth(dlq.name, 1)

    # A parker that wrote the message to Redis and died before acking it:
    crashed = await broker.connection.channel()
    amqp = await crashed.get_underlay_channel()
    delivered = await amqp.basic_get(dlq.name, no_ack=False)
    assert delivered.redelivered is False
    first = await store.park(dlq.name, record_from_delivery(delivered), FIELDS, redelivered=False)
    await crashed.close()  # never acked: the broker redelivers it
    await broker.wait_depth(dlq.name, 1)

    stats, entries = await park_once(broker, store, dlq.name)

    assert (stats.received, stats.parked, stats.already_parked) == (1, 0, 1)
    assert [e.entry_id for e in entries] == [first.entry_id]
    assert await broker.depth(dlq.name) == 0


async def test_two_identical_fresh_messages_are_two_entries(
    broker: Broker, store: ParkingStore
) -> None:
    dlq = await broker.queue("dlq")
    for _ in range(2):
        await broker.publish(dlq.name, payment(1), message_id="same", headers={"k": "v"})
    await broker.wait_depth(dlq.name, 2)
    stats, entries = await park_once(broker, store, dlq.name)
    assert stats.parked == 2 and len(entries) == 2
    assert entries[0].fingerprint == entries[1].fingerprint
    assert entries[0].record == entries[1].record


async def take_and_drop(broker: Broker, store: ParkingStore, dlq: str, n: int, park: int) -> None:
    """A parker that took ``n`` deliveries, parked the first ``park`` and died unacked."""
    crashed = await broker.connection.channel()
    amqp = await crashed.get_underlay_channel()
    delivered = [await amqp.basic_get(dlq, no_ack=False) for _ in range(n)]
    records = [record_from_delivery(d) for d in delivered[:park]]
    for record in records:
        await store.park(dlq, record, FIELDS, redelivered=False)
    await crashed.close()  # never acked: the broker redelivers them
    await broker.wait_depth(dlq, n)


async def test_a_redelivered_twin_of_a_parked_message_is_a_new_entry(
    broker: Broker, store: ParkingStore
) -> None:
    dlq = await broker.queue("dlq")
    headers = {"x-death": [{"queue": "q", "count": 1}]}
    await broker.publish(dlq.name, payment(1), message_id="same", headers=headers)
    stats, _ = await park_once(broker, store, dlq.name)
    assert stats.parked == 1 and await store.pending_marks(dlq.name) == 0

    # Its twin reaches a parker that dies before parking it: it comes back redelivered.
    await broker.publish(dlq.name, payment(1), message_id="same", headers=headers)
    await broker.wait_depth(dlq.name, 1)
    await take_and_drop(broker, store, dlq.name, 1, park=0)

    stats, entries = await park_once(broker, store, dlq.name)
    assert (stats.received, stats.parked, stats.already_parked) == (1, 1, 0)
    assert len(entries) == 2 and entries[0].fingerprint == entries[1].fingerprint
    assert await store.pending_marks(dlq.name) == 0


@pytest.mark.parametrize("parked_before_crash", [0, 1, 2])
async def test_twins_redelivered_after_a_crash_are_two_entries(
    broker: Broker, store: ParkingStore, parked_before_crash: int
) -> None:
    dlq = await broker.queue("dlq")
    for _ in range(2):
        await broker.publish(dlq.name, payment(7), message_id="same", headers={"k": "v"})
    await broker.wait_depth(dlq.name, 2)
    await take_and_drop(broker, store, dlq.name, 2, park=parked_before_crash)
    assert await store.pending_marks(dlq.name) == parked_before_crash

    stats, entries = await park_once(broker, store, dlq.name)
    assert stats.already_parked == parked_before_crash
    assert stats.parked == 2 - parked_before_crash
    assert len(entries) == 2
    assert await store.pending_marks(dlq.name) == 0
    assert await broker.depth(dlq.name) == 0


async def publish_many(broker: Broker, queue: str, n: int) -> None:
    channel = await broker.connection.channel(publisher_confirms=True)
    try:
        for start in range(0, n, 1000):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(payment(i), message_id=f"m-{i}"), queue
                    )
                    for i in range(start, min(start + 1000, n))
                )
            )
    finally:
        await channel.close()


async def assert_one_entry_per_message(
    broker: Broker, store: ParkingStore, dlq: str, n: int
) -> None:
    payment_ids: list[str | None] = []
    async for batch in store.iter_summaries(dlq):
        payment_ids.extend(s.payment_id for s in batch)
    assert len(payment_ids) == n, f"{len(payment_ids)} entries for {n} messages"
    assert sorted(payment_ids, key=str) == sorted((f"pay_{i}" for i in range(n)), key=str)
    assert await broker.depth(dlq) == 0


async def start_parker_process(
    amqp_url: str, redis_url: str, store: ParkingStore, dlq: str, *extra: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.helpers.parker_proc",
        amqp_url,
        redis_url,
        store.prefix,
        dlq,
        *extra,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_parker_killed_mid_way_loses_and_duplicates_nothing(
    broker: Broker, store: ParkingStore, amqp_url: str, redis_url: str
) -> None:
    n = 5000
    dlq = await broker.queue("dlq")
    await publish_many(broker, dlq.name, n)
    await broker.wait_depth(dlq.name, n)

    process = await start_parker_process(
        amqp_url, redis_url, store, dlq.name, "--batch", "100", "--pause-s", "0.02"
    )
    deadline = time.monotonic() + 30
    while await store.count(dlq.name) < 1000:
        assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the parker process parked nothing"
        await asyncio.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # kill -9
    await process.wait()
    parked_at_kill = await store.count(dlq.name)
    assert 1000 <= parked_at_kill < n, "killed too late to prove anything"

    restart = await start_parker_process(amqp_url, redis_url, store, dlq.name, "--once")
    out, err = await asyncio.wait_for(restart.communicate(), 60)
    assert restart.returncode == 0, err.decode()
    done = out.decode().splitlines()[-1].split()
    assert done[0] == "DONE" and int(done[1]) == n - parked_at_kill

    await assert_one_entry_per_message(broker, store, dlq.name, n)


async def test_a_parker_killed_between_park_and_ack_duplicates_nothing(
    broker: Broker, store: ParkingStore, amqp_url: str, redis_url: str
) -> None:
    n = 5000
    dlq = await broker.queue("dlq")
    await publish_many(broker, dlq.name, n)
    await broker.wait_depth(dlq.name, n)

    process = await start_parker_process(
        amqp_url, redis_url, store, dlq.name, "--batch", "100", "--crash-after-park", "3"
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == -signal.SIGKILL
    # Batches are cut by size or by a short wait, so read what was acked from its reports.
    acked = int(out.decode().split()[-1]) if out.strip() else 0
    parked = await store.count(dlq.name)
    in_doubt = parked - acked
    assert 0 < in_doubt <= 100  # the third batch is in Redis, never acked
    await broker.wait_depth(dlq.name, n - acked)

    async with park_link(broker.amqp_url) as link:
        stats = await Parker(store, dlq.name, FIELDS).run(link, once=True)
    assert stats.received == n - acked
    assert stats.already_parked == in_doubt and stats.parked == n - parked
    await assert_one_entry_per_message(broker, store, dlq.name, n)
    assert await store.pending_marks(dlq.name) == 0


# ------------------------------------------------------------------- Redis failures and stop


async def test_redis_down_nothing_is_acked_nor_nacked_and_the_run_gives_up_when_told(
    broker: Broker,
) -> None:
    dlq = await broker.queue("dlq", durable=True, arguments={"x-queue-type": "quorum"})
    for i in range(20):
        await broker.publish(dlq.name, payment(i))
    await broker.wait_depth(dlq.name, 20)

    dead = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    reports: list[ParkerStats] = []
    parker = Parker(
        ParkingStore(dead, "p"),
        dlq.name,
        FIELDS,
        on_progress=reports.append,
        give_up_after_s=1.0,
        redis_backoff=(0.1,),
    )
    try:
        async with park_link(broker.amqp_url) as link:
            with pytest.raises(ParkingFailed) as failure:
                await parker.run(link, once=True)
            assert link.is_open  # handed back by closing the channel, never by basic.nack
    finally:
        await dead.aclose()
    stats = failure.value.stats
    assert stats.acked == 0 and stats.errors >= 3
    assert "Redis did not accept" in (stats.last_error or "")
    held = [r.problem or "" for r in reports if r.problem]
    assert any("holding 20 dead letters: Redis unavailable since" in text for text in held)
    await broker.wait_depth(dlq.name, 20)
    counts = await delivery_counts(broker, dlq.name, 20)
    # Held without a single hand-back, then returned once by the channel closing (RabbitMQ
    # 3.x counts that return, 4.x does not): one delivery at most, whatever the outage's length.
    assert set(counts) <= {0, 1}


async def delivery_counts(broker: Broker, queue: str, n: int) -> list[int]:
    """The x-delivery-count each of the ``n`` messages carries (0 when absent), requeued."""
    channel = await broker.connection.channel()
    amqp = await channel.get_underlay_channel()
    counts = []
    for _ in range(n):
        got = await amqp.basic_get(queue, no_ack=False)
        headers = got.header.properties.headers or {}
        counts.append(int(headers.get("x-delivery-count", 0)))  # type: ignore[call-overload]
    await channel.close()
    return counts


async def test_request_stop_parks_what_was_delivered_and_returns(
    broker: Broker, store: ParkingStore
) -> None:
    dlq = await broker.queue("dlq")
    await publish_many(broker, dlq.name, 300)
    await broker.wait_depth(dlq.name, 300)
    parker = Parker(store, dlq.name, FIELDS, batch_size=50)
    async with park_link(broker.amqp_url) as link:
        task = asyncio.create_task(parker.run(link))
        while parker.stats.acked < 100:
            await asyncio.sleep(0.005)
        parker.request_stop()
        stats = await asyncio.wait_for(task, 10)
    assert stats.parked == stats.acked == stats.received
    assert await store.count(dlq.name) == stats.parked
    assert await broker.depth(dlq.name) == 300 - stats.parked


async def test_a_connection_closed_under_the_parker_ends_the_run(
    broker: Broker, store: ParkingStore
) -> None:
    dlq = await broker.queue("dlq")
    parker = Parker(store, dlq.name, FIELDS)
    async with park_link(broker.amqp_url) as link:
        task = asyncio.create_task(parker.run(link))
        await asyncio.sleep(0.2)
        await link.close()
        with pytest.raises(AmqpUnavailable):
            await asyncio.wait_for(task, 5)
    assert not parker.stats.running


async def test_a_missing_queue_is_an_error(broker: Broker, store: ParkingStore) -> None:
    async with park_link(broker.amqp_url) as link:
        with pytest.raises(ChannelClosed) as closed:
            await Parker(store, broker.prefix + "nope", FIELDS).run(link, once=True)
        assert closed.value.code == 404


async def test_the_collector_is_relaxed_while_a_backlog_is_parked_and_restored_when_idle(
    broker: Broker, store: ParkingStore
) -> None:
    import gc

    from services.collector import BULK_GC_THRESHOLD

    dlq = await broker.queue("dlq")
    await publish_many(broker, dlq.name, 600)
    await broker.wait_depth(dlq.name, 600)
    before = gc.get_threshold()
    seen: set[int] = set()
    parker = Parker(store, dlq.name, FIELDS, batch_size=50)
    async with park_link(broker.amqp_url) as link:
        task = asyncio.create_task(parker.run(link))
        while parker.stats.acked < 600:
            seen.add(gc.get_threshold()[0])
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.2)  # the backlog parked: the parker idles
        idle = gc.get_threshold()
        parker.request_stop()
        await asyncio.wait_for(task, 10)
    assert max(BULK_GC_THRESHOLD, before[0]) in seen
    assert idle == before and gc.get_threshold() == before
