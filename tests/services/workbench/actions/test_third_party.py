"""Interoperability with real third-party consumers: a Celery worker (kombu / py-amqp) and
a Dramatiq worker (pika) fail a task, RabbitMQ dead-letters it, the parker parks it, a
requeue sends it back and the worker runs it once; the requeued content header is the one
the client published, byte for byte (the broker's ``x-`` and our ``payops-`` headers
aside)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aio_pika
import pytest
from pamqp import commands as spec

from services.workbench import amqp_raw
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, entry_ids, park_all, requeue_entries
from tests.helpers.wire_kit import comparable

celery = pytest.importorskip("celery")
kombu = pytest.importorskip("kombu")
from celery.contrib.testing.worker import start_worker  # noqa: E402
from celery.exceptions import Reject  # noqa: E402

pytestmark = pytest.mark.integration


def make_app(amqp_url: str, work: str, dlx: str) -> tuple[Any, list[int], threading.Event]:
    app = celery.Celery("payops_interop", broker=amqp_url, backend=None)
    exchange = kombu.Exchange(work, type="direct")
    app.conf.update(
        task_queues=[
            kombu.Queue(
                work,
                exchange,
                routing_key=work,
                queue_arguments={"x-dead-letter-exchange": dlx},
                durable=False,
                auto_delete=False,
            )
        ],
        task_default_queue=work,
        task_default_exchange=work,
        task_default_routing_key=work,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
    )
    runs: list[int] = []
    gateway_up = threading.Event()

    @app.task(name="payops.charge", acks_late=True)
    def charge(n: int) -> None:
        if not gateway_up.is_set():
            raise Reject("gateway down", requeue=False)
        runs.append(n)

    return app, runs, gateway_up


@contextmanager
def worker(app: Any) -> Iterator[None]:
    """A Celery worker in this process (the logging it sets up is put back after the test
    by ``tests/conftest.py``)."""
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_celery_task_dead_lettered_then_requeued_runs_once_unchanged(
    broker: Broker, store: ParkingStore, amqp_url: str, redis_url: str, prefix: str
) -> None:
    amqp_raw.install()
    work, dlx, dlq = broker.name("work"), broker.name("dlx"), broker.name("dlq")
    broker.queues.append(work)
    broker.exchanges.append(work)
    dlx_exchange = await broker.exchange("dlx", aio_pika.ExchangeType.FANOUT)
    await (await broker.queue("dlq")).bind(dlx_exchange)
    app, runs, gateway_up = make_app(amqp_url, work, dlx)
    with app.connection_for_write() as connection:  # declares the work queue as Celery does
        app.amqp.queues[work].bind(connection.default_channel).declare()
    app.send_task("payops.charge", args=[7])
    published = await _peek(broker, work)  # what Celery sent, as it came

    with worker(app):  # the worker rejects it: RabbitMQ dead-letters it
        await wait_for(lambda: _depth_is(broker, dlq, 1))
    assert await park_all(broker.connection, store, dlq) == 1
    assert b"payops.charge" in published

    ids = await entry_ids(store, dlq)
    report = await requeue_entries(store, amqp_url, redis_url, prefix, dlq, ids)
    assert report.succeeded == 1, report.outcomes

    requeued = await _peek(broker, work)
    assert comparable(requeued) == comparable(published)
    gateway_up.set()
    with worker(app):
        await wait_for(lambda: _depth_is(broker, work, 0))
        await wait_for(lambda: _ran(runs))
    assert runs == [7]
    assert await broker.depth(dlq) == 0


async def _depth_is(broker: Broker, queue: str, depth: int) -> bool:
    return await broker.depth(queue) == depth


async def _ran(runs: list[int]) -> bool:
    return bool(runs)


async def _peek(broker: Broker, queue: str) -> bytes:
    """The raw properties of the message at the head of ``queue``, left in it."""
    channel = await broker.connection.channel()
    amqp = await channel.get_underlay_channel()
    try:
        for _ in range(100):
            message = await amqp.basic_get(queue, no_ack=False)
            if not isinstance(message.delivery, spec.Basic.GetEmpty):
                raw = bytes(message.header.raw_properties)
                await amqp.basic_nack(message.delivery_tag, requeue=True)
                return raw
            await asyncio.sleep(0.05)
        raise AssertionError(f"nothing in {queue}")
    finally:
        await channel.close()


async def test_a_dramatiq_message_dead_lettered_then_requeued_runs_once_unchanged(
    broker: Broker, store: ParkingStore, amqp_url: str, redis_url: str, prefix: str
) -> None:
    dramatiq = pytest.importorskip("dramatiq")
    rabbitmq = pytest.importorskip("dramatiq.brokers.rabbitmq")
    amqp_raw.install()
    queue = broker.name("dq")
    dlq = f"{queue}.XQ"  # where Dramatiq's queues dead-letter to
    broker.queues += [queue, f"{queue}.DQ", dlq]
    dq_broker = rabbitmq.RabbitmqBroker(url=amqp_url)
    runs: list[int] = []
    gateway_up = threading.Event()

    @dramatiq.actor(queue_name=queue, max_retries=0, broker=dq_broker)
    def charge(n: int) -> None:
        if not gateway_up.is_set():
            raise RuntimeError("gateway down")
        runs.append(n)

    try:
        dq_broker.declare_queue(queue)
        charge.send(7)
        published = await _peek(broker, queue)  # what Dramatiq sent, as it came

        worker = dramatiq.Worker(dq_broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:  # the actor fails, Dramatiq nacks it, RabbitMQ dead-letters it
            await wait_for(lambda: _depth_is(broker, dlq, 1))
        finally:
            worker.stop()
        assert await park_all(broker.connection, store, dlq) == 1

        ids = await entry_ids(store, dlq)
        report = await requeue_entries(store, amqp_url, redis_url, prefix, dlq, ids)
        assert report.succeeded == 1, report.outcomes
        assert comparable(await _peek(broker, queue)) == comparable(published)

        gateway_up.set()
        worker = dramatiq.Worker(dq_broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            await wait_for(lambda: _ran(runs))
            await wait_for(lambda: _depth_is(broker, queue, 0))
        finally:
            worker.stop()
        assert runs == [7]
        assert await broker.depth(dlq) == 0
    finally:
        dq_broker.close()
