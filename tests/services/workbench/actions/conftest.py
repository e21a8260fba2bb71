"""The actions' tests' kit: a connected action publisher on the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.workbench.actions.publisher import ActionPublisher


@pytest.fixture
async def publisher(amqp_url: str) -> AsyncIterator[ActionPublisher]:
    """An :class:`ActionPublisher`, connected; closed afterwards."""
    publisher = ActionPublisher(amqp_url)
    await publisher.connect()
    yield publisher
    await publisher.close()
