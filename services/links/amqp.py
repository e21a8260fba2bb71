"""One RabbitMQ connection that keeps coming back, reporting its state as it goes."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiormq.exceptions
from aio_pika.abc import AbstractConnection
from pamqp.common import FieldTable

from services.links.amqp_connect import connect_aio_pika
from services.links.backoff import DEFAULT_BACKOFF_S, Backoff, pause
from services.links.close import close_quietly
from services.links.endpoints import AmqpTarget, as_endpoint, node_target
from services.links.status import LinkState, LinkStatus
from services.links.tls import describe_tls_error
from services.links.urls import scrub, url_password

log = logging.getLogger(__name__)

# A session that lasted this long resets the back-off to its first step.
STABLE_SESSION_S = 30.0
CLOSE_TIMEOUT_S = 5.0

StatusCallback = Callable[[LinkStatus], None]
SessionCallback = Callable[[AbstractConnection], Awaitable[None]]


class AmqpLink:
    """Connect, run a session on the connection, and reconnect with back-off, forever.

    The connection carries ``connection_name`` (shown by the broker's tools).
    ``on_connected(connection)`` runs the session: it may return at once (the
    session then lasts until the connection closes) or keep running; it is
    cancelled when the connection closes. If it raises, the connection is closed
    and a new one made. States reported through ``on_status``: CONNECTING before
    each attempt (with the previous failure as detail), CONNECTED, then FAILED
    while no connection has been made yet or the broker refused the login, and
    RECONNECTING after an established connection was lost. The password never
    appears in a status or a log line.
    """

    def __init__(
        self,
        amqp: AmqpTarget,
        on_status: StatusCallback,
        on_connected: SessionCallback,
        service: str = "RabbitMQ",
        backoff: Sequence[float] = DEFAULT_BACKOFF_S,
        *,
        connect_timeout_s: float = 5.0,
        connection_name: str = "PayOps Console",
    ) -> None:
        self._backoff = Backoff(backoff)
        self._endpoint = as_endpoint(amqp)
        self._on_status = on_status
        self._on_connected = on_connected
        self._service = service
        self._timeout = connect_timeout_s
        self._client_properties: FieldTable = {"connection_name": connection_name}
        self._display = self._endpoint.display_url
        self._target = node_target(self._endpoint.url)
        self._password = url_password(self._endpoint.url)
        self._connection: AbstractConnection | None = None
        self._stopping = asyncio.Event()
        self.status = LinkStatus(service, LinkState.CONNECTING, self._display)

    @property
    def connection(self) -> AbstractConnection | None:
        """The open connection, or None between connections."""
        return self._connection

    async def run(self) -> None:
        """Keep a connection up until ``close()``; only CancelledError escapes."""
        self._backoff.reset()
        ever_connected = False
        reason = ""
        while not self._stopping.is_set():
            self._report(LinkState.CONNECTING, reason)
            try:
                connection = await connect_aio_pika(
                    self._endpoint,
                    timeout=self._timeout,
                    client_properties=self._client_properties,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = self._describe(exc, connecting=True)
                refused = isinstance(exc, aiormq.exceptions.ProbableAuthenticationError)
                state = (
                    LinkState.FAILED if refused or not ever_connected else LinkState.RECONNECTING
                )
                delay = self._backoff.next_delay()
                log.info("%s %s: %s; retry in %.1f s", self._service, self._display, reason, delay)
                self._report(state, reason, delay)
                await pause(delay, self._stopping)
                continue

            ever_connected = True
            started = time.monotonic()
            self._connection = connection
            self._report(LinkState.CONNECTED)
            try:
                ended = await self._session(connection)
            finally:
                self._connection = None
                await close_quietly(connection, CLOSE_TIMEOUT_S)
            if self._stopping.is_set():
                break
            reason = self._describe(ended) if ended is not None else "connection closed"
            if time.monotonic() - started >= STABLE_SESSION_S:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            log.warning(
                "%s %s lost: %s; retry in %.1f s", self._service, self._display, reason, delay
            )
            self._report(LinkState.RECONNECTING, reason, delay)
            await pause(delay, self._stopping)

    async def close(self) -> None:
        """Stop reconnecting and close the current connection."""
        self._stopping.set()
        connection, self._connection = self._connection, None
        if connection is not None:
            await close_quietly(connection, CLOSE_TIMEOUT_S)

    async def _session(self, connection: AbstractConnection) -> BaseException | None:
        """Run ``on_connected``; return why the session ended (None: closed cleanly)."""
        lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

        def on_close(_sender: object, exc: BaseException | None = None, /) -> None:
            if not lost.done():
                lost.set_result(exc)

        connection.close_callbacks.add(on_close)
        session: asyncio.Future[None] = asyncio.ensure_future(self._on_connected(connection))
        try:
            waiters: set[asyncio.Future[Any]] = {session, lost}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if session.done() and not lost.done():
                if session.cancelled():
                    return asyncio.CancelledError("session cancelled")
                error = session.exception()
                if error is not None:
                    log.warning("%s session failed", self._service, exc_info=error)
                    return error
                return await lost
            return lost.result()
        finally:
            if not session.done():
                session.cancel()
            await asyncio.gather(session, return_exceptions=True)
            connection.close_callbacks.discard(on_close)

    def _describe(self, exc: BaseException, *, connecting: bool = False) -> str:
        text = describe_tls_error(
            exc, "RabbitMQ", self._endpoint.tls, self._target, connecting=connecting
        )
        return scrub(text or describe_error(exc, self._target), self._password)

    def _report(self, state: LinkState, detail: str = "", retry_in_s: float | None = None) -> None:
        self.status = LinkStatus(self._service, state, self._display, detail, retry_in_s)
        try:
            self._on_status(self.status)
        except Exception:
            log.exception("%s status callback failed", self._service)


def describe_error(exc: BaseException, target: str) -> str:
    """A short human reason for a failed or lost connection to ``target``."""
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return describe_error(exc.exceptions[0], target)
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
        return "authentication failed (ACCESS_REFUSED)"
    if isinstance(exc, aiormq.exceptions.ConnectionClosed):
        text = exc.args[1] if len(exc.args) > 1 else exc.args[0] if exc.args else ""
        return f"connection closed by the broker: {text}".rstrip(": ")
    cause = exc.__cause__
    if isinstance(exc, aiormq.exceptions.AMQPConnectionError) and isinstance(cause, Exception):
        return describe_error(cause, target)
    if isinstance(exc, aiormq.exceptions.InvalidFrameError) and "Connection.Close" in str(exc):
        return f"{target} refused the connection (unknown virtual host?)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused to {target}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {target} ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return f"timed out connecting to {target}"
    if isinstance(exc, asyncio.IncompleteReadError):
        return f"connection to {target} closed unexpectedly"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return f"connection to {target} was reset"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({target})"
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
