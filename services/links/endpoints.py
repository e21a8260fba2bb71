"""Where RabbitMQ and Redis are: the plain settings a profile gives, with no client.

:class:`AmqpEndpoint` (one or more node URLs, TLS files for ``amqps://``) and
:class:`RedisSettings` (the mode, the URL, the sentinels, TLS files for
``rediss://``) are built by ``services.config.Profile`` and used by the one
place each client is made: :mod:`services.links.amqp_connect` and
:mod:`services.links.redis_client`. This module imports no client library, so
the views may import the config.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Final

from services.links.tls import TlsFiles
from services.links.urls import host_port, redact_url

AMQP_PORT: Final = 5672
AMQPS_PORT: Final = 5671


@dataclass(frozen=True)
class AmqpEndpoint:
    """RabbitMQ's nodes (tried in order) and the TLS files for ``amqps://``."""

    urls: tuple[str, ...]
    tls: TlsFiles | None = None

    @classmethod
    def of(cls, url: str) -> AmqpEndpoint:
        """One node at ``url`` (TLS with the system's CAs when it is ``amqps://``)."""
        return cls((url,), TlsFiles() if amqp_uses_tls(url) else None)

    @property
    def url(self) -> str:
        """The first node's URL (the one named in messages when no node answers)."""
        return self.urls[0]

    @property
    def display_url(self) -> str:
        """The first node's URL without its password, plus how many more there are."""
        more = len(self.urls) - 1
        return redact_url(self.url) + (f" (+{more} more)" if more else "")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context, or None when the nodes are not ``amqps://``."""
        return self.tls.ssl_context() if self.tls is not None else None


AmqpTarget = AmqpEndpoint | str
"""Where a connection goes: an endpoint, or (tests, the demo) one plain URL."""


def as_endpoint(target: AmqpTarget) -> AmqpEndpoint:
    """``target`` as an endpoint."""
    return AmqpEndpoint.of(target) if isinstance(target, str) else target


def amqp_uses_tls(url: str) -> bool:
    """Whether an AMQP URL asks for TLS (``amqps://``)."""
    return url.startswith("amqps://")


def node_target(url: str) -> str:
    """``host:port`` of a node, for messages."""
    return host_port(url, AMQPS_PORT if amqp_uses_tls(url) else AMQP_PORT)


REDIS_MODES: Final = ("standalone", "sentinel", "cluster")
SENTINEL_PORT: Final = 26379


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how to talk to it (see the module docstring)."""

    url: str
    mode: str = "standalone"
    sentinels: tuple[str, ...] = ()
    sentinel_master: str | None = None
    tls: TlsFiles | None = None

    @classmethod
    def standalone(cls, url: str) -> RedisSettings:
        """One server at ``url`` (TLS with the system's CAs when it is ``rediss://``)."""
        return cls(url, tls=TlsFiles() if redis_uses_tls(url) else None)

    @property
    def target(self) -> str:
        """Where Redis is, for messages: ``host:port``, or the sentinels and the master."""
        if self.mode == "sentinel":
            return f"master {self.sentinel_master} via sentinels {', '.join(self.sentinels)}"
        return host_port(self.url, 6379)


def redis_uses_tls(url: str) -> bool:
    """Whether a Redis URL asks for TLS (``rediss://``)."""
    return url.startswith("rediss://")


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, or a bare host) as ``(host, port)``; ValueError if bad."""
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not host:port")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    if not host or not 0 < port < 65536:
        raise ValueError(f"{text!r} is not host:port")
    return host, port
