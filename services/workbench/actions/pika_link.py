"""A pika connection on the running asyncio loop: open and close it, and ask the broker.

:class:`PikaLink` is what :class:`~services.workbench.actions.publisher.ActionPublisher`
is built on: pika's asyncio adapter (:class:`AsyncioConnection`, on
``loop.add_reader``/``add_writer``, so it runs on any asyncio loop, qasync's
``QEventLoop`` included), channels opened and awaited, one-off RPCs on
throwaway channels (a 404 closes that channel, not the publisher's), and the
passive checks and wait queues a retry needs. Failures come out as
:class:`AmqpUnavailable` (cannot reach or lost the broker) or
:class:`PublisherError` (the broker refused), in one clear line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import pika
import pika.channel
import pika.connection
import pika.exceptions
from pika.adapters.asyncio_connection import AsyncioConnection

from services.links.amqp_connect import pika_parameters
from services.links.endpoints import AmqpTarget, as_endpoint, node_target
from services.links.pika_asyncio import open_channel, open_first_node, start_connection
from services.links.tls import describe_tls_error, describe_tls_setup_error
from services.links.urls import redact_url

log = logging.getLogger(__name__)

NOT_FOUND: Final = 404
DELAY_QUEUE_PREFIX: Final = "payops.delay."
DELAY_EXPIRES_MARGIN_S: Final = 3600
"""A wait queue is deleted by the broker when unused for its TTL plus this long."""
MAX_DELAY_S: Final = 7 * 24 * 3600
QUORUM_DELAY_SUFFIX: Final = ".quorum"
"""Ends a quorum wait queue's name (a classic one of the same delay may still exist)."""


class AmqpUnavailable(ConnectionError):
    """RabbitMQ could not be reached, or the connection was refused or lost."""


class AmqpLoginRefused(AmqpUnavailable):
    """RabbitMQ was reached and refused the login (wrong user or password)."""


class PublisherError(Exception):
    """The broker refused a declaration or an operation (the message says why)."""


class _CoalescingConnection(AsyncioConnection):  # type: ignore[misc]
    """pika hands each frame to the socket with a ``send()`` of its own - three per
    message. While coalescing, the frames are gathered and written as one: a window of
    publishes becomes a few large writes. Order is kept: every frame of the connection
    passes through here, and coalescing only spans code that does not yield."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._coalesced: list[bytes] | None = None
        self._publish_heads: dict[tuple[int, str, str], bytes] = {}
        super().__init__(*args, **kwargs)

    def publish_encoded(
        self, channel_number: int, exchange: str, routing_key: str, encoded: bytes, body: bytes
    ) -> None:
        """``basic.publish`` with ``mandatory`` of ``body`` with properties already encoded
        (flags and property list, as ``BasicProperties.encode`` gives them): the very
        frames pika's ``Channel.basic_publish`` writes (method, content header, body split
        at the negotiated frame size), built here without pika's frame objects - the
        method frame is the same for every publish to one exchange and routing key.
        The caller checks that the channel is open."""
        key = (channel_number, exchange, routing_key)
        head = self._publish_heads.get(key)
        if head is None:
            head = _publish_method_frame(channel_number, exchange, routing_key)
            if len(self._publish_heads) > 1000:
                self._publish_heads.clear()
            self._publish_heads[key] = head
        length = len(body)
        frames = [
            head,
            _FRAME_HEAD.pack(2, channel_number, 12 + len(encoded))
            + _CONTENT_HEAD.pack(60, length)
            + encoded
            + _FRAME_END,
        ]
        size = self._body_max_length
        for start in range(0, length, size):
            piece = body[start : start + size]
            frames.append(_FRAME_HEAD.pack(3, channel_number, len(piece)) + piece + _FRAME_END)
        pending = self._coalesced
        if pending is None:
            self._output_marshaled_frames(frames)
            return
        self.frames_sent += len(frames)  # as _output_marshaled_frames counts them
        self.bytes_sent += sum(map(len, frames))
        pending += frames

    def _output_marshaled_frames(self, marshaled_frames: Sequence[bytes]) -> None:
        pending = self._coalesced
        if pending is None:
            super()._output_marshaled_frames(marshaled_frames)
            return
        for frame in marshaled_frames:
            self.bytes_sent += len(frame)
            self.frames_sent += 1
        pending.extend(marshaled_frames)

    def coalesce(self) -> None:
        if self._coalesced is None:
            self._coalesced = []

    def flush(self) -> None:
        pending, self._coalesced = self._coalesced, None
        if pending and self.is_open:
            self._adapter_emit_data(b"".join(pending))


_FRAME_HEAD: Final = struct.Struct(">BHI")
_CONTENT_HEAD: Final = struct.Struct(">HxxQ")  # class basic, weight 0, body size
_FRAME_END: Final = b"\xce"
_BASIC_PUBLISH: Final = struct.Struct(">HHH")  # class basic, method publish, ticket 0


def _publish_method_frame(channel_number: int, exchange: str, routing_key: str) -> bytes:
    """The method frame of ``basic.publish`` with ``mandatory`` (and not ``immediate``)."""
    exchange_b, key_b = exchange.encode("utf-8"), routing_key.encode("utf-8")
    if len(exchange_b) > 255 or len(key_b) > 255:
        raise ValueError("an exchange name or routing key is at most 255 bytes")
    payload = (
        _BASIC_PUBLISH.pack(60, 40, 0)
        + bytes((len(exchange_b),))
        + exchange_b
        + bytes((len(key_b),))
        + key_b
        + b"\x01"
    )
    return _FRAME_HEAD.pack(1, channel_number, len(payload)) + payload + _FRAME_END


class PikaLink:
    """One pika connection (see the module docstring); reconnects on the next call
    after it was lost. Subclasses open their own channels in :meth:`connect` and
    hear of a lost connection in :meth:`_connection_lost`."""

    connection_class: type[_CoalescingConnection] = _CoalescingConnection
    """What :meth:`connect` opens (the parker's link reads deliveries itself)."""

    def __init__(
        self,
        amqp: AmqpTarget,
        *,
        connect_timeout_s: float = 10.0,
        connection_name: str = "PayOps Console actions",
    ) -> None:
        self._endpoint = as_endpoint(amqp)
        self._url = self._endpoint.url
        self.display_url = self._endpoint.display_url
        self.connect_timeout_s = connect_timeout_s
        self.connection_name = connection_name
        self._connection: _CoalescingConnection | None = None
        self._closing = False
        self._lock = asyncio.Lock()
        self._delay_declared: dict[str, float] = {}
        self.quorum_wait_queues = len(self._endpoint.urls) > 1
        """Whether a retry's wait queue is a quorum queue: on a cluster (the profile
        names more than one node), so a delayed retry outlives the node holding it."""
        self._close_waiter: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ connection

    @property
    def username(self) -> str:
        """The user the connection logs in as (RabbitMQ validates ``user_id`` against it)."""
        parts = urlsplit(self._url)
        return unquote(parts.username) if parts.username else "guest"

    @property
    def is_open(self) -> bool:
        return self._connection is not None and self._connection.is_open

    async def connect(self) -> None:
        """Open the connection (no-op when open).

        Raises :class:`AmqpUnavailable` when the broker cannot be reached or
        refuses the login.
        """
        if self.is_open:
            return
        async with self._lock:
            if not self.is_open:
                await self._open_connection()

    async def close(self) -> None:
        """Close the connection (:meth:`_connection_lost` hears of it)."""
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        try:
            if connection.is_open:
                done = asyncio.get_running_loop().create_future()
                self._close_waiter = done
                connection.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done, 5.0)
        finally:
            self._connection = None
            self._closing = False

    def _connection_lost(self, reason: BaseException) -> None:
        """The connection closed (``reason``), whether asked to or not."""

    async def _open_connection(self) -> None:
        """Connect to the first node that answers (the last node's failure if none does)."""
        self._url = await open_first_node(
            self._endpoint.urls,
            self._open_node,
            failures=AmqpUnavailable,
            fatal=(AmqpLoginRefused,),
        )

    async def _open_node(self, url: str) -> None:
        display = redact_url(url)
        try:
            params = pika_parameters(self._endpoint, url)
        except OSError as exc:  # ssl.SSLError included: a TLS file that cannot be used
            tls = self._endpoint.tls
            assert tls is not None  # only amqps:// loads TLS files
            raise AmqpUnavailable(
                describe_tls_setup_error(exc, "RabbitMQ", tls, node_target(url))
            ) from None
        except Exception as exc:  # pika raises ValueError and friends for bad URLs
            raise AmqpUnavailable(f"bad AMQP URL {display}: {exc}") from None

        def open_error(error: BaseException) -> BaseException:
            kind = AmqpLoginRefused if _login_refused(error) else AmqpUnavailable
            why = describe_tls_error(
                _cause(error), "RabbitMQ", self._endpoint.tls, node_target(url), connecting=True
            )
            return kind(why or f"cannot connect to RabbitMQ at {display}: {_describe(error)}")

        connection, opened = start_connection(
            self.connection_class,
            params,
            name=self.connection_name,
            timeout_s=self.connect_timeout_s,
            open_error=open_error,
            on_close=self._on_connection_closed,
        )
        self._connection = connection
        try:
            await asyncio.wait_for(opened, self.connect_timeout_s + 10)
        except TimeoutError:
            self._connection = None
            with contextlib.suppress(Exception):
                connection.close()
            raise AmqpUnavailable(f"cannot connect to RabbitMQ at {display}: timed out") from None
        except AmqpUnavailable:
            self._connection = None
            raise

    def _on_connection_closed(self, reason: BaseException) -> None:
        self._connection_lost(reason)
        self._connection = None
        waiter = self._close_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not self._closing:
            log.warning(
                "%s: connection to %s closed: %s", self.connection_name, self.display_url, reason
            )

    async def _new_channel(self) -> tuple[pika.channel.Channel, asyncio.Future[BaseException]]:
        """A fresh channel, and a future set when it closes (with the reason)."""
        connection = self._connection
        if connection is None or not connection.is_open:
            raise AmqpUnavailable(f"not connected to RabbitMQ at {self.display_url}")
        opened, closed = open_channel(connection)
        try:
            channel = await self._wait(opened, closed, "opening a channel")
        except ChannelClosed as exc:
            raise PublisherError(f"channel closed while opening: {exc}") from None
        finally:
            opened.cancel()
        return channel, closed

    async def _wait(
        self,
        future: asyncio.Future[Any],
        closed: asyncio.Future[BaseException],
        what: str,
        timeout: float | None = None,
    ) -> Any:
        """Wait for ``future``; raise when the channel closes first or time runs out."""
        done, _ = await asyncio.wait(
            {future, closed},
            timeout=timeout or self.connect_timeout_s + 10,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if future in done:
            return future.result()
        if closed in done:
            reason = closed.result()
            if not self.is_open:
                raise AmqpUnavailable(f"connection to RabbitMQ lost while {what}: {reason}")
            raise ChannelClosed(reason)
        raise AmqpUnavailable(f"RabbitMQ did not answer in time while {what}")

    # ------------------------------------------------------------------ declarations

    async def _on_throwaway_channel(
        self, action: Callable[[pika.channel.Channel, asyncio.Future[Any]], None], what: str
    ) -> Any:
        """Run one RPC on a channel of its own (a 404 closes that channel, not ours)."""
        await self.connect()
        channel, closed = await self._new_channel()
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        action(channel, result)
        try:
            return await self._wait(result, closed, what)
        finally:
            if channel.is_open:
                with contextlib.suppress(Exception):
                    channel.close()

    async def queue_depth(self, name: str) -> int | None:
        """Messages ready in queue ``name`` (passive declare), None when there is no such queue."""

        def declare(channel: pika.channel.Channel, result: asyncio.Future[Any]) -> None:
            channel.queue_declare(
                name,
                passive=True,
                callback=lambda frame: set_once(result, int(frame.method.message_count)),
            )

        try:
            depth: int = await self._on_throwaway_channel(declare, f"checking queue '{name}'")
        except ChannelClosed as closed:
            if closed.code == NOT_FOUND:
                return None
            raise PublisherError(f"cannot check queue '{name}': {closed.reason}") from None
        return depth

    async def queue_exists(self, name: str) -> bool:
        """Whether queue ``name`` exists (passive declare on a throwaway channel)."""
        return await self.queue_depth(name) is not None

    async def exchange_exists(self, name: str) -> bool:
        """Whether exchange ``name`` exists (the default exchange always does)."""
        if name == "":
            return True

        def declare(channel: pika.channel.Channel, result: asyncio.Future[Any]) -> None:
            channel.exchange_declare(name, passive=True, callback=lambda _f: set_once(result, True))

        try:
            await self._on_throwaway_channel(declare, f"checking exchange '{name}'")
        except ChannelClosed as closed:
            if closed.code == NOT_FOUND:
                return False
            raise PublisherError(f"cannot check exchange '{name}': {closed.reason}") from None
        return True

    def delay_queue_for(self, target: str, delay_s: int) -> str:
        """The name of the wait queue :meth:`declare_delay_queue` declares."""
        return delay_queue_name(target, delay_s, quorum=self.quorum_wait_queues)

    async def declare_delay_queue(self, target: str, delay_s: int) -> str:
        """The TTL wait queue that holds messages ``delay_s`` seconds, then dead-letters
        them into queue ``target`` through the default exchange; declared when needed.

        ``payops.delay.<target>.<N>s``, durable, ``x-message-ttl`` N s,
        ``x-dead-letter-exchange`` "", ``x-dead-letter-routing-key`` target and
        ``x-expires`` N s + 1 h (the broker removes it once unused - with what
        it holds, so every window of a retry declares it again, which restarts
        that clock). No plugin needed.

        With :attr:`quorum_wait_queues` it is a quorum queue (``...<N>s.quorum``)
        that dead-letters ``at-least-once`` (with ``x-overflow`` ``reject-publish``, which
        that strategy needs; RabbitMQ 3.10+): a message leaves it only once the target
        queue has confirmed it, and it waits on while a node holding it is down.
        """
        name = self.delay_queue_for(target, delay_s)
        now = time.monotonic()
        if now - self._delay_declared.get(name, -1e9) < 60:
            return name
        arguments: dict[str, Any] = {
            "x-message-ttl": delay_s * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": target,
            "x-expires": (delay_s + DELAY_EXPIRES_MARGIN_S) * 1000,
        }
        if self.quorum_wait_queues:
            arguments["x-queue-type"] = "quorum"
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"

        def declare(channel: pika.channel.Channel, result: asyncio.Future[Any]) -> None:
            channel.queue_declare(
                name,
                durable=True,
                arguments=arguments,
                callback=lambda _f: set_once(result, True),
            )

        try:
            await self._on_throwaway_channel(declare, f"declaring wait queue '{name}'")
        except ChannelClosed as closed:
            raise PublisherError(
                f"cannot declare the wait queue '{name}': {closed.reason}"
            ) from None
        self._delay_declared[name] = now
        return name


def delay_queue_name(target: str, delay_s: int, *, quorum: bool = False) -> str:
    """``payops.delay.<target>.<N>s`` (``...<N>s.quorum`` for a quorum wait queue; a
    queue name holds at most 255 bytes)."""
    if isinstance(delay_s, bool) or not isinstance(delay_s, int) or delay_s < 1:
        raise ValueError(f"a delay is a whole number of seconds >= 1, not {delay_s!r}")
    if delay_s > MAX_DELAY_S:
        raise ValueError(f"a delay of more than {MAX_DELAY_S // 86400} days is not supported")
    if not target:
        raise ValueError("a wait queue needs a target queue")
    name = f"{DELAY_QUEUE_PREFIX}{target}.{delay_s}s{QUORUM_DELAY_SUFFIX if quorum else ''}"
    if len(name.encode("utf-8")) > 255:
        raise ValueError(f"queue name '{target}' is too long for a wait queue name")
    return name


def _describe(error: BaseException) -> str:
    """pika's connection errors in words (its workflow error hides the cause)."""
    error = _cause(error)
    text = str(error).strip()
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    return text or type(error).__name__


def _login_refused(error: BaseException) -> bool:
    """Whether the broker was reached and refused the login (ACCESS_REFUSED, 403)."""
    cause = _cause(error)
    if isinstance(
        cause, pika.exceptions.AuthenticationError | pika.exceptions.ProbableAuthenticationError
    ):
        return True
    return getattr(cause, "reply_code", None) == 403


def _cause(error: BaseException) -> BaseException:
    """The error inside pika's connection workflow errors."""
    if not getattr(error, "exceptions", None) and error.args:
        first = error.args[0]  # AMQPConnectionError(AMQPConnectionWorkflowFailed(...))
        if isinstance(first, BaseException):
            error = first
    causes = getattr(error, "exceptions", None)
    if causes:
        error = causes[-1]
        inner = getattr(error, "exception", None)  # AMQPConnectorSocketConnectError
        if isinstance(inner, BaseException):
            error = inner
    return error


def set_once(future: asyncio.Future[Any], value: Any) -> None:
    """Set ``future``'s result unless it is done (pika may call back twice)."""
    if not future.done():
        future.set_result(value)


class ChannelClosed(Exception):
    """A channel the broker closed (its reply code and text)."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__(str(reason))
        self.code: int | None = getattr(reason, "reply_code", None)
        self.reason = getattr(reason, "reply_text", None) or str(reason)
