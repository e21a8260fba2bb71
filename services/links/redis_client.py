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

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError
from yarl import URL

from services.links.endpoints import SENTINEL_PORT, RedisSettings, parse_host_port


def make_redis_client(settings: RedisSettings, **options: Any) -> aioredis.Redis:
    """A client for ``settings``; ``options`` are redis-py's (``socket_timeout``, ``retry``,
    ``decode_responses``...). Nothing is connected until the first command.

    In cluster mode the client is a :class:`redis.asyncio.RedisCluster`, which has the
    same commands; a multi-key command or script works there only when its keys share a
    hash tag.
    """
    tls = settings.tls.redis_options() if settings.tls is not None else {}
    if settings.mode == "sentinel":
        return _sentinel_master(settings, tls, options)
    if settings.mode == "cluster":
        cluster = aioredis.RedisCluster.from_url(settings.url, **tls, **options)
        return cast(aioredis.Redis, cluster)  # the same command API; see the docstring
    return aioredis.Redis.from_url(settings.url, **tls, **options)


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
    """
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        await build(pipe)
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
