"""The console's Redis indicator through a real Sentinel failover: the master is killed
with ``kill -9`` and the indicator (the status bar's widget; ``LiveFlow`` hands
``MainWindow.show_link_status``, which routes to it, to its ``RedisLink``), fed by the
console's Redis link, says "Redis connected · failover to host:port" with the promoted
replica's address. The whole window's routing is tested in tests/widgets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from services.config import load_profile
from services.links.redis import RedisLink
from services.links.status import LinkState, LinkStatus
from tests.helpers.private_servers import PrivateSentinel
from widgets.live.connection_indicator import ConnectionIndicator

pytestmark = [pytest.mark.integration, pytest.mark.topologies]


def test_the_redis_indicator_shows_the_failover_to_the_promoted_replica(
    sentinel: PrivateSentinel, write_config: Callable[..., Path], qtbot
) -> None:
    indicator = ConnectionIndicator("Redis")
    qtbot.addWidget(indicator)
    indicator.show()
    profile = load_profile(
        write_config(
            amqp_url="amqp://guest:guest@127.0.0.1:5672/",
            redis_mode="sentinel",
            redis_sentinels=[sentinel.sentinel],
            redis_sentinel_master=sentinel.master_name,
            redis_url="redis://payops/0",
        )
    )
    seen: list[str] = []

    def show(status: LinkStatus) -> None:
        indicator.show_status(status)
        seen.append(indicator.text())

    async def run() -> None:
        link = RedisLink(profile.redis_settings, show, ping_interval_s=0.2, timeout_s=2)
        task = asyncio.create_task(link.run())
        try:
            async with asyncio.timeout(20):
                while link.status.state is not LinkState.CONNECTED:
                    await asyncio.sleep(0.05)
            assert indicator.text() == "Redis connected"
            await asyncio.to_thread(sentinel.master.kill)
            await asyncio.to_thread(sentinel.wait_for_failover)
            async with asyncio.timeout(30):
                while not link.status.failover_to:
                    await asyncio.sleep(0.05)
        finally:
            await link.close()
            await task

    asyncio.run(run())
    promoted = f"127.0.0.1:{sentinel.replica.port}"
    assert indicator.text() == f"Redis connected · failover to {promoted}", seen
    assert f"the master is now {promoted}" in indicator.toolTip()
