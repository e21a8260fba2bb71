"""``execute_scripts``: a pipeline of script calls in one round trip, a missing script
loaded when the call answers ``NOSCRIPT``."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from services.links.endpoints import RedisSettings
from services.links.redis_client import execute_scripts, make_redis_client


async def test_script_calls_go_without_a_script_exists_round_trip(
    redis_url: str, prefix: str, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # redis-py's pipeline asks SCRIPT EXISTS of its scripts before the calls, in a round
    # trip of its own (the replay gate paid it on every requeue window).
    asked: list[str] = []
    immediate = Pipeline.immediate_execute_command

    async def spy(self: Pipeline, *args: Any, **options: Any) -> Any:
        asked.append(str(args[0]))
        return await immediate(self, *args, **options)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(Pipeline, "immediate_execute_command", spy)
    client = make_redis_client(RedisSettings.standalone(redis_url))
    try:
        # A script the server has never seen (its text is new): the first call answers
        # NOSCRIPT, the script is loaded and the calls run once.
        script = client.register_script(
            f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
        )
        key = f"{prefix}:counter"

        async def build(pipe: Any) -> None:
            await script(keys=[key], args=[2], client=pipe)
            await script(keys=[key], args=[3], client=pipe)

        assert await execute_scripts(client, build, [script]) == [2, 5]
        assert await execute_scripts(client, build, [script]) == [7, 10]
        assert int(cast(bytes, await redis_client.get(key))) == 10  # each call ran once
        assert "SCRIPT EXISTS" not in asked
    finally:
        await client.aclose()
