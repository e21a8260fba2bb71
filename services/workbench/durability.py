"""Whether the parking store keeps what the parker acks, and the gate that refuses one that won't.

The parker acks a dead letter once Redis holds it; from then on Redis is its
only copy. So parking refuses (:func:`check_parking_store`) a Redis that can
lose the messages - no AOF and no RDB save point (a restart empties it), an
``allkeys-*`` ``maxmemory-policy`` (Redis evicts parked entries when memory is
full), or settings it may not read (an ACL refusing ``CONFIG GET``) - unless
the profile says ``allow_volatile_store = true``. ``volatile-*`` policies only
evict keys with a TTL, and parked entries have none: a full Redis then
refuses writes, and the parker holds its deliveries until it has room.

``park_ack_after`` makes the parker wait, before it acks, until Redis has the
batch in its append-only file (``"aof"``: ``WAITAOF 1 0``, Redis 7.2 or later)
or on a replica (``"replica"``: ``WAIT 1``); ``"write"`` (the default) acks
once Redis has accepted the write in memory.
"""

from __future__ import annotations

from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from services.config import PARK_ACK_AFTER
from services.workbench.model import Durability

WAIT_TIMEOUT_MS: Final = 5000
"""How long one ``WAITAOF`` / ``WAIT`` waits before the batch counts as not written."""

_ALLOW_HINT: Final = (
    " Give Redis persistence (appendonly yes, or save points) and a maxmemory-policy that"
    " does not evict (noeviction), or set allow_volatile_store = true in the profile to"
    " park anyway."
)


class VolatileStore(Exception):
    """Parking refused: the store could lose what the parker acks (the message says why)."""


class NotWritten(RedisError):
    """``WAITAOF`` / ``WAIT`` did not confirm the batch: it is not acked (the parker retries)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def inspect_durability(redis: aioredis.Redis) -> Durability:
    """Whether Redis keeps the parked messages across a restart and a full memory."""
    try:
        config: dict[Any, Any] = {}
        for name in ("appendonly", "appendfsync", "save", "maxmemory-policy"):
            config.update(await redis.config_get(name))
    except ResponseError as exc:
        return Durability(
            None,
            f"cannot tell whether Redis keeps the parked messages: CONFIG GET was refused ({exc})",
        )
    values = {_text(k): _text(v) for k, v in config.items()}
    appendonly = values.get("appendonly", "").lower() == "yes"
    fsync = values.get("appendfsync", "")
    save = values.get("save", "").strip()
    policy = values.get("maxmemory-policy", "noeviction")
    if policy.startswith("allkeys-"):
        return Durability(
            False,
            f"Redis evicts keys when its memory is full (maxmemory-policy {policy}):"
            " parked messages can disappear without a trace",
            volatile=True,
        )
    if appendonly:
        if fsync == "no":
            return Durability(
                True,
                "Redis writes an append-only file, but appendfsync=no leaves flushing"
                " to the OS: the last seconds may be lost on a power cut",
            )
        return Durability(True, f"Redis writes an append-only file (appendfsync={fsync})")
    if save:
        return Durability(
            False,
            f"Redis only takes snapshots (save {save!r}, appendonly no): messages parked"
            " since the last snapshot are lost if Redis stops",
        )
    return Durability(
        False,
        "Redis keeps nothing on disk (appendonly no, no save points): every parked"
        " message is lost if Redis restarts",
        volatile=True,
    )


def parking_refusal(durability: Durability, allow_volatile: bool) -> str | None:
    """Why parking must not start on this store (None: it may)."""
    if allow_volatile or (durability.durable is not None and not durability.volatile):
        return None
    return f"parking refused: {durability.detail}.{_ALLOW_HINT}"


async def _version(redis: aioredis.Redis) -> tuple[int, ...]:
    info = await redis.info("server")
    text = _text(info.get("redis_version", "0"))
    return tuple(int(part) for part in text.split(".") if part.isdigit())


async def check_parking_store(
    redis: aioredis.Redis, *, allow_volatile: bool, ack_after: str = "write"
) -> Durability:
    """The store's durability; raises :class:`VolatileStore` when parking must not start.

    With ``allow_volatile`` a volatile store is accepted (the returned
    durability still says what can be lost, for the banner and the log).
    """
    durability = await inspect_durability(redis)
    refusal = parking_refusal(durability, allow_volatile)
    if refusal is not None:
        raise VolatileStore(refusal)
    if ack_after == "aof":
        version = await _version(redis)
        if version < (7, 2):
            shown = ".".join(map(str, version))
            raise VolatileStore(
                f'parking refused: park_ack_after = "aof" needs WAITAOF (Redis 7.2 or later);'
                f" this Redis is {shown}"
            )
        if durability.durable is not True:
            raise VolatileStore(
                'parking refused: park_ack_after = "aof" needs appendonly yes on Redis'
            )
    elif ack_after == "replica":
        info = await redis.info("replication")
        if int(info.get("connected_slaves", 0)) < 1:
            raise VolatileStore(
                'parking refused: park_ack_after = "replica" needs a connected replica;'
                " this Redis has none"
            )
    elif ack_after != "write":
        raise ValueError(f"park_ack_after must be one of {PARK_ACK_AFTER}, not {ack_after!r}")
    return durability


def add_wait(pipe: Any, ack_after: str) -> bool:
    """Append the command that waits for ``ack_after`` to a pipeline of writes (it must run
    on the connection that wrote them); whether one was added."""
    if ack_after == "aof":
        pipe.execute_command("WAITAOF", 1, 0, WAIT_TIMEOUT_MS)
    elif ack_after == "replica":
        pipe.execute_command("WAIT", 1, WAIT_TIMEOUT_MS)
    else:
        return False
    return True


def check_wait(reply: Any, ack_after: str) -> None:
    """Raise :class:`NotWritten` unless the reply of :func:`add_wait`'s command confirms."""
    if ack_after == "aof" and int(reply[0]) < 1:
        raise NotWritten("Redis did not confirm the batch in its append-only file in time")
    if ack_after == "replica" and int(reply) < 1:
        raise NotWritten("no replica confirmed the batch in time")
