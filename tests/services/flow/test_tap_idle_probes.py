"""Drop probes only when drops are possible: an idle tap sends almost none, traffic brings
them back at the full rate (the real broker)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aio_pika
import pytest

from services.config import Profile, TapBinding
from services.flow.aggregator import FlowAggregator
from services.flow.decoder import EventDecoder
from services.flow.tap import PROBE_BUSY_HOLD_S, PROBE_IDLE_HZ, PROBE_RATE_HZ, FlowTap
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def exchange(amqp_url: str, unique_prefix: str) -> AsyncIterator[str]:
    name = f"{unique_prefix}payments"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, auto_delete=False)
    yield name
    await channel.exchange_delete(name)
    await connection.close()


@pytest.fixture
async def tap(amqp_url: str, exchange: str) -> AsyncIterator[FlowTap]:
    profile = Profile(
        name="test",
        amqp_url=amqp_url,
        redis_url="redis://127.0.0.1:6379/15",
        tap_exchanges=(TapBinding(exchange),),
    )
    connection = await aio_pika.connect(amqp_url)
    tap = FlowTap(profile, FlowAggregator(), EventDecoder(profile.fields), poll_interval_s=0.2)
    task = asyncio.create_task(tap.run(connection))
    try:
        await asyncio.wait_for(tap.ready.wait(), 10)
        yield tap
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await connection.close()


async def publish(amqp_url: str, exchange: str, n: int) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        target = await channel.get_exchange(exchange, ensure=False)
        for i in range(n):
            body = f'{{"status": "captured", "i": {i}}}'.encode()
            await target.publish(aio_pika.Message(body), "payment.captured")
    finally:
        await connection.close()


async def test_an_idle_tap_sends_almost_no_probes_and_traffic_brings_them_back(
    tap: FlowTap, amqp_url: str, exchange: str
) -> None:
    # At first the full rate (a baseline), then idle: nothing arrives.
    await eventually(lambda: tap.probes_received >= 5, 10, "the first probes")
    await asyncio.sleep(PROBE_BUSY_HOLD_S + 0.5)
    sent = tap.probes_sent
    idle_s = 3.0
    await asyncio.sleep(idle_s)
    idle_probes = tap.probes_sent - sent
    assert idle_probes <= idle_s * PROBE_IDLE_HZ + 2  # 50 Hz would be ~150
    assert idle_probes >= 1  # the sequence goes on: the estimate keeps its baseline
    assert tap.consumed == 0

    # Messages arrive: drops become possible, probes go at the full rate again.
    sent = tap.probes_sent
    publisher = asyncio.create_task(publish(amqp_url, exchange, 500))
    try:
        await eventually(lambda: tap.consumed > 0, 10, "the first events")
        await eventually(
            lambda: tap.probes_sent - sent >= PROBE_RATE_HZ / 2, 10, "probes at the full rate"
        )
    finally:
        await publisher
    await eventually(lambda: tap.consumed == 500, 10, "every event")
    await eventually(lambda: tap.probes_received >= tap.probes_sent - 2, 10, "the probes back")
    assert tap._probes.missing_total == 0  # nothing dropped, and none taken for a drop


async def test_an_idle_loop_waiting_for_traffic_wakes_at_the_first_event_not_at_probes(
    tap: FlowTap, amqp_url: str, exchange: str
) -> None:
    await eventually(lambda: tap.probes_received >= 1, 10, "the first probes")
    received = tap.probes_received
    await asyncio.wait_for(tap.traffic_or_timeout(PROBE_BUSY_HOLD_S + 1.5), 10)  # times out
    assert tap.probes_received > received  # probes arrived meanwhile and did not wake it
    assert tap.consumed == 0

    waiting = asyncio.create_task(tap.traffic_or_timeout(60.0))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await publish(amqp_url, exchange, 1)
    await asyncio.wait_for(waiting, 10)  # the delivery woke it, long before its minute
    assert tap.consumed == 1
