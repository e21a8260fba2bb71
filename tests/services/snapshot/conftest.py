"""Fixtures of the snapshot writer's tests (the kit itself: tests/helpers/snapshot_kit.py)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.helpers.snapshot_kit import Seeded, seeded_range


@pytest.fixture
async def seeded(redis_client: aioredis.Redis, prefix: str) -> Seeded:
    """The kit's incident range seeded under the test's prefix, with its profile."""
    return await seeded_range(redis_client, prefix)
