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
once Redis has accepted the write in memory. ``redis_min_replicas = N`` makes
it wait for ``WAIT N`` (for parking ``"replica"`` is N >= 1, see
:func:`services.config.replicas_to_confirm`), and an action's intent counts
only once ``WAIT N`` confirms it too (:mod:`services.workbench.actions.ledger`):
a failover to a replica that has the write keeps it. Fewer confirmations
within :data:`WAIT_TIMEOUT_MS` raise :class:`NotWritten`: the parker holds the
batch unacked and retries; the action stops before publishing the window.
"""

from __future__ import annotations

from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from services.config import PARK_ACK_AFTER, replicas_to_confirm
from services.workbench.model import Durability

WAIT_TIMEOUT_MS: Final = 3000
"""How long one ``WAITAOF`` / ``WAIT`` waits before the writes count as not written: below
redis-py's default 5 s socket timeout, so the reply arrives before the client gives up."""

_ALLOW_HINT: Final = (
    " Give Redis persistence (appendonly yes, or save points) and a maxmemory-policy that"
    " does not evict (noeviction), or set allow_volatile_store = true in the profile to"
    " park anyway."
)


class VolatileStore(Exception):
    """Parking refused: the store could lose what the parker acks (the message says why)."""


class NotWritten(RedisError):
    """``WAITAOF`` / ``WAIT`` did not confirm the writes: a parked batch is not acked (the
    parker retries), an action's intents do not count (it stops before publishing)."""


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
    redis: aioredis.Redis, *, allow_volatile: bool, ack_after: str = "write", min_replicas: int = 0
) -> Durability:
    """The store's durability; raises :class:`VolatileStore` when parking must not start.

    With ``allow_volatile`` a volatile store is accepted (the returned
    durability still says what can be lost, for the banner and the log).
    ``min_replicas``: the profile's ``redis_min_replicas`` (so many replicas must be
    connected).
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
    elif ack_after not in PARK_ACK_AFTER:
        raise ValueError(f"park_ack_after must be one of {PARK_ACK_AFTER}, not {ack_after!r}")
    wanted = replicas_to_confirm(ack_after, min_replicas)
    if wanted:
        info = await redis.info("replication")
        connected = int(info.get("connected_slaves", 0))
        if connected < wanted:
            setting = (
                f"redis_min_replicas = {min_replicas}"
                if min_replicas >= wanted
                else 'park_ack_after = "replica"'
            )
            need = "a connected replica" if wanted == 1 else f"{wanted} connected replicas"
            raise VolatileStore(
                f"parking refused: {setting} needs {need}; this Redis has {connected or 'none'}"
            )
    return durability


def add_wait(pipe: Any, ack_after: str, replicas: int = 0) -> int:
    """Append the commands that wait for ``ack_after`` and ``replicas`` (see
    :func:`services.config.replicas_to_confirm`) to a pipeline of writes (they must run on
    the connection that wrote them); how many were added."""
    added = 0
    if ack_after == "aof":
        pipe.execute_command("WAITAOF", 1, 0, WAIT_TIMEOUT_MS)
        added += 1
    wanted = replicas_to_confirm(ack_after, replicas)
    if wanted:
        pipe.execute_command("WAIT", wanted, WAIT_TIMEOUT_MS)
        added += 1
    return added


def check_wait(
    replies: list[Any], ack_after: str, replicas: int = 0, *, what: str = "the batch"
) -> None:
    """Pop the replies of :func:`add_wait`'s commands off ``replies``; raise
    :class:`NotWritten` unless they confirm ``what`` was written."""
    wanted = replicas_to_confirm(ack_after, replicas)
    if wanted:
        confirmed = int(replies.pop())
        if confirmed < wanted:
            raise NotWritten(
                f"only {confirmed} of {wanted} replica{'s' if wanted > 1 else ''} confirmed"
                f" {what} within {WAIT_TIMEOUT_MS / 1000:g} s (WAIT {wanted}): a failover"
                " could lose it"
            )
    if ack_after == "aof" and int(replies.pop()[0]) < 1:
        raise NotWritten(f"Redis did not confirm {what} in its append-only file in time")
