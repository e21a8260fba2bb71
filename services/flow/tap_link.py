"""The tap's own AMQP connection: pika's asyncio adapter, deliveries read off the wire.

Measured on the tap's hot path (``bench_ingest``, ``bench_console_cpu``): with
aiormq, 75-80 % of the live-flow process's CPU under load went to per-delivery
library work (three frames through asyncio queues and one Task per delivery).
pika decodes the frames of a whole read in one loop and calls the consumer
callback directly, so the tap consumes on a pika connection of its own
(:class:`TapLink`), on the child's asyncio loop (``AsyncioConnection``). Even
so, about half of the child's samples were pika's per-delivery work (frame
objects, ``Basic.Deliver``, decoded ``BasicProperties``, the callback lookup):
the consuming channel's frames are read by
:class:`~services.links.pika_frames.FrameReadingConnection` (as the parker's
are), and each delivery is handed to the tap synchronously as one
:class:`~services.links.pika_frames.Delivery` (body, routing key, delivery tag,
raw property bytes), no pika object per delivery.

The tap queue is exclusive, so everything that touches it - declare, bind,
consume, the depth polls - goes through this connection; so do the drop
probes (a publish is a few bytes written, no Task). The channels' broker
errors come out as :class:`AmqpChannelError` (code and the broker's text), a
lost connection as :class:`ConnectionError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

import pika
import pika.channel
import pika.connection
import pika.exceptions
import pika.frame
import pika.spec

from services.links.amqp_connect import pika_parameters
from services.links.endpoints import AmqpEndpoint
from services.links.pika_asyncio import open_channel, open_first_node, start_connection
from services.links.pika_frames import FrameReadingConnection, OnDelivery, refuse_delivery
from services.links.urls import redact_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 10.0
RPC_TIMEOUT_S: Final = 30.0
CONNECTION_NAME: Final = "PayOps Console tap"
READ_BYTES_PER_EVENT: Final = 8192
"""How much pika reads (and dispatches) per readable event; its default is 100 KiB.
A smaller bite hands the loop back every few dozen deliveries, so the drop probes go
out evenly in time even while the tap is behind: with 100 KiB bites they went out in
lumps and the drop estimate read 1.6-3x the real drops (0.7-0.9x with 8 KiB)."""


class AmqpChannelError(Exception):
    """The broker closed a channel: ``code`` (404, 403, 405, 406, ...) and its text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text or f"channel closed by the broker ({code})")
        self.code = code
        self.text = text


def _as_error(reason: BaseException) -> BaseException:
    """A channel's or connection's close reason as the exception the tap raises."""
    if isinstance(reason, pika.exceptions.ChannelClosedByBroker):
        return AmqpChannelError(reason.reply_code, reason.reply_text)
    if isinstance(reason, AmqpChannelError | ConnectionError):
        return reason
    return ConnectionError(f"the tap's RabbitMQ connection closed: {reason!r}")


class TapChannel:
    """One pika channel, its close reason (``closed``) and awaitable RPCs."""

    def __init__(
        self,
        connection: FrameReadingConnection,
        channel: pika.channel.Channel,
        closed: asyncio.Future[BaseException],
    ) -> None:
        self._connection = connection
        self.channel = channel
        self.closed = closed

    @property
    def is_closed(self) -> bool:
        return self.closed.done() or not self.channel.is_open

    def close_reason(self) -> BaseException:
        """Why the channel closed, as an exception (a broker error when it sent one)."""
        if self.closed.done():
            return _as_error(self.closed.result())
        return ConnectionError("the tap's channel closed")

    async def _call(self, start: Callable[[Callable[[Any], None]], None], what: str) -> Any:
        if self.is_closed:
            raise self.close_reason()
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()

        def on_reply(frame: Any) -> None:
            if not reply.done():
                reply.set_result(frame)

        start(on_reply)
        try:
            done, _ = await asyncio.wait(
                (reply, self.closed), timeout=RPC_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            reply.cancel()
        if reply in done and not reply.cancelled():
            return reply.result()
        if self.closed.done():
            raise self.close_reason()
        raise TimeoutError(f"RabbitMQ did not answer {what} in {RPC_TIMEOUT_S:.0f} s")

    async def queue_declare(
        self,
        queue: str,
        *,
        passive: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> int:
        """Declare ``queue`` (or check it, ``passive``); returns its message count."""
        frame: pika.frame.Method = await self._call(
            lambda done: self.channel.queue_declare(
                queue,
                passive=passive,
                exclusive=exclusive,
                auto_delete=auto_delete,
                arguments=arguments,
                callback=done,
            ),
            f"queue.declare {queue}",
        )
        return int(frame.method.message_count or 0)

    async def queue_bind(self, queue: str, exchange: str, routing_key: str) -> None:
        await self._call(
            lambda done: self.channel.queue_bind(queue, exchange, routing_key, callback=done),
            f"queue.bind {queue} to {exchange}",
        )

    async def consume(self, queue: str, on_delivery: OnDelivery) -> None:
        """Consume ``queue`` without acks; ``on_delivery`` is called for each delivery,
        straight from the frame reader."""
        self._connection.read_deliveries(self.channel.channel_number, on_delivery, self.closed)
        await self._call(
            lambda done: self.channel.basic_consume(
                queue, refuse_delivery, auto_ack=True, callback=done
            ),
            f"basic.consume {queue}",
        )

    async def close(self) -> None:
        """Close the channel (quietly; a bounded wait)."""
        if self.is_closed:
            return
        with contextlib.suppress(Exception):
            self.channel.close()
            await asyncio.wait_for(asyncio.shield(self.closed), 5.0)


class TapLink:
    """The tap's pika connection (see the module docstring).

    ``closed`` is set (with the reason) when the connection closes, asked to or
    not; ``blocked`` tells whether the broker blocks publishers (a resource
    alarm), and :meth:`unblocked` waits until it does not.
    """

    def __init__(self, endpoint: AmqpEndpoint) -> None:
        self._endpoint = endpoint
        self._connection: FrameReadingConnection | None = None
        self.closed: asyncio.Future[BaseException] | None = None
        self.blocked = False
        self._unblocked = asyncio.Event()
        self._unblocked.set()

    @property
    def is_closed(self) -> bool:
        return self.closed is None or self.closed.done()

    async def open(self) -> None:
        """Connect to the first node that answers; ConnectionError when none does."""
        await open_first_node(self._endpoint.urls, self._open_node)

    async def _open_node(self, url: str) -> None:
        display = redact_url(url)
        try:
            params = pika_parameters(self._endpoint, url)
        except Exception as exc:
            raise ConnectionError(f"the tap cannot use the AMQP URL {display}: {exc}") from None
        closed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

        def on_close(reason: BaseException) -> None:
            if not closed.done():
                closed.set_result(reason)
            self._unblocked.set()  # nobody waits for a connection that is gone

        connection, opened = start_connection(
            FrameReadingConnection,
            params,
            name=CONNECTION_NAME,
            timeout_s=CONNECT_TIMEOUT_S,
            open_error=lambda error: ConnectionError(
                f"the tap cannot connect to RabbitMQ at {display}: {error!r}"
            ),
            on_close=on_close,
        )
        connection.add_on_connection_blocked_callback(self._on_blocked)
        connection.add_on_connection_unblocked_callback(self._on_unblocked)
        try:
            await asyncio.wait_for(opened, CONNECT_TIMEOUT_S + 10)
        except BaseException:
            with contextlib.suppress(Exception):
                connection.close()
            raise
        transport = getattr(connection, "_transport", None)
        if transport is not None and hasattr(transport, "_MAX_CONSUME_BYTES"):
            transport._MAX_CONSUME_BYTES = READ_BYTES_PER_EVENT
        else:
            log.warning("pika's transport changed: the tap reads in pika's default bites")
        self._connection, self.closed = connection, closed

    def _on_blocked(self, _connection: Any, _frame: Any) -> None:
        self.blocked = True
        self._unblocked.clear()

    def _on_unblocked(self, _connection: Any, _frame: Any) -> None:
        self.blocked = False
        self._unblocked.set()

    async def unblocked(self) -> None:
        """Return once the broker does not block publishers (at once, mostly)."""
        if self.blocked:
            await self._unblocked.wait()

    def close_reason(self) -> BaseException:
        """Why the connection closed, as a ConnectionError."""
        reason = self.closed.result() if self.closed is not None and self.closed.done() else None
        return ConnectionError(f"the tap's RabbitMQ connection closed: {reason!r}")

    async def channel(self) -> TapChannel:
        """A fresh channel (ConnectionError when the connection is gone)."""
        connection = self._connection
        if connection is None or self.is_closed or not connection.is_open:
            raise self.close_reason()
        opened, closed = open_channel(connection)
        assert self.closed is not None
        done, _ = await asyncio.wait(
            (opened, closed, self.closed),
            timeout=RPC_TIMEOUT_S,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if opened in done:
            return TapChannel(connection, opened.result(), closed)
        opened.cancel()
        if closed.done():
            raise _as_error(closed.result())
        raise self.close_reason()

    async def close(self) -> None:
        """Close the connection (its channels and the exclusive tap queue with it)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if connection.is_open:
            with contextlib.suppress(Exception):
                connection.close()
        if self.closed is not None and not self.closed.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.closed), 5.0)
