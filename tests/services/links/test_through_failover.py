"""``through_failover``: which errors it waits out, for how long, and what it says."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from services.links.backoff import Backoff
from services.links.redis_client import is_failover_error, through_failover


@pytest.mark.parametrize(
    ("error", "waited_out"),
    [
        (ConnectionError("Connection closed by server."), True),
        (TimeoutError("Timeout reading from socket"), True),
        (ReadOnlyError("You can't write against a read only replica."), True),
        (ResponseError("MASTERDOWN Link with MASTER is down"), True),
        (ResponseError("LOADING Redis is loading the dataset in memory"), True),
        (AuthenticationError("invalid username-password pair"), False),
        (ResponseError("WRONGTYPE Operation against a key"), False),
    ],
)
def test_a_failover_is_told_from_a_refusal(error: RedisError, waited_out: bool) -> None:
    assert is_failover_error(error) is waited_out


class _NotWritten(RedisError):
    """Stands for ``durability.NotWritten`` (a short ``WAIT``)."""


async def test_the_call_is_made_again_until_redis_answers_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures: list[RedisError] = [ConnectionError("reset"), _NotWritten("only 0 of 1")]
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "answered"

    with caplog.at_level(logging.WARNING):
        result = await through_failover(
            call, what="the test's call", also=(_NotWritten,), backoff=Backoff((0.01,))
        )
    assert (result, calls) == ("answered", 3)
    said = caplog.text
    assert "Redis failed during the test's call (reset); waiting up to 30 s" in said
    assert "Redis reconnected after" in said and "(2 retries); the test's call goes on" in said


async def test_it_gives_up_after_its_limit_and_never_retries_a_refusal() -> None:
    calls = 0

    async def lost() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        await through_failover(lost, what="x", limit_s=0.05, backoff=Backoff((0.01,)))
    assert 2 <= calls <= 6

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise ResponseError("NOPERM no permissions")

    calls = 0
    with pytest.raises(ResponseError):
        await through_failover(refused, what="x", backoff=Backoff((0.01,)))
    assert calls == 1
