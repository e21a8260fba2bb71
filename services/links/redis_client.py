"""The one place a Redis client is made, for every process (console, CLI, collector, flow
child): standalone, behind Sentinel or a Redis Cluster, with or without TLS.

:class:`RedisSettings` is the profile's part that says where Redis is
(``services.config.Profile.redis_settings`` builds it); :func:`make_redis_client`
turns it into a ``redis.asyncio`` client with the caller's timeouts.

- ``standalone``: ``redis_url`` names the server.
- ``sentinel``: the sentinels (``host:port``) name the master of
  ``sentinel_master``; ``redis_url`` gives the scheme (``rediss://`` for TLS),
  user, password and database, its host is not used.
- ``cluster``: ``redis_url`` names any node; the client discovers the rest.

A ``rediss://`` URL uses the profile's TLS files (:class:`~services.links.tls.TlsFiles`),
for the sentinels too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ClusterDownError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from yarl import URL

from services.links.backoff import Backoff
from services.links.endpoints import SENTINEL_PORT, RedisSettings, parse_host_port
from services.links.redis_packing import fast_packing

log = logging.getLogger(__name__)

T = TypeVar("T")

FAILOVER_WAIT_S: Final = 30.0
"""How long a call that :func:`through_failover` guards waits for Redis to answer again."""
FAILOVER_BACKOFF_S: Final = (0.1, 0.25, 0.5, 1.0, 2.0)
"""The waits between its attempts: a Sentinel promotes a replica within seconds."""
_FAILOVER_REPLIES: Final = ("LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "UNBLOCKED")


def make_redis_client(settings: RedisSettings, **options: Any) -> aioredis.Redis:
    """A client for ``settings``; ``options`` are redis-py's (``socket_timeout``, ``retry``,
    ``decode_responses``...). Nothing is connected until the first command.

    In cluster mode the client is a :class:`redis.asyncio.RedisCluster`, which has the
    same commands; a multi-key command or script works there only when its keys share a
    hash tag.

    Unless ``options`` give a ``retry``, the client never re-sends a command by itself:
    redis-py's cluster client (and a client made by ``Redis(...)``) re-sends one whose
    reply timed out or was cut off, and such a command may have run each time (a script
    slower than ``socket_timeout`` ran 9 times on a cluster, measured), so parks, audit
    records and counters could be written twice. A connection the server closed is still replaced
    when the pool hands it out; what must ride through an outage says so with
    :func:`through_failover`, on calls that are safe to repeat.
    """
    options.setdefault("retry", Retry(NoBackoff(), 0))
    tls = settings.tls.redis_options() if settings.tls is not None else {}
    if settings.mode == "sentinel":
        return fast_packing(_sentinel_master(settings, tls, options))
    if settings.mode == "cluster":
        cluster = aioredis.RedisCluster.from_url(settings.url, **tls, **options)
        return cast(aioredis.Redis, cluster)  # the same command API; see the docstring
    return fast_packing(aioredis.Redis.from_url(settings.url, **tls, **options))


def _sentinel_master(
    settings: RedisSettings, tls: dict[str, Any], options: dict[str, Any]
) -> aioredis.Redis:
    url = URL(settings.url)
    path = url.path.strip("/")
    connection: dict[str, Any] = {
        "username": url.user,
        "password": url.password,
        "db": int(path) if path.isdigit() else 0,
        **options,
    }
    if tls:
        connection.update(ssl=True, **tls)
    sentinel_kwargs: dict[str, Any] = {
        key: options[key] for key in ("socket_timeout", "socket_connect_timeout") if key in options
    }
    if tls:
        sentinel_kwargs.update(ssl=True, **tls)
    sentinel = Sentinel(
        [parse_host_port(text, SENTINEL_PORT) for text in settings.sentinels],
        sentinel_kwargs=sentinel_kwargs,
        **connection,
    )
    assert settings.sentinel_master is not None  # the config checks it
    master: aioredis.Redis = sentinel.master_for(settings.sentinel_master)
    return master


def decodes_responses(client: aioredis.Redis) -> bool:
    """Whether ``client`` decodes replies to ``str`` (a standalone, Sentinel or cluster
    client alike: a cluster client has no ``connection_pool``)."""
    encoder = client.get_encoder()  # type: ignore[no-untyped-call]
    return bool(encoder.decode_responses)


async def execute_scripts(
    client: aioredis.Redis,
    build: Callable[[Any], Awaitable[None]],
    scripts: Sequence[AsyncScript],
) -> list[Any]:
    """Run the pipeline that ``build`` fills with calls of ``scripts``; its replies.

    A Redis Cluster's pipelines do not load scripts first as a plain client's do, and a
    restart or failover empties a server's script cache: then the scripts are loaded
    (on every primary of a cluster) and the pipeline runs once more. The scripts must be
    safe to run twice.

    A plain client's pipeline would ask ``SCRIPT EXISTS`` of its scripts first, in a
    round trip of its own before every call; here it does not (a missing script is
    loaded when the call answers ``NOSCRIPT``, as on a cluster): one round trip, not
    two - the replay gate takes each window's payment claims this way, on the path of
    every requeue window.
    """
    for attempt in range(2):
        # ``async with``: a pipeline that failed while loading its scripts (a lost
        # connection) gives its connection back to the pool too.
        async with client.pipeline(transaction=False) as pipe:
            await build(pipe)
            scripts_first = getattr(pipe, "scripts", None)
            if isinstance(scripts_first, set):  # redis-py's SCRIPT EXISTS before EVALSHA
                scripts_first.clear()
            try:
                replies: list[Any] = await pipe.execute()
                return replies
            except ResponseError as exc:
                missing = isinstance(exc, NoScriptError) or "No matching script" in str(exc)
                if attempt or not missing:
                    raise
            for script in scripts:
                script.sha = await client.script_load(script.script)
    raise AssertionError("unreachable")  # pragma: no cover


def is_failover_error(exc: BaseException) -> bool:
    """Whether ``exc`` is what a Redis failover or restart looks like from a client: the
    connection lost, refused or timed out, a master turned replica (``READONLY``), a server
    still loading or without a master. A refused login or command is not."""
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return False
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ReadOnlyError):
        return True
    if isinstance(exc, ClusterDownError | TryAgainError):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(_FAILOVER_REPLIES)


def master_address(client: aioredis.Redis) -> str:
    """``host:port`` of the master a Sentinel client last found ("" for other clients)."""
    address = getattr(getattr(client, "connection_pool", None), "master_address", None)
    if not address:
        return ""
    host, port = address
    return f"{host}:{port}"


async def through_failover(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    client: aioredis.Redis | None = None,
    also: tuple[type[RedisError], ...] = (),
    limit_s: float = FAILOVER_WAIT_S,
    backoff: Backoff | None = None,
) -> T:
    """``await call()``, again and again while it fails as a failover does
    (:func:`is_failover_error`, or one of ``also``) - until it answers, or for
    ``limit_s`` seconds after the first failure, waiting the delays of ``backoff``
    (:data:`FAILOVER_BACKOFF_S`) in between; then the last error is raised.

    Each attempt takes a connection from the client's pool, and a Sentinel client's
    new connection asks the sentinels for the master: the calls after a failover reach
    the promoted replica. A call whose reply was lost may have run on the old master -
    and may or may not have reached the new one - so ``call`` must be safe to repeat:
    idempotent scripts and writes only. The loss and the reconnection are logged as
    warnings (``what`` names the call; the CLI prints them).

    This is not redis-py's own ``Retry`` on the client on purpose: that would re-send
    every command of every process (audit ``XADD``, counters' ``HINCRBY``: not safe to
    repeat) and counts attempts rather than time; the client re-sends nothing by itself
    (:func:`make_redis_client`), and what must ride through a failover says so here.
    """
    delays = backoff if backoff is not None else Backoff(FAILOVER_BACKOFF_S)
    lost_at: float | None = None
    attempts = 0
    while True:
        try:
            result = await call()
        except RedisError as exc:
            if not (is_failover_error(exc) or isinstance(exc, also)):
                raise
            now = time.monotonic()
            if lost_at is None:
                lost_at = now
                log.warning(
                    "Redis failed during %s (%s); waiting up to %.0f s for the master",
                    what,
                    exc,
                    limit_s,
                )
            delay = delays.next_delay()
            if now + delay - lost_at > limit_s:
                log.warning("Redis did not come back within %.0f s during %s", limit_s, what)
                raise
            attempts += 1
            await asyncio.sleep(delay)
            continue
        if lost_at is not None:
            where = master_address(client) if client is not None else ""
            log.warning(
                "Redis reconnected%s after %.1f s (%d retr%s); %s goes on",
                f" to the master at {where}" if where else "",
                time.monotonic() - lost_at,
                attempts,
                "y" if attempts == 1 else "ies",
                what,
            )
        return result
