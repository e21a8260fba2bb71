"""Commands packed by hiredis in one call are the bytes redis-py packs; what hiredis does
not take goes through redis-py's packer, unchanged (errors included)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from services.links.endpoints import RedisSettings
from services.links.redis_client import make_redis_client
from services.links.redis_packing import fast_packing, packing_class

ARGS: list[tuple[Any, ...]] = [
    ("SET", "k", "v"),
    ("EVALSHA", "a" * 40, 3, "k1", b"k2", "k\u00e9", 1.5, 0.1, 1e20, -0.0, 10**30, b"\xff\x00"),
    ("SET", "k", float("inf")),
    ("CONFIG GET", "maxmemory"),  # two words: redis-py splits them
    ("SET", "k", memoryview(b"view")),
    ("HSET", "h", *[f"f{i}".encode() for i in range(2000)]),
]


@pytest.mark.parametrize("args", ARGS)
def test_the_bytes_redis_py_packs(args: tuple[Any, ...]) -> None:
    plain, fast = Connection(), packing_class(Connection)()
    # What goes on the wire: the same bytes (redis-py may hand them over in pieces).
    assert b"".join(fast.pack_command(*args)) == b"".join(plain.pack_command(*args))
    pair = [args, args]
    assert b"".join(fast.pack_commands(pair)) == b"".join(plain.pack_commands(pair))


def test_what_redis_py_refuses_is_still_refused() -> None:
    fast = packing_class(Connection)()
    with pytest.raises(DataError):
        fast.pack_command("SET", "k", True)
    with pytest.raises(DataError):
        fast.pack_command("SET", "k", None)


async def test_a_made_client_packs_with_hiredis_and_round_trips(
    redis_url: str, prefix: str
) -> None:
    client = make_redis_client(RedisSettings.standalone(redis_url))
    assert client.connection_pool.connection_class.__name__.startswith("HiredisPacking")
    assert fast_packing(client) is client  # once is enough
    try:
        key = f"{prefix}:packing"
        await client.hset(key, mapping={"s": "\u00e9", "b": b"\xff", "i": 7, "f": 0.1})
        assert await client.hgetall(key) == {b"s": "\u00e9".encode(), b"b": b"\xff",
                                             b"i": b"7", b"f": b"0.1"}  # fmt: skip
        assert await client.eval("return #ARGV", 0, *range(1000)) == 1000
        await client.delete(key)
    finally:
        await client.aclose()
