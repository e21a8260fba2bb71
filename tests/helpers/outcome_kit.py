"""Shared kit of the outcome, gate and job tests: a live flow recording a test's events
exchange, and reading entries' outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import orjson

from services.config import Profile
from services.flow.process import FlowProcess
from services.flow.protocol import ChildConfig
from services.flow.recorder import RecorderState
from services.workbench.codec import MessageRecord
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, DeadLetterFlow, park_all, publish_with_pika
from tests.helpers.waiting import eventually


@contextlib.asynccontextmanager
async def recording_flow(profile: Profile) -> AsyncIterator[FlowProcess]:
    """The live flow of ``profile`` (its tap on the profile's exchanges), once its
    recorder holds the history lease and writes."""
    states: list[RecorderState] = []
    process = FlowProcess(
        ChildConfig(profile, capacity_s=60), lambda _: None, on_recorder=states.append
    )
    process.start()
    try:
        await eventually(
            lambda: process.tap.ready.is_set() and bool(states) and states[-1].role == "writer",
            20,
            "the recorder writing",
        )
        yield process
    finally:
        await process.stop()


def publish_status(amqp_url: str, exchange: str, payment_id: str, status: str) -> None:
    """A status event of one payment, as the demo's workers publish it, with plain pika."""
    body = orjson.dumps(
        {"payment_id": payment_id, "status": status, "event_at": int(time.time() * 1000)}
    )
    publish_with_pika(amqp_url, exchange, f"payment.{status}", [body])


def payment_of(record: MessageRecord) -> str:
    return str(orjson.loads(record.body)["payment_id"])


async def outcomes_of(store: ParkingStore, dlq: str, ids: list[str]) -> dict[str, str | None]:
    """Each entry's outcome value (None: it has none)."""
    found: dict[str, str | None] = {}
    for entry_id in ids:
        entry = await store.get(dlq, entry_id)
        assert entry is not None
        found[entry_id] = entry.outcome.outcome.value if entry.outcome else None
    return found


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll an async ``check`` until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def parked_with_payments(
    broker: Broker, store: ParkingStore, payment_ids: list[str]
) -> DeadLetterFlow:
    """One message per item of ``payment_ids`` (a payment may come twice) expired by
    RabbitMQ into the DLQ and parked, oldest first; the origin queue made plain, empty."""
    flow = DeadLetterFlow(broker, "expired")
    await flow.declare()
    channel = await broker.connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(flow.payments)
    for payment_id in payment_ids:
        body = orjson.dumps({"payment_id": payment_id, "amount": "1.00", "currency": "EUR"})
        await exchange.publish(aio_pika.Message(body), "payment.failed")
    await channel.close()
    await flow.kill(len(payment_ids))
    assert await park_all(broker.connection, store, flow.dlq) == len(payment_ids)
    await flow.redeclare_work_plain()
    await broker.drain(flow.other)
    return flow
