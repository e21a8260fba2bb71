"""What the fault tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.private_servers import PrivateRedis


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    """A Redis of the test's own that writes every command to its append-only file before
    answering: what it acknowledged survives ``kill -9``."""
    server = PrivateRedis(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    yield server
    server.kill()
