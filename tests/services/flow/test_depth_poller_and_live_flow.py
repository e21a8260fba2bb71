"""DepthPoller on real queues, and LiveFlow (its AMQP side in a process) started and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import time
import warnings
from pathlib import Path

import aio_pika
import aiormq.exceptions
import numpy as np
import orjson
import pytest

from services.config import Profile, TapBinding
from services.flow.aggregator import FlowAggregator
from services.flow.depth_poller import DepthPoller
from services.flow.live_flow import LiveFlow
from services.links.status import LinkState, LinkStatus
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


def latest_depths(agg: FlowAggregator) -> dict[str, float]:
    frame = agg.frame(1)
    return dict(zip(frame.queue_names, frame.queue_depths[:, -1], strict=True))


async def test_depth_poller_reads_real_queues_and_reports_a_missing_one(
    amqp_url: str, unique_prefix: str
) -> None:
    conn = await aio_pika.connect(amqp_url)
    channel = await conn.channel()
    full, empty, missing = (f"{unique_prefix}{n}" for n in ("full", "empty", "missing"))
    await channel.declare_queue(full, auto_delete=False)
    await channel.declare_queue(empty, auto_delete=False)
    try:
        for _ in range(3):
            await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=full)
        agg = FlowAggregator()
        problems: list[str] = []
        resolved: list[str] = []
        poller = DepthPoller(
            [full, missing, empty, full], agg, 0.1, problems.append, resolved.append
        )
        task = asyncio.create_task(poller.run(conn))
        await eventually(lambda: latest_depths(agg).get(full) == 3 and empty in latest_depths(agg))
        depths = latest_depths(agg)
        assert depths[empty] == 0
        assert np.isnan(depths[missing])
        assert agg.frame(1).queue_names == (full, missing, empty)
        await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=empty)
        await eventually(lambda: latest_depths(agg)[empty] == 1)
        # Several rounds later the missing queue was reported once, not every round.
        await asyncio.sleep(0.5)
        assert len(problems) == 1
        assert missing in problems[0]
        assert "NOT_FOUND" in problems[0]
        # It appears: its depth shows up (asked again every few rounds).
        await channel.declare_queue(missing, auto_delete=False)
        await eventually(lambda: latest_depths(agg)[missing] == 0)
        assert resolved == problems  # the same text, so the UI can clear it
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for name in (full, empty, missing):
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        await conn.close()


async def test_live_flow_start_count_stop(
    amqp_url: str, redis_url: str, unique_prefix: str
) -> None:
    exchange_name = f"{unique_prefix}flow"
    dlq = f"{unique_prefix}dlq"
    conn = await aio_pika.connect(amqp_url)
    channel = await conn.channel()
    exchange = await channel.declare_exchange(
        exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True
    )
    await channel.declare_queue(dlq)
    profile = Profile(
        name="t",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=(TapBinding(exchange_name), TapBinding(f"{unique_prefix}absent")),
        dead_letter_queues=(dlq,),
        depth_poll_interval_s=0.1,
    )
    statuses: list[LinkStatus] = []
    problems: list[str] = []
    flow = LiveFlow(profile, statuses.append, problems.append)
    agg = flow.aggregator  # the mirror of the aggregator in the live flow's process
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            before = asyncio.all_tasks()
            await flow.start()
            await flow.start()  # idempotent
            await eventually(
                lambda: (
                    {s.service for s in statuses if s.state is LinkState.CONNECTED}
                    == {"RabbitMQ", "Redis"}
                )
            )
            await asyncio.wait_for(flow.tap.ready.wait(), 10)
            for i in range(100):
                status = "failed" if i % 10 == 0 else "captured"
                await exchange.publish(
                    aio_pika.Message(
                        orjson.dumps({"status": status, "created_at": time.time() * 1000})
                    ),
                    routing_key="payment.x",
                )
            await eventually(lambda: sum(agg.totals_by_status().values()) == 100)
            await eventually(lambda: agg.headline().dlq_depth == 0)
            assert agg.totals_by_status() == {"failed": 10, "captured": 90}
            assert any(f"{unique_prefix}absent" in p for p in problems)
            assert flow.redis.client is not None
            tap_queue = flow.tap.queue_name
            child = flow.process.process
            assert child is not None and child.is_alive()
            pid = child.pid

            await flow.stop()
            await flow.stop()  # twice is fine
            assert flow.process.process is None
            assert not Path(f"/proc/{pid}").exists()  # ended and reaped: no zombie
            assert multiprocessing.active_children() == []
            assert not flow.tap.ready.is_set()
            assert flow.redis.client is None
            await asyncio.sleep(0)
            assert asyncio.all_tasks() - before == set()
            gc.collect()
        probe = await conn.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await probe.declare_queue(tap_queue, passive=True)
    finally:
        await flow.stop()
        channel = await conn.channel()
        with contextlib.suppress(Exception):
            await channel.queue_delete(dlq)
        with contextlib.suppress(Exception):
            await channel.exchange_delete(exchange_name)
        await conn.close()


async def test_live_flow_taps_again_after_the_broker_comes_back(
    amqp_url: str, redis_url: str, unique_prefix: str
) -> None:
    from tests.helpers.tcp_proxy import TcpProxy

    exchange_name = f"{unique_prefix}again"
    conn = await aio_pika.connect(amqp_url)
    channel = await conn.channel()
    exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC)
    proxy = TcpProxy(5672)
    await proxy.start()
    profile = Profile(
        name="t",
        amqp_url=amqp_url.replace(":5672", f":{proxy.port}"),
        redis_url=redis_url,
        tap_exchanges=(TapBinding(exchange_name),),
    )
    statuses: list[LinkStatus] = []
    flow = LiveFlow(profile, statuses.append, amqp_backoff=(0.05,))
    agg = flow.aggregator

    async def publish(n: int) -> None:
        for _ in range(n):
            await exchange.publish(aio_pika.Message(b"{}"), routing_key="payment.captured")

    try:
        await flow.start()
        await asyncio.wait_for(flow.tap.ready.wait(), 10)
        first_queue = flow.tap.queue_name
        await publish(10)
        await eventually(lambda: agg.totals_by_status() == {"captured": 10})
        await proxy.stop()
        await eventually(lambda: any(s.state is LinkState.RECONNECTING for s in statuses))
        await proxy.start()
        await eventually(lambda: flow.tap.ready.is_set() and flow.tap.queue_name != first_queue)
        await publish(5)
        await eventually(lambda: agg.totals_by_status() == {"captured": 15})
    finally:
        await flow.stop()
        await proxy.stop()
        await channel.exchange_delete(exchange_name)
        await conn.close()
