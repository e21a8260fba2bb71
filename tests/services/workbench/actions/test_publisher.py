"""The action publisher against the real RabbitMQ: confirms, mandatory returns, exact
properties and headers, channel loss, wait queues, and running on qasync's loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import AsyncIterator

import aio_pika
import pytest

from services.workbench.actions.pika_link import AmqpUnavailable
from services.workbench.actions.publisher import (
    ACTION_ID_HEADER,
    ActionPublisher,
    PublishItem,
)
from tests.helpers.action_kit import Broker
from tests.helpers.paths import REPO_ROOT
from tests.helpers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def publisher(amqp_url: str) -> AsyncIterator[ActionPublisher]:
    publisher = ActionPublisher(amqp_url, window=3)
    yield publisher
    await publisher.close()


async def test_confirmed_returned_and_unroutable_are_told_apart(
    broker: Broker, publisher: ActionPublisher
) -> None:
    queue = await broker.queue("target")
    topic = await broker.exchange("topic", aio_pika.ExchangeType.TOPIC)
    items = [
        PublishItem("", queue.name, b"one", "a-1"),
        PublishItem("", broker.name("missing"), b"two", "a-2"),
        PublishItem(topic.name, "no.binding", b"three", "a-3"),
        *(PublishItem("", queue.name, f"n{i}".encode(), f"b-{i}") for i in range(40)),
    ]
    outcomes = await publisher.publish_many(items)
    assert [o.status for o in outcomes[:3]] == ["confirmed", "returned", "returned"]
    assert outcomes[1].detail == (
        f"unroutable: no queue '{broker.name('missing')}' (mandatory publish returned NO_ROUTE)"
    )
    assert "has no binding for routing key 'no.binding'" in outcomes[2].detail
    assert all(o.ok for o in outcomes[3:])
    arrived = await broker.drain(queue.name)
    assert [m.body for m in arrived] == [b"one", *(f"n{i}".encode() for i in range(40))]
    assert [m.headers[ACTION_ID_HEADER] for m in arrived][:2] == ["a-1", "b-0"]
    assert all("message_id" not in m.properties for m in arrived)
    with pytest.raises(ValueError, match="distinct action ids"):
        await publisher.publish_many([items[0], items[0]])


async def test_a_missing_exchange_costs_the_channel_not_the_publisher(
    broker: Broker, publisher: ActionPublisher
) -> None:
    queue = await broker.queue("target")
    [lost] = await publisher.publish_many([PublishItem(broker.name("nope"), "k", b"x", "x-1")])
    assert lost.status == "unknown" and "NOT_FOUND" in lost.detail
    [ok] = await publisher.publish_many([PublishItem("", queue.name, b"after", "x-2")])
    assert ok.ok
    assert await publisher.queue_depth(queue.name) == 1
    assert await publisher.queue_depth(broker.name("missing")) is None
    assert await publisher.exchange_exists("amq.topic")
    assert not await publisher.exchange_exists(broker.name("nope"))


async def test_messages_the_broker_would_refuse_are_not_sent(
    broker: Broker, publisher: ActionPublisher
) -> None:
    queue = await broker.queue("target")
    outcomes = await publisher.publish_many(
        [
            PublishItem("", queue.name, b"x", "u-1", {"user_id": "mallory"}),
            PublishItem("", queue.name, b"y", "u-2", {"priority": 300}),
            PublishItem("", queue.name, b"z", "u-3", {"user_id": "guest"}),
        ]
    )
    assert [o.status for o in outcomes] == ["not_sent", "not_sent", "confirmed"]
    assert "validated user-id" in outcomes[0].detail
    assert await broker.depth(queue.name) == 1


async def test_large_bodies_and_a_full_window(broker: Broker, publisher: ActionPublisher) -> None:
    queue = await broker.queue("target")
    big = os.urandom(3 * 1024 * 1024)
    items = [PublishItem("", queue.name, big, f"big-{i}") for i in range(5)]
    outcomes = await publisher.publish_many(items)
    assert all(o.ok for o in outcomes)
    arrived = await broker.drain(queue.name)
    assert [m.body == big for m in arrived] == [True] * 5


async def test_the_wait_queue_delays_then_dead_letters_into_the_target(
    broker: Broker, publisher: ActionPublisher
) -> None:
    queue = await broker.queue("target")
    name = await publisher.declare_delay_queue(queue.name, 1)
    broker.queues.append(name)
    assert name == f"payops.delay.{queue.name}.1s"
    assert await publisher.declare_delay_queue(queue.name, 1) == name
    [ok] = await publisher.publish_many([PublishItem("", name, b"later", "d-1")])
    assert ok.ok
    assert await broker.depth(queue.name) == 0
    await broker.wait_depth(queue.name, 1, timeout=10)
    [message] = await broker.drain(queue.name)
    assert message.body == b"later" and message.headers["x-death"][0]["reason"] == "expired"


async def test_an_unreachable_broker_is_reported() -> None:
    publisher = ActionPublisher("amqp://guest:guest@127.0.0.1:1/", connect_timeout_s=2)
    with pytest.raises(AmqpUnavailable, match="cannot connect"):
        await publisher.connect()
    with pytest.raises(AmqpUnavailable):
        await publisher.publish_many([PublishItem("", "q", b"", "a")])


async def test_a_lost_connection_makes_messages_in_flight_unknown_then_reconnects(
    broker: Broker,
) -> None:
    queue = await broker.queue("target")
    proxy = TcpProxy(5672)
    await proxy.start()
    publisher = ActionPublisher(f"amqp://guest:guest@127.0.0.1:{proxy.port}/", window=200)
    await publisher.connect()
    items = [PublishItem("", queue.name, b"x" * 2000, f"c-{i}") for i in range(20_000)]
    task = asyncio.ensure_future(publisher.publish_many(items))
    await asyncio.sleep(0.05)
    await proxy.stop()
    outcomes = await asyncio.wait_for(task, 60)
    counts = Counter(o.status for o in outcomes)
    assert counts["unknown"] + counts["not_sent"] > 0, counts
    assert set(counts) <= {"confirmed", "unknown", "not_sent"}
    first_lost = next(i for i, o in enumerate(outcomes) if not o.ok)
    assert all(not o.ok for o in outcomes[first_lost:])  # nothing after the loss is confirmed
    assert any("lost" in o.detail for o in outcomes if o.status == "unknown")

    await proxy.start()
    [again] = await publisher.publish_many([PublishItem("", queue.name, b"again", "c-again")])
    assert again.ok
    await publisher.close()
    await proxy.stop()
    await asyncio.sleep(0.2)
    depth = await broker.depth(queue.name)
    # Confirmed ones are there; unknown ones may or may not be; not_sent ones are not.
    assert counts["confirmed"] + 1 <= depth <= counts["confirmed"] + counts["unknown"] + 1


QASYNC_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from PySide6.QtCore import QCoreApplication
    import qasync
    from services.workbench.actions.publisher import ActionPublisher, PublishItem

    async def main(url, queue):
        publisher = ActionPublisher(url)
        await publisher.connect()
        assert await publisher.declare_delay_queue(queue, 1)
        outcomes = await publisher.publish_many(
            [PublishItem("", queue, b"qt", f"q-{i}") for i in range(200)]
            + [PublishItem("", queue + ".missing", b"x", "q-missing")]
        )
        depth = await publisher.queue_depth(queue)
        await publisher.close()
        confirmed = [o.status for o in outcomes].count("confirmed")
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        print(loop, confirmed, outcomes[-1].status, depth)

    app = QCoreApplication(sys.argv)
    qasync.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_it_runs_on_the_qasync_event_loop(broker: Broker, amqp_url: str) -> None:
    pytest.importorskip("qasync")
    queue = await broker.queue("qt")
    broker.queues.append(f"payops.delay.{queue.name}.1s")
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", QASYNC_SCRIPT, amqp_url, queue.name],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["qasync", "200", "returned", "200"]
