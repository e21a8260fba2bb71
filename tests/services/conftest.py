"""Fixtures shared by the services tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from services.alerts.log import AlertLog


@pytest.fixture
async def log(redis_client: aioredis.Redis, unique_prefix: str) -> AsyncIterator[AlertLog]:
    prefix = unique_prefix.rstrip(".")
    yield AlertLog(redis_client, prefix)
    await redis_client.delete(f"{prefix}:alerts")
