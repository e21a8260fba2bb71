"""The real console (window, controller, live flow) against the real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from app.console import ConsoleSession
from services.links.status import LinkState
from tests.helpers.live_console import profile_for, publish_with_pika
from tests.helpers.tcp_proxy import TcpProxy, free_port
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


async def test_console_counts_exactly_what_was_published_and_plots_it(
    amqp_url: str, redis_url: str, exchange: str, session_factory: Callable[..., ConsoleSession]
) -> None:
    session = session_factory(profile_for(exchange, amqp_url, redis_url))
    tap = session.live.flow.tap
    await eventually(tap.ready.is_set, 15, "the tap queue to be bound")
    statuses = {"authorized": 700, "captured": 450, "declined": 37, "failed": 13}
    await asyncio.to_thread(publish_with_pika, amqp_url, exchange, statuses)
    aggregator = session.live.aggregator
    await eventually(
        lambda: aggregator.totals_by_status() == statuses, 30, "the tap to count every event"
    )
    plots = session.window.flow_plots

    def plotted() -> dict[str, int]:
        session.live.on_frame_timer()  # render now rather than at the next tick
        result = {}
        for status in statuses:
            curve = plots.status_curve(status)
            result[status] = -1 if curve is None else int(np.nansum(curve.getData()[1]))
        return result

    # The plots show finished seconds: once the last event's second is over, all of them.
    await eventually(lambda: plotted() == statuses, 10, "the plots to show every event")
    assert plotted() == statuses


async def test_console_starts_with_the_broker_down_and_connects_when_it_comes_up(
    amqp_url: str, redis_url: str, exchange: str, session_factory: Callable[..., ConsoleSession]
) -> None:
    proxy = TcpProxy(target_port=5672, port=free_port())
    down_url = amqp_url.replace(":5672", f":{proxy.port}")
    session = session_factory(profile_for(exchange, down_url, redis_url))
    indicator = session.window.rabbitmq_indicator

    await eventually(
        lambda: indicator.status is not None and indicator.status.state is LinkState.FAILED,
        15,
        "the RabbitMQ indicator to show the failure",
    )
    assert "refused" in indicator.status.detail
    assert session.window.isVisible()
    # The loop keeps running: timers fire while the broker is down.
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    for _ in range(10):
        asyncio.get_running_loop().call_soon(tick)
        await asyncio.sleep(0.02)
    assert ticks == 10

    await proxy.start()  # the broker "comes up" on the configured port
    try:
        await eventually(lambda: indicator.status.state is LinkState.CONNECTED, 30, "a reconnect")
        tap = session.live.flow.tap
        await eventually(tap.ready.is_set, 15, "the tap after reconnecting")
        await asyncio.to_thread(publish_with_pika, amqp_url, exchange, {"captured": 25})
        await eventually(
            lambda: session.live.aggregator.totals_by_status() == {"captured": 25},
            30,
            "plotting to resume",
        )
        # The broker goes away again: the console says so and comes back by itself.
        await proxy.stop()
        await eventually(
            lambda: indicator.status.state in (LinkState.RECONNECTING, LinkState.FAILED),
            15,
            "the loss to show",
        )
        await proxy.start()
        await eventually(lambda: indicator.status.state is LinkState.CONNECTED, 30, "reconnect")
    finally:
        await proxy.stop()


async def test_main_window_screenshot_is_not_blank(
    amqp_url: str,
    redis_url: str,
    exchange: str,
    session_factory: Callable[..., ConsoleSession],
    tmp_path: Path,
) -> None:
    session = session_factory(profile_for(exchange, amqp_url, redis_url))
    tap = session.live.flow.tap
    await eventually(tap.ready.is_set, 15, "the tap queue to be bound")
    await asyncio.to_thread(
        publish_with_pika, amqp_url, exchange, {"authorized": 300, "captured": 250, "failed": 9}
    )
    await eventually(
        lambda: sum(session.live.aggregator.totals_by_status().values()) == 559, 30, "events"
    )
    session.live.on_frame_timer()
    path = tmp_path / "console.png"
    assert session.window.grab().save(str(path))
    image = QImage(str(path))
    assert image.width() >= 1000 and image.height() >= 600
    colours = {
        image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)
    }
    assert len(colours) > 50, "the window looks blank"


def plotted_counts(session: ConsoleSession, statuses: dict[str, int]) -> dict[str, int]:
    """What the throughput plot shows per status, rendered now."""
    session.live.on_frame_timer()
    result = {}
    for status in statuses:
        curve = session.window.flow_plots.status_curve(status)
        result[status] = -1 if curve is None else int(np.nansum(curve.getData()[1]))
    return result


async def test_a_restarted_console_opens_with_the_recent_history_plotted(
    amqp_url: str, redis_url: str, exchange: str, session_factory: Callable[..., ConsoleSession]
) -> None:
    profile = profile_for(exchange, amqp_url, redis_url)
    first = session_factory(profile)
    flow = first.live.flow
    await eventually(flow.tap.ready.is_set, 15, "the tap queue to be bound")

    def recording() -> bool:  # holds the lease, and its tap has consumed a whole second
        state = flow.recorder
        return (
            state is not None
            and state.role == "writer"
            and state.consuming_since is not None
            and time.time() >= state.consuming_since
        )

    await eventually(recording, 20, "the console to record the flow history")
    statuses = {"authorized": 120, "captured": 80, "failed": 6}
    await asyncio.to_thread(publish_with_pika, amqp_url, exchange, statuses)
    published_by = int(time.time())
    await eventually(lambda: flow.aggregator.totals_by_status() == statuses, 30, "every event")
    await eventually(
        lambda: (flow.recorder.last_written or 0) > published_by if flow.recorder else False,
        20,
        "the seconds with events to be written",
    )
    first.window.close()
    await asyncio.sleep(0.5)

    second = session_factory(profile)
    await eventually(
        lambda: second.live.history.seeded_seconds is not None, 20, "the history to be read"
    )
    assert second.live.aggregator.totals_by_status() == {}  # nothing new was published
    await eventually(
        lambda: plotted_counts(second, statuses) == statuses, 10, "the history to be plotted"
    )
