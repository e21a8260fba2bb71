"""The real console renders nothing nobody sees, and the current data the moment it is seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.console import ConsoleSession
from tests.helpers.live_console import profile_for, publish_with_pika
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


def plotted(session: ConsoleSession, statuses: dict[str, int]) -> dict[str, int]:
    """Events per status as the throughput curves hold them (their ``setData``)."""
    result = {}
    for status in statuses:
        curve = session.window.flow_plots.status_curve(status)
        result[status] = -1 if curve is None else int(np.nansum(curve.getData()[1]))
    return result


async def _published_and_finished(
    amqp_url: str, exchange: str, session: ConsoleSession
) -> dict[str, int]:
    statuses = {"authorized": 40, "failed": 3}
    await asyncio.to_thread(publish_with_pika, amqp_url, exchange, statuses)
    published_second = int(time.time())
    aggregator = session.live.aggregator
    await eventually(lambda: aggregator.totals_by_status() == statuses, 30, "every event counted")
    # The plots show finished seconds: wait for the second of the last event to end
    # (and a tick of the frame timer after it, which must draw nothing).
    await eventually(lambda: int(time.time()) > published_second + 1, 5, "the second to end")
    await asyncio.sleep(0.2)
    return statuses


async def test_a_minimised_console_draws_nothing_and_the_current_flow_when_restored(
    amqp_url: str,
    redis_url: str,
    exchange: str,
    session_factory: Callable[..., ConsoleSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = session_factory(profile_for(exchange, amqp_url, redis_url))
    window = session.window
    await eventually(session.live.flow.tap.ready.is_set, 15, "the tap to consume")
    await eventually(lambda: window.flow_plots.frame is not None, 5, "a first frame")

    mirror = session.live.aggregator
    frames_built: list[int] = []
    build = mirror.frame
    monkeypatch.setattr(mirror, "frame", lambda n: frames_built.append(n) or build(n))

    window.showMinimized()
    await eventually(window.isMinimized, 5, "the window minimised")
    frame_before = window.flow_plots.frame
    frames_built.clear()
    statuses = await _published_and_finished(amqp_url, exchange, session)
    assert window.flow_plots.frame is frame_before  # nothing drawn while minimised
    assert frames_built == []  # nor even built
    assert plotted(session, statuses) != statuses

    window.showNormal()  # no waiting for the timer: restored is rendered at once
    assert not window.isMinimized()
    assert plotted(session, statuses) == statuses


async def test_the_live_page_shows_the_current_flow_the_moment_its_tab_is_clicked(
    amqp_url: str,
    redis_url: str,
    exchange: str,
    session_factory: Callable[..., ConsoleSession],
    qtbot,
) -> None:
    session = session_factory(profile_for(exchange, amqp_url, redis_url))
    window = session.window
    await eventually(session.live.flow.tap.ready.is_set, 15, "the tap to consume")
    await eventually(lambda: window.flow_plots.frame is not None, 5, "a first frame")
    bar = window.tabs.tabBar()

    def click_tab(page) -> None:
        center = bar.tabRect(window.tabs.indexOf(page)).center()
        qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=center)
        assert window.tabs.currentWidget() is page

    click_tab(window.audit_panel)
    frame_before = window.flow_plots.frame
    statuses = await _published_and_finished(amqp_url, exchange, session)
    assert window.flow_plots.frame is frame_before  # nothing drawn on a page not shown
    events = window.headline_bar.tile("events")
    assert "43 in total" in events.detail_label.text()  # the counters follow

    click_tab(window.flow_plots)
    assert plotted(session, statuses) == statuses
