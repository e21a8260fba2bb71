"""A real console whose Redis does not answer until the test says so."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from app.console import ConsoleSession
from services.config import Profile
from tests.helpers.consoles import Consoles
from tests.helpers.tcp_proxy import TcpProxy


@contextlib.asynccontextmanager
async def console_with_redis_down(
    consoles: Consoles, profile: Profile, redis_url: str
) -> AsyncIterator[tuple[ConsoleSession, TcpProxy, str]]:
    """Start a console (1600x1000) on Redis behind a proxy not yet started (a closed port).

    Yields the session, the proxy (``await proxy.start()`` brings Redis back, ``stop`` takes
    it away again) and the ``host:port`` the console is told Redis is at.
    """
    proxy = TcpProxy(6379)
    through_proxy = redis_url.replace(":6379", f":{proxy.port}")
    session = consoles.start(dataclasses.replace(profile, redis_url=through_proxy))
    try:
        session.window.resize(1600, 1000)
        yield session, proxy, f"127.0.0.1:{proxy.port}"
    finally:
        await proxy.stop()
