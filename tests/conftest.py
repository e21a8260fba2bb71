"""Shared fixtures: the real RabbitMQ and Redis on localhost, unique names per test."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

AMQP_URL = os.environ.get("PAYOPS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("PAYOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The test broker; `make test` starts it (scripts/bootstrap.sh) when it is not running."""
    if not _reachable(5672):
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672: run `make services`")
    return AMQP_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis (database 15); started by `make services` when not running."""
    if not _reachable(6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379: run `make services`")
    return REDIS_URL


@pytest.fixture
def unique_prefix() -> str:
    """A prefix for queue, exchange and key names that no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep console state and user config out of the real home directory."""
    monkeypatch.setenv("PAYOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    for name in ("PAYOPS_CONFIG", "PAYOPS_PROFILE", "PAYOPS_AMQP_URL", "PAYOPS_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Put the logging set-up back after each test: the CLI's ``main`` and a Celery worker
    set up logging for the process (a root handler on the test's captured stderr, closed
    afterwards; the root at ERROR), which later tests would otherwise log through."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    states = {
        name: (logger.level, logger.disabled)
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            was_level, was_disabled = states.get(name, (logging.NOTSET, False))
            logger.setLevel(was_level)
            logger.disabled = was_disabled


@pytest.fixture
def prefix(unique_prefix: str) -> str:
    """The unique prefix as a Redis key prefix (``tabc123``, keys ``tabc123:...``)."""
    return unique_prefix.rstrip(".")


@pytest.fixture
async def redis_client(redis_url: str, prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the test Redis; every key under ``prefix`` is deleted afterwards."""
    client = aioredis.from_url(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.unlink(*keys[start : start + 1000])
    await client.aclose()
