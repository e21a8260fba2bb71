"""The demo topology, declared on the real RabbitMQ under a unique prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

from services.config import build_profile, read_config
from services.demo.topology import (
    DemoTopology,
    TopologyConflictError,
    declare_demo_topology,
    declare_demo_topology_at,
    delete_demo_topology,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractConnection]:
    conn = await aio_pika.connect(amqp_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def channel(connection: AbstractConnection) -> AbstractChannel:
    return await connection.channel()


@pytest.fixture
async def prefix(connection: AbstractConnection) -> AsyncIterator[str]:
    """A unique prefix; the topology under it is deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:8]}."
    yield name
    cleanup = await connection.channel()  # the test's channel may have been closed by an error
    await delete_demo_topology(cleanup, name)
    await cleanup.close()


async def exists(connection: AbstractConnection, *, queue: str = "", exchange: str = "") -> bool:
    """Whether a queue or exchange exists (a passive declare, on a throwaway channel)."""
    probe = await connection.channel()
    try:
        if queue:
            await probe.declare_queue(queue, passive=True)
        else:
            await probe.declare_exchange(exchange, passive=True)
    except ChannelNotFoundEntity:
        return False
    await probe.close()
    return True


def test_default_names_are_those_of_the_demo_profile() -> None:
    topology = DemoTopology.for_prefix()
    profile = build_profile(read_config(None), "demo", {})

    assert topology.payments_exchange == "payments"
    assert topology.events_exchange == "payments.events"
    assert topology.dlx_exchange == "payments.dlx"
    assert topology.process_queue == "payments.process"
    assert topology.settlement_queue == "payments.settlement"
    assert topology.fraudcheck_queue == "payments.fraudcheck"
    assert topology.dead_letter_queue == "payments.dlq"
    assert {b.exchange for b in profile.tap_exchanges} == set(topology.tap_exchanges)
    assert all(b.routing_key == "#" for b in profile.tap_exchanges)
    assert set(profile.watch_queues) <= set(topology.watch_queues)
    assert profile.dead_letter_queues == topology.dead_letter_queues


def test_prefix_applies_to_every_name_and_routing_keys_are_documented() -> None:
    topology = DemoTopology.for_prefix("x.")
    assert all(name.startswith("x.payments") for name in topology.exchanges + topology.queues)
    assert topology.request_key("hansa-grocer") == "payment.request.hansa-grocer"
    assert topology.settle_key("hansa-grocer") == "payment.settle.hansa-grocer"
    assert topology.fraudcheck_key("hansa-grocer") == "payment.fraudcheck.hansa-grocer"
    assert topology.event_key("captured") == "payment.captured"
    assert "x.payments.settlement  (quorum, durable" in topology.describe()


async def test_declare_twice_is_idempotent(
    connection: AbstractConnection, channel: AbstractChannel, prefix: str
) -> None:
    first = await declare_demo_topology(channel, prefix)
    second = await declare_demo_topology(channel, prefix)

    assert first == second == DemoTopology.for_prefix(prefix)
    assert not channel.is_closed
    for name in first.queues:
        assert await exists(connection, queue=name), name
    for name in first.exchanges:
        assert await exists(connection, exchange=name), name


async def test_queues_and_exchanges_have_the_documented_arguments(
    connection: AbstractConnection, channel: AbstractChannel, prefix: str
) -> None:
    await declare_demo_topology(channel, prefix)
    # Re-declaring with the literal arguments only succeeds when the broker holds
    # exactly these (it checks equivalence and closes the channel otherwise).
    settlement = {
        "x-queue-type": "quorum",
        "x-delivery-limit": 3,
        "x-dead-letter-exchange": f"{prefix}payments.dlx",
    }
    expected = {
        f"{prefix}payments.process": {"x-dead-letter-exchange": f"{prefix}payments.dlx"},
        f"{prefix}payments.settlement": settlement,
        f"{prefix}payments.fraudcheck": {
            "x-message-ttl": 10_000,
            "x-dead-letter-exchange": f"{prefix}payments.dlx",
        },
        f"{prefix}payments.dlq": None,
    }
    probe = await connection.channel()
    for name, arguments in expected.items():
        await probe.declare_queue(name, durable=True, arguments=arguments)
    for name in ("payments", "payments.events", "payments.dlx"):
        await probe.declare_exchange(prefix + name, aio_pika.ExchangeType.TOPIC, durable=True)

    # ... and the broker does check: other arguments are refused.
    with pytest.raises(ChannelPreconditionFailed):
        probe = await connection.channel()
        await probe.declare_queue(
            f"{prefix}payments.settlement",
            durable=True,
            arguments={**settlement, "x-delivery-limit": 4},
        )
    with pytest.raises(ChannelPreconditionFailed):
        probe = await connection.channel()
        await probe.declare_exchange(f"{prefix}payments.dlx", "fanout", durable=True)


async def test_bindings_route_each_key_to_its_queue(channel: AbstractChannel, prefix: str) -> None:
    topology = await declare_demo_topology(channel, prefix)
    payments = await channel.get_exchange(topology.payments_exchange)
    dlx = await channel.get_exchange(topology.dlx_exchange)
    events = await channel.get_exchange(topology.events_exchange)
    tap = await channel.declare_queue(exclusive=True)
    await tap.bind(events, "payment.*")

    sent = {
        topology.process_queue: topology.request_key("nordwind-air"),
        topology.fraudcheck_queue: topology.fraudcheck_key("nordwind-air"),
        topology.settlement_queue: topology.settle_key("nordwind-air"),
    }
    for queue_name, key in sent.items():
        await payments.publish(aio_pika.Message(queue_name.encode()), key, mandatory=True)
    await dlx.publish(aio_pika.Message(b"dead"), "any.key.at.all", mandatory=True)
    await events.publish(aio_pika.Message(b"event"), topology.event_key("captured"))

    for queue_name, key in sent.items():
        queue = await channel.get_queue(queue_name)
        message = await queue.get(no_ack=True, timeout=5)
        assert message.body == queue_name.encode()
        assert message.routing_key == key
        assert await queue.get(no_ack=True, fail=False) is None  # routed to this queue only
    dlq = await channel.get_queue(topology.dead_letter_queue)
    assert (await dlq.get(no_ack=True, timeout=5)).routing_key == "any.key.at.all"
    assert (await tap.get(no_ack=True, timeout=5)).routing_key == "payment.captured"


async def test_a_queue_with_other_arguments_is_reported_as_a_conflict(
    connection: AbstractConnection, prefix: str
) -> None:
    squatter = await connection.channel()
    await squatter.declare_queue(f"{prefix}payments.process", durable=True)  # no DLX
    channel = await connection.channel()

    with pytest.raises(TopologyConflictError, match=f"{prefix}payments.process"):
        await declare_demo_topology(channel, prefix)


async def test_declare_at_url_connects_declares_and_disconnects(
    amqp_url: str, connection: AbstractConnection, prefix: str
) -> None:
    topology = await declare_demo_topology_at(amqp_url, prefix)

    assert topology.prefix == prefix
    assert await exists(connection, queue=f"{prefix}payments.settlement")
    assert await exists(connection, exchange=f"{prefix}payments.events")


async def test_delete_removes_everything_and_is_idempotent(
    connection: AbstractConnection, channel: AbstractChannel, prefix: str
) -> None:
    topology = await declare_demo_topology(channel, prefix)

    await delete_demo_topology(channel, prefix)
    await delete_demo_topology(channel, prefix)

    for name in topology.queues:
        assert not await exists(connection, queue=name), name
    for name in topology.exchanges:
        assert not await exists(connection, exchange=name), name
