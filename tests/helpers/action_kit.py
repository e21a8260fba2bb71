"""Shared set-up for the action tests and the kill-test helper process: a dead-letter
topology on the real broker, parking, draining queues with every property intact."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import aio_pika
import aio_pika.abc
import orjson
from pamqp import commands as spec

from services.config import FieldPaths, Profile
from services.workbench import amqp_raw
from services.workbench.actions.ledger import ActionLedger, action_id_for
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.report import ActionReport
from services.workbench.actions.service import ActionService
from services.workbench.codec import MessageRecord, record_from_delivery
from services.workbench.model import EntryState
from services.workbench.parker import Parker
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.park_links import park_link

FIELDS = FieldPaths()
PAN = "4111111111111111"


def payment(n: int, **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "payment_id": f"pay_{n}",
            "merchant": "Acme Books",
            "amount": "42.50",
            "currency": "EUR",
            **extra,
        }
    )


ServiceFor = Callable[..., ActionService]
"""``service_for(dlq, **profile_overrides)`` (a fixture of the actions' tests): alice's
action service on one dead-letter queue."""


def make_profile(
    amqp_url: str,
    redis_url: str,
    prefix: str,
    dlqs: Sequence[str],
    **overrides: Any,
) -> Profile:
    return Profile(
        name="test",
        amqp_url=amqp_url,
        redis_url=redis_url,
        dead_letter_queues=tuple(dlqs),
        redis_prefix=prefix,
        **overrides,
    )


class Broker:
    """A test's queues and exchanges (deleted afterwards) and helpers around them."""

    def __init__(
        self, connection: aio_pika.abc.AbstractConnection, prefix: str, amqp_url: str
    ) -> None:
        self.connection = connection
        self.prefix = prefix
        self.amqp_url = amqp_url
        self.queues: list[str] = []
        self.exchanges: list[str] = []
        self.channel: aio_pika.abc.AbstractChannel | None = None

    async def open(self) -> None:
        self.channel = await self.connection.channel()

    def name(self, short: str) -> str:
        return self.prefix + short

    async def queue(self, short: str, **kwargs: Any) -> aio_pika.abc.AbstractQueue:
        assert self.channel is not None
        full = self.name(short)
        if full not in self.queues:
            self.queues.append(full)
        return await self.channel.declare_queue(full, **kwargs)

    async def exchange(
        self, short: str, kind: aio_pika.ExchangeType
    ) -> aio_pika.abc.AbstractExchange:
        assert self.channel is not None
        full = self.name(short)
        self.exchanges.append(full)
        return await self.channel.declare_exchange(full, kind)

    async def delete_queue(self, name: str) -> None:
        channel = await self.connection.channel()
        await channel.queue_delete(name)
        await channel.close()

    async def depth(self, queue: str) -> int:
        channel = await self.connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            return declared.declaration_result.message_count or 0
        finally:
            await channel.close()

    async def wait_depth(self, queue: str, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.depth(queue) < count:
            assert time.monotonic() < deadline, f"{queue} never reached {count} messages"
            await asyncio.sleep(0.02)

    async def drain(self, queue: str) -> list[MessageRecord]:
        """Every message in ``queue``, taken off it, with all properties and their raw
        bytes (aiormq level, :mod:`services.workbench.amqp_raw` installed)."""
        amqp_raw.install()
        channel = await self.connection.channel()
        amqp = await channel.get_underlay_channel()
        records: list[MessageRecord] = []
        try:
            while True:
                message = await amqp.basic_get(queue, no_ack=True)
                if isinstance(message.delivery, spec.Basic.GetEmpty):
                    return records
                records.append(record_from_delivery(message))
        finally:
            await channel.close()

    async def cleanup(self) -> None:
        channel = await self.connection.channel()
        for queue in self.queues:
            await channel.queue_delete(queue)
        for exchange in self.exchanges:
            await channel.exchange_delete(exchange)
        await channel.close()


class DeadLetterFlow:
    """``payments`` (topic) -> ``work`` (dead-letters into ``dlx`` -> ``dlq``), and
    ``other``, a second queue bound to ``payments`` that must never get a requeue."""

    def __init__(self, broker: Broker, reason: str) -> None:
        self.broker = broker
        self.reason = reason
        self.payments = broker.name("payments")
        self.work = broker.name("work")
        self.other = broker.name("other")
        self.dlx = broker.name("dlx")
        self.dlq = broker.name("dlq")

    def work_arguments(self, *, for_reason: bool) -> tuple[dict[str, Any], bool]:
        arguments: dict[str, Any] = {"x-dead-letter-exchange": self.dlx}
        durable = False
        if self.reason == "delivery_limit":
            arguments.update({"x-queue-type": "quorum", "x-delivery-limit": 1})
            durable = True
        elif for_reason and self.reason == "expired":
            arguments["x-message-ttl"] = 1
        elif for_reason and self.reason == "maxlen":
            arguments["x-max-length"] = 1
        return arguments, durable

    async def declare(self) -> None:
        broker = self.broker
        dlx = await broker.exchange("dlx", aio_pika.ExchangeType.FANOUT)
        dlq = await broker.queue("dlq")
        await dlq.bind(dlx)
        payments = await broker.exchange("payments", aio_pika.ExchangeType.TOPIC)
        arguments, durable = self.work_arguments(for_reason=True)
        work = await broker.queue("work", durable=durable, arguments=arguments)
        await work.bind(payments, "payment.#")
        other = await broker.queue("other")
        await other.bind(payments, "payment.#")

    async def redeclare_work_plain(self) -> None:
        """The origin queue again without the TTL / length limit that killed the message,
        so a requeued message stays there to be looked at."""
        if self.reason not in ("expired", "maxlen"):
            return
        broker = self.broker
        await broker.delete_queue(self.work)
        arguments, durable = self.work_arguments(for_reason=False)
        work = await broker.queue("work", durable=durable, arguments=arguments)
        assert broker.channel is not None
        payments = await broker.channel.get_exchange(self.payments)
        await work.bind(payments, "payment.#")

    async def kill(self, count: int) -> None:
        """Make RabbitMQ dead-letter ``count`` messages already published to ``payments``
        (for ``maxlen``, one more must have been published to push the last one out)."""
        broker = self.broker
        assert broker.channel is not None
        if self.reason == "rejected":
            work = await broker.channel.get_queue(self.work)
            for _ in range(count):
                message = await work.get(no_ack=False, timeout=5)
                await message.reject(requeue=False)
        elif self.reason == "delivery_limit":
            work = await broker.channel.get_queue(self.work)
            deadline = time.monotonic() + 30
            while await broker.depth(self.dlq) < count:
                assert time.monotonic() < deadline, "the quorum queue never dead-lettered"
                message = await work.get(no_ack=False, fail=False)
                if message is not None:
                    await message.nack(requeue=True)
                else:
                    await asyncio.sleep(0.02)
        await broker.wait_depth(self.dlq, count)


def publish_with_pika(
    amqp_url: str,
    exchange: str,
    routing_key: str,
    bodies: Sequence[bytes],
    headers: dict[str, Any] | None = None,
    **properties: Any,
) -> None:
    """Publish without a message id (aiormq would add one), confirmed."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish(
                exchange,
                routing_key,
                body,
                pika.BasicProperties(headers=headers, **properties),
            )
    finally:
        connection.close()


async def park_all(
    connection: aio_pika.abc.AbstractConnection, store: ParkingStore, dlq: str
) -> int:
    """Park every message of ``dlq`` once, on a link to the broker ``connection`` is on."""
    async with park_link(str(connection.url)) as link:
        stats = await Parker(store, dlq, FIELDS).run(link, once=True)
    return stats.parked


async def entry_ids(store: ParkingStore, dlq: str) -> list[str]:
    ids: list[str] = []
    async for batch in store.iter_summaries(dlq):
        ids.extend(s.entry_id for s in batch)
    return ids


async def requeue_entries(
    store: ParkingStore, amqp_url: str, redis_url: str, prefix: str, dlq: str, ids: list[str]
) -> ActionReport:
    """Requeue ``ids`` of ``dlq`` as operator ``alice``, through a publisher of its own."""
    config = make_profile(amqp_url, redis_url, prefix, [dlq])
    publisher = ActionPublisher(amqp_url)
    try:
        service = ActionService(store, publisher, config, "alice", "test-host")
        return await service.requeue(ActionTarget.for_entries(ids))
    finally:
        await publisher.close()


async def parked_payments(broker: Broker, store: ParkingStore, n: int) -> DeadLetterFlow:
    """``n`` payments ``pay_00000``... expired by RabbitMQ (queue TTL) into the DLQ and
    parked; the origin queue declared again without the TTL, empty."""
    flow = DeadLetterFlow(broker, "expired")
    await flow.declare()
    channel = await broker.connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(flow.payments)
    pending = []
    for i in range(n):
        body = orjson.dumps({"payment_id": f"pay_{i:05d}", "amount": "1.00", "currency": "EUR"})
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        pending.append(exchange.publish(message, "payment.failed"))
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await channel.close()
    await flow.kill(n)
    assert await park_all(broker.connection, store, flow.dlq) == n
    await flow.redeclare_work_plain()
    await broker.drain(flow.other)
    return flow


async def parked(broker: Broker, store: ParkingStore, n: int) -> tuple[DeadLetterFlow, list[str]]:
    """``n`` payments rejected into a dead-letter flow and parked; the flow and their
    entry ids, sorted."""
    flow = DeadLetterFlow(broker, "rejected")
    await flow.declare()
    channel = await broker.connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(flow.payments)
    for i in range(n):
        body = orjson.dumps({"payment_id": f"pay_{i}", "amount": 1})
        await exchange.publish(aio_pika.Message(body), "payment.failed")
    await channel.close()
    await flow.kill(n)
    assert await park_all(broker.connection, store, flow.dlq) == n
    await broker.drain(flow.other)
    return flow, sorted(await entry_ids(store, flow.dlq))


RUN_SIZE = 3
"""Entries each crashed run claimed."""


def dead_pid() -> int:
    """The pid of a process of this machine that has ended."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


async def crash_runs(ledger: ActionLedger, dlq: str, entry_ids: list[str]) -> list[str]:
    """Claim ``entry_ids`` by runs of :data:`RUN_SIZE` that then crashed: every other run
    keeps a lease naming a process that is gone, the rest lost theirs (a claim needs a
    lease, so they take one and drop it). Their run ids."""
    runs = []
    gone = dead_pid()
    for start in range(0, len(entry_ids), RUN_SIZE):
        run_id = f"crashed-{start}"
        runs.append(run_id)
        token = ledger.lease_token(run_id, {"operator": "night-shift", "pid": gone})
        await ledger.acquire(run_id, [dlq], token)
        claims = [(i, action_id_for(run_id, i)) for i in entry_ids[start : start + RUN_SIZE]]
        claimed = await ledger.claim_and_fetch(
            dlq, claims, "requeue", "night-shift", run_id=run_id, token=token
        )
        assert claimed is not None and all(result.ok for result, _ in claimed)
        if not (start // RUN_SIZE) % 2:
            await ledger.drop(run_id, [dlq], token)
    return runs


def payment_of(message: MessageRecord) -> str:
    """The payment id in a message's JSON body."""
    return str(orjson.loads(message.body)["payment_id"])


async def state_counts(store: ParkingStore, dlq: str) -> Counter[EntryState]:
    """How many entries of a DLQ are in each state."""
    counts: Counter[EntryState] = Counter()
    async for batch in store.iter_summaries(dlq):
        counts.update(s.state for s in batch)
    return counts
