"""Redis commands packed by hiredis in one call: the bytes redis-py writes, at a third of
its cost for commands with many arguments (a window's claims and finishes carry
thousands: redis-py encodes them one by one in Python before hiredis packs them).

:func:`fast_packing` gives a client's connections a ``pack_command`` that hands the
arguments straight to ``hiredis.pack_command`` when they are all ``str`` (UTF-8, as
redis-py encodes them), ``bytes``, ``int`` or ``float`` (written as ``repr`` writes
them, as redis-py does) and the command name is one word; anything else (a ``bool``,
a ``memoryview``, ``"CONFIG GET"``, another encoding) goes through redis-py's own
packer, unchanged.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis.asyncio as aioredis

_CLASSES: dict[type, type] = {}


class _HiredisPacking:
    """Mixed in before a redis-py connection class (see the module docstring)."""

    encoder: Any

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        encoder = self.encoder
        if (
            type(first) is str
            and " " not in first
            and encoder.encoding == "utf-8"
            and encoder.encoding_errors == "strict"
        ):
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # a bool, a memoryview...: redis-py's packer says what
                pass
        packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
        return packed


def packing_class(base: type) -> type:
    """``base`` (a redis-py connection class) packing with hiredis in one call."""
    made = _CLASSES.get(base)
    if made is None:
        made = _CLASSES[base] = type(f"HiredisPacking{base.__name__}", (_HiredisPacking, base), {})
    return made


def fast_packing(client: aioredis.Redis) -> aioredis.Redis:
    """``client`` with its (future) connections packing with hiredis in one call; a
    client whose pool has no connection class (a cluster's) is left as it is."""
    pool = getattr(client, "connection_pool", None)
    base = getattr(pool, "connection_class", None)
    if isinstance(base, type) and not issubclass(base, _HiredisPacking):
        pool.connection_class = packing_class(base)  # type: ignore[union-attr]
    return client
