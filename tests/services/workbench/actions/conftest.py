"""The actions' tests' kit: a connected action publisher on the real broker, and the
action service that the tests drive on their dead-letter queues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import ServiceFor, make_profile


@pytest.fixture
async def publisher(amqp_url: str) -> AsyncIterator[ActionPublisher]:
    """An :class:`ActionPublisher`, connected; closed afterwards."""
    publisher = ActionPublisher(amqp_url)
    await publisher.connect()
    yield publisher
    await publisher.close()


@pytest.fixture
def service_for(
    store: ParkingStore, publisher: ActionPublisher, amqp_url: str, redis_url: str, prefix: str
) -> ServiceFor:
    """Makes alice's action service (on ``test-host``) for one dead-letter queue, with the
    test's profile (and its ``overrides``) (:func:`~tests.helpers.action_kit.make_profile`)."""

    def make(dlq: str, **overrides: Any) -> ActionService:
        profile = make_profile(amqp_url, redis_url, prefix, [dlq], **overrides)
        return ActionService(store, publisher, profile, "alice", "test-host")

    return make
