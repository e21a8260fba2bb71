"""A parker batch that Redis stored (in part or whole) but whose reply was lost: the
retry with the same entry ids finds those entries stored by its earlier attempt, and the
parker still treats every entry as parked by itself, its follow-up run once per entry."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import aio_pika
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.alerts.new_groups import NewFailureGroups
from services.alerts.rules import NewFailureGroupRule
from services.config import FieldPaths
from services.workbench.codec import MessageRecord
from services.workbench.parker import Parker
from services.workbench.store import ParkingStore, ParkItem
from tests.helpers.action_kit import Broker
from tests.helpers.park_links import park_link
from tests.helpers.private_servers import PrivateRedis
from tests.helpers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

N = 700
"""Two park chunks of one batch (500 + 200): the lost reply is chunk one's, at the least."""


@pytest.fixture
async def proxied_redis(private_redis: PrivateRedis) -> AsyncIterator[TcpProxy]:
    """A forwarder to the private Redis that can lose a reply."""
    proxy = TcpProxy(private_redis.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_a_batch_retried_after_its_reply_was_lost_is_parked_and_followed_up_once(
    broker: Broker, proxied_redis: TcpProxy
) -> None:
    dlq = (await broker.queue("dlq")).name
    assert broker.channel is not None
    for n in range(N):
        message = aio_pika.Message(
            b'{"payment_id": "pay_%d"}' % n,
            headers={"x-exception-message": f"card declined by issuer {n % 3}"},
        )
        await broker.channel.default_exchange.publish(message, dlq)
    await broker.wait_depth(dlq, N)
    url = f"redis://127.0.0.1:{proxied_redis.port}/0"
    redis = aioredis.from_url(url, retry=Retry(NoBackoff(), 0))  # as the product's client
    try:
        store = ParkingStore(redis, "retried")
        # Load the park script first: the lost reply is then one of stored entries.
        await store.park_many("warm-up", [ParkItem(MessageRecord(b"warm-up"))], FieldPaths())
        groups = NewFailureGroups(redis, "retried", NewFailureGroupRule(), 3600)
        parker = Parker(
            store, dlq, FieldPaths(), batch_size=N, batch_wait_s=2.0, prefetch=N,
            redis_backoff=(0.05,), new_groups=groups,
        )  # fmt: skip
        proxied_redis.lose_next_reply()
        async with park_link(broker.amqp_url) as link:
            stats = await parker.run(link, once=True)

        assert proxied_redis.replies_lost == 1 and stats.errors >= 1  # the batch was retried
        assert (stats.received, stats.acked, await store.count(dlq)) == (N, N, N)
        assert (stats.parked, stats.already_parked) == (N, 0)
        parked_groups: Counter[str] = Counter()
        async for batch in store.iter_summaries(dlq):
            parked_groups.update(s.failure_group for s in batch)
        assert parked_groups.total() == N and "" not in parked_groups
        # Every entry's failure group counted exactly once (the follow-up of parking).
        for group, count in parked_groups.items():
            assert int(await redis.hget(groups.key(group), "count") or 0) == count, group
    finally:
        await redis.aclose()
