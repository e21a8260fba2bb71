"""A connected :class:`~services.workbench.park_link.ParkLink` for tests that run a parker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from services.workbench.park_link import ParkLink


@contextlib.asynccontextmanager
async def park_link(amqp_url: str) -> AsyncIterator[ParkLink]:
    """A link to ``amqp_url``, open for the block and closed after it."""
    link = ParkLink(amqp_url)
    await link.connect()
    try:
        yield link
    finally:
        await link.close()
