"""The action publisher and a quorum queue whose leader's node is killed just before the
first publish to it on the publisher's channel.

RabbitMQ 3.10.8 (``rabbit_fifo_client:enqueue/3``, the first enqueue of a channel) asks
the node its queue record names as leader for the machine version; while the record
still names the killed node that call fails (``badrpc, nodedown``) and the publish is
nacked (``reject_publish``), and the channel keeps that client state: every later
publish on the channel to that queue is nacked too, until the node is back. A fresh
channel reads the record again. Counted by payment id: each payment once.

Slow (a three-node cluster): ``make test-topologies`` only.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aio_pika
import orjson
import pytest

from services.workbench.actions.publisher import (
    ActionPublisher,
    PublishItem,
    PublishOutcome,
)
from tests.helpers.private_servers import PrivateRabbitCluster

pytestmark = [pytest.mark.integration, pytest.mark.topologies, pytest.mark.faults]


async def _declare_quorum(url: str, queues: list[str]) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for queue in queues:
            arguments = {"x-queue-type": "quorum"}
            await channel.declare_queue(queue, durable=True, arguments=arguments, timeout=120)
    finally:
        await connection.close()


async def _drain(url: str, queue: str) -> Counter[str]:
    """The payment ids in ``queue``, taken off it (until it says nothing for 3 s)."""
    connection = await aio_pika.connect(url)
    found: Counter[str] = Counter()
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=500)
        source = await channel.declare_queue(queue, passive=True, timeout=120)
        try:
            async with source.iterator(timeout=3) as messages:
                async for message in messages:
                    found[orjson.loads(message.body)["payment_id"]] += 1
                    await message.ack()
        except TimeoutError:
            pass
        await source.delete(if_unused=False, if_empty=False, timeout=120)
    finally:
        await connection.close()
    return found


async def test_publishes_right_after_the_leaders_node_is_killed_are_confirmed(
    cluster: PrivateRabbitCluster, unique_prefix: str
) -> None:
    """The publisher is connected to a node that stays up; the node leading the queues
    is killed and the first publish to each queue follows 0 to 1.2 s after the kill
    starts (so some land between the node's death and the new leader's election, however
    loaded the machine is): every payment is confirmed (none failed) and is in its queue
    once."""
    queues, n = [f"{unique_prefix}work{k}" for k in range(16)], 30
    leader, survivor = cluster.nodes[0], cluster.nodes[1]
    await _declare_quorum(leader.url, queues)
    for queue in queues:
        assert await asyncio.to_thread(cluster.leader_of, queue) is leader
    publisher = ActionPublisher(survivor.url)
    waits: list[str] = []
    publisher.on_wait = waits.append

    async def publish(k: int) -> list[PublishOutcome]:
        await asyncio.sleep(0.075 * k)
        return await publisher.publish_many(
            [PublishItem("", queues[k], _payment(k, i), f"act-{k}-{i}") for i in range(n)]
        )

    try:
        await publisher.connect()
        killed = asyncio.create_task(asyncio.to_thread(leader.kill))
        outcomes = await asyncio.gather(*(publish(k) for k in range(len(queues))))
        await killed
    finally:
        await publisher.close()
    statuses = Counter(outcome.status for queue in outcomes for outcome in queue)
    print(f"outcomes {dict(statuses)}; {len(waits)} waits for nacked publishes", *waits[:3])
    assert statuses == Counter({"confirmed": n * len(queues)}), (statuses, waits[-1:])
    for k, queue in enumerate(queues):
        expected = Counter({f"pay_{k:02d}_{i:03d}": 1 for i in range(n)})
        assert await _drain(survivor.url, queue) == expected


def _payment(k: int, i: int) -> bytes:
    return orjson.dumps({"payment_id": f"pay_{k:02d}_{i:03d}"})
