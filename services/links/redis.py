"""The Redis connection: one client, pinged to notice loss, reporting its state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
import redis.exceptions

from services.links.amqp import StatusCallback, describe_error
from services.links.backoff import DEFAULT_BACKOFF_S, Backoff, pause
from services.links.endpoints import RedisSettings
from services.links.redis_client import make_redis_client
from services.links.status import LinkState, LinkStatus
from services.links.tls import TlsFiles, describe_tls_error
from services.links.urls import redact_url, scrub, url_password

log = logging.getLogger(__name__)


class RedisLink:
    """Keep a Redis client and tell whether it works, by pinging every ``ping_interval_s``.

    ``client`` is the client while the last ping succeeded, None otherwise. The
    client's pool reconnects by itself, so users may keep the object; they
    should check ``client`` before starting new work. States: CONNECTING before
    an attempt, CONNECTED, FAILED while never connected (or the login was
    refused), RECONNECTING after a working connection was lost. The password
    never appears in a status or a log line.
    """

    def __init__(
        self,
        redis: RedisSettings | str,
        on_status: StatusCallback,
        service: str = "Redis",
        backoff: Sequence[float] = DEFAULT_BACKOFF_S,
        *,
        ping_interval_s: float = 2.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._backoff = Backoff(backoff)
        self._settings = RedisSettings.standalone(redis) if isinstance(redis, str) else redis
        self._on_status = on_status
        self._service = service
        self._ping_interval = ping_interval_s
        self._timeout = timeout_s
        self._display = redact_url(self._settings.url)
        self._target = self._settings.target
        self._password = url_password(self._settings.url)
        self._client: aioredis.Redis | None = None
        self._stopping = asyncio.Event()
        self._master: str | None = None
        """``host:port`` of the master a Sentinel client last reached."""
        self._failover_to = ""
        """The latest failover's new master (shown while connected to it)."""
        self.status = LinkStatus(service, LinkState.CONNECTING, self._display)

    @property
    def client(self) -> aioredis.Redis | None:
        """The Redis client while it answers pings, else None."""
        return self._client

    async def run(self) -> None:
        """Ping until ``close()``, reporting changes; only CancelledError escapes."""
        client: aioredis.Redis | None = None
        self._backoff.reset()
        ever_connected = False
        connected = False
        reason = ""
        try:
            while not self._stopping.is_set():
                if not connected:
                    self._report(LinkState.CONNECTING, reason)
                try:
                    if client is None:
                        client = make_redis_client(
                            self._settings,
                            socket_connect_timeout=self._timeout,
                            socket_timeout=self._timeout,
                        )
                    await asyncio.wait_for(client.ping(), self._timeout)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._client = None
                    reason = self._describe(exc, connecting=not connected)
                    refused = isinstance(exc, redis.exceptions.AuthenticationError)
                    if connected:
                        self._backoff.reset()
                    state = (
                        LinkState.FAILED
                        if refused or not ever_connected
                        else LinkState.RECONNECTING
                    )
                    delay = self._backoff.next_delay()
                    connected = False
                    log.info(
                        "%s %s: %s; retry in %.1f s", self._service, self._display, reason, delay
                    )
                    self._report(state, reason, delay)
                    await pause(delay, self._stopping)
                    continue
                failover = self._failover(client)
                if not connected or failover:
                    connected = ever_connected = True
                    self._backoff.reset()
                    reason = ""
                    self._client = client
                    self._report(LinkState.CONNECTED, failover_to=failover or self._failover_to)
                await pause(self._ping_interval, self._stopping)
        finally:
            self._client = None
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), self._timeout)

    def _failover(self, client: aioredis.Redis) -> str:
        """``host:port`` of the master a Sentinel client reached when it is not the one it
        reached before (a failover, seen even when redis-py's retries hid the lost
        connection from the ping), else ""."""
        address = getattr(client.connection_pool, "master_address", None)
        if self._settings.mode != "sentinel" or not address:
            return ""
        host, port = address
        now = f"{host}:{port}"
        before, self._master = self._master, now
        if before is None or before == now:
            return ""
        self._failover_to = now
        log.warning("%s failed over from %s to %s", self._service, before, now)
        return now

    async def close(self) -> None:
        """Stop pinging; ``run()`` closes the client and returns."""
        self._stopping.set()
        self._client = None

    def _describe(self, exc: BaseException, *, connecting: bool = False) -> str:
        return describe_redis_error(
            exc, self._target, self._password, self._settings.tls, connecting=connecting
        )

    def _report(
        self,
        state: LinkState,
        detail: str = "",
        retry_in_s: float | None = None,
        *,
        failover_to: str = "",
    ) -> None:
        self.status = LinkStatus(
            self._service, state, self._display, detail, retry_in_s, failover_to=failover_to
        )
        try:
            self._on_status(self.status)
        except Exception:
            log.exception("%s status callback failed", self._service)


def describe_redis_error(
    exc: BaseException,
    target: str,
    password: str | None = None,
    tls: TlsFiles | None = None,
    *,
    connecting: bool = False,
) -> str:
    """A short human reason why Redis at ``target`` (``host:port``) failed, without secrets;
    a TLS failure names the certificate setting at fault (``tls`` is the TLS in use,
    ``connecting``: ``exc`` ended a connection attempt)."""
    tls_failure = describe_tls_error(exc, "Redis", tls, target, connecting=connecting)
    if tls_failure is not None:
        text = tls_failure
    elif isinstance(exc, redis.exceptions.AuthenticationError):
        text = "authentication failed"
    elif isinstance(exc, redis.exceptions.ResponseError):
        text = f"Redis refused: {exc}"
    elif isinstance(exc, redis.exceptions.InvalidResponse):
        text = f"{target} does not speak Redis ({exc})"
    elif isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):
            text = describe_error(cause, target)
        elif isinstance(exc, redis.exceptions.TimeoutError):
            text = f"timed out talking to {target}"
        else:
            text = f"connection to {target} lost: {exc}".rstrip(": ")
    else:
        text = describe_error(exc, target)
    return scrub(text, password)
