"""The parker's AMQP link: pika on the running asyncio loop, deliveries read straight off the wire.

Why pika and not aio-pika/aiormq (measured with py-spy, issue 12): aiormq
spends per delivery a frame receiver round, pamqp's strict decoding and one
asyncio Task for the consumer callback. :class:`ParkLink` is a
:class:`~services.workbench.actions.pika_link.PikaLink` (the same connection,
opened the same way: TLS, several nodes, a clear line on failure) whose
connection reads the frames of a consuming channel itself: ``basic.deliver``,
its content header and body frames are cut from the socket buffer with
offsets (pika copies the rest of its buffer after every frame) and handed to
``on_delivery`` as one :class:`Delivery`, synchronously, no Task, no callback
lookup. Every other frame (``consume-ok``, ``qos-ok``, ``cancel-ok``, a
channel close, heartbeats) goes through pika as usual.

The content header's property bytes are kept as they came and never decoded
here (``Delivery.header.raw_properties``):
:func:`~services.workbench.codec.record_from_delivery` decodes them
tolerantly (:mod:`services.workbench.wire`), so an undecodable header (a
non-UTF-8 key, a timestamp past year 9999) parks like any other message
instead of closing the connection.

A delivery that comes after ``basic.cancel`` is still handed over (pika
would ``basic.reject`` it, which on a quorum queue spends delivery budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from typing import Any, Final

import pika.channel
import pika.exceptions
import pika.frame
import pika.spec

from services.workbench.actions.pika_link import (
    AmqpUnavailable,
    ChannelClosed,
    PikaLink,
    _CoalescingConnection,
    set_once,
)

_FRAME_HEAD: Final = struct.Struct(">BHL")
_METHOD_ID: Final = struct.Struct(">I")
_CONTENT_HEAD: Final = struct.Struct(">HHQ")
_DELIVERY_TAG: Final = struct.Struct(">Q")
_FRAME_END: Final = 0xCE
_METHOD, _HEADER, _BODY = 1, 2, 3
_BASIC_DELIVER: Final = pika.spec.Basic.Deliver.INDEX


class Delivery:
    """One delivered message as the parker needs it (``DeliveryLike`` of the codec)."""

    __slots__ = ("body", "delivery_tag", "exchange", "raw_properties", "redelivered", "routing_key")

    def __init__(
        self,
        delivery_tag: int,
        redelivered: bool,
        *,
        exchange: str,
        routing_key: str,
        raw_properties: bytes,
        body: bytes,
    ) -> None:
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.raw_properties = raw_properties
        self.body = body

    @property
    def header(self) -> Delivery:
        """The content header: this object, carrying ``raw_properties``."""
        return self


OnDelivery = Callable[[Delivery], None]


class _Assembler:
    """Builds deliveries of one channel from its frames (deliver, header, body...)."""

    __slots__ = ("_body", "_body_size", "_got", "_method", "_raw", "on_delivery")

    def __init__(self, on_delivery: OnDelivery) -> None:
        self.on_delivery = on_delivery
        self._method: tuple[int, bool, str, str] | None = None
        self._raw: bytes | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._got = 0

    def take(self, frame_type: int, data: bytes, start: int, stop: int) -> bool:
        """Consume the frame ``data[start:stop]`` (its payload); False: not ours, pika's."""
        if frame_type == _METHOD:
            if self._method is not None or _METHOD_ID.unpack_from(data, start)[0] != _BASIC_DELIVER:
                return False
            self._method = _deliver(data, start + 4)
            return True
        if self._method is None:
            return False
        if frame_type == _HEADER and self._raw is None:
            self._body_size = _CONTENT_HEAD.unpack_from(data, start)[2]
            self._raw = data[start + _CONTENT_HEAD.size : stop]
            if self._body_size == 0:
                self._complete(b"")
            return True
        if frame_type == _BODY and self._raw is not None:
            fragment = data[start:stop]
            self._got += len(fragment)
            if self._got >= self._body_size and not self._body:
                self._complete(fragment)
            else:
                self._body.append(fragment)
                if self._got >= self._body_size:
                    self._complete(b"".join(self._body))
            return True
        return False

    def _complete(self, body: bytes) -> None:
        method, raw = self._method, self._raw
        assert method is not None and raw is not None
        self._method = self._raw = None
        self._body = []
        self._body_size = self._got = 0
        tag, redelivered, exchange, routing_key = method
        self.on_delivery(
            Delivery(
                tag,
                redelivered,
                exchange=exchange,
                routing_key=routing_key,
                raw_properties=raw,
                body=body,
            )
        )


def _deliver(data: bytes, at: int) -> tuple[int, bool, str, str]:
    """(delivery tag, redelivered, exchange, routing key) of a ``basic.deliver``'s arguments."""
    at += 1 + data[at]  # consumer tag
    tag = _DELIVERY_TAG.unpack_from(data, at)[0]
    at += 8
    redelivered = bool(data[at] & 1)
    at += 1
    size = data[at]
    exchange = data[at + 1 : at + 1 + size].decode("utf-8", "replace")
    at += 1 + size
    size = data[at]
    routing_key = data[at + 1 : at + 1 + size].decode("utf-8", "replace")
    return tag, redelivered, exchange, routing_key


class _ParkingConnection(_CoalescingConnection):
    """A pika connection that assembles the deliveries of consuming channels itself
    (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.assemblers: dict[int, _Assembler] = {}
        super().__init__(*args, **kwargs)

    def _on_data_available(self, data_in: bytes) -> None:
        assemblers = self.assemblers
        if not assemblers:
            super()._on_data_available(data_in)
            return
        buffered: bytes = self._frame_buffer  # type: ignore[has-type]
        data = buffered + data_in if buffered else data_in
        size = len(data)
        offset = 0
        try:
            while size - offset >= 8:
                frame_type, channel, frame_size = _FRAME_HEAD.unpack_from(data, offset)
                end = offset + 8 + frame_size
                if end > size:
                    break
                if data[end - 1] != _FRAME_END:
                    raise pika.exceptions.InvalidFrameError("Invalid FRAME_END marker")
                assembler = assemblers.get(channel)
                start = offset
                offset = end
                if assembler is not None and assembler.take(frame_type, data, start + 7, end - 1):
                    self.frames_received += 1
                    continue
                _, frame_value = pika.frame.decode_frame(data[start:end])
                assert frame_value is not None
                self._process_frame(frame_value)
        finally:
            self._frame_buffer = data[offset:]
            self.bytes_received += offset


class ParkLink(PikaLink):
    """A :class:`PikaLink` whose channels consume for the parker (:meth:`consuming_channel`)."""

    connection_class = _ParkingConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("connection_name", "PayOps Console parker")
        super().__init__(*args, **kwargs)

    async def consuming_channel(self) -> ParkChannel:
        """A new channel of this connection (connecting first when needed)."""
        await self.connect()
        channel, closed = await self._new_channel()
        connection = self._connection
        assert isinstance(connection, _ParkingConnection)
        return ParkChannel(self, connection, channel, closed)


class ParkChannel:
    """One consuming channel of a :class:`ParkLink`: prefetch, consume, ack, cancel."""

    def __init__(
        self,
        link: ParkLink,
        connection: _ParkingConnection,
        channel: pika.channel.Channel,
        closed: asyncio.Future[BaseException],
    ) -> None:
        self._link = link
        self._connection = connection
        self._channel = channel
        self.closed = closed
        """Set with the reason when the channel (or its connection) closes."""
        closed.add_done_callback(lambda _f: connection.assemblers.pop(channel.channel_number, None))

    @property
    def is_closed(self) -> bool:
        return self.closed.done() or not self._channel.is_open

    def error(self, what: str) -> Exception:
        """The error to raise for a closed channel: why it closed, or what was going on."""
        if self.closed.done():
            reason = self.closed.result()
            if not self._link.is_open:
                return AmqpUnavailable(f"connection to RabbitMQ lost while {what}: {reason}")
            return ChannelClosed(reason)
        return ChannelClosed(pika.exceptions.ChannelClosed(0, f"channel closed while {what}"))

    async def _call(self, start: Callable[[asyncio.Future[Any]], None], what: str) -> Any:
        if self.is_closed:
            raise self.error(what)
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        start(result)
        return await self._link._wait(result, self.closed, what)

    async def qos(self, prefetch: int) -> None:
        """``basic.qos``; its ``qos-ok`` also proves the broker processed every earlier
        method of the channel (acks included)."""
        await self._call(
            lambda done: self._channel.basic_qos(
                prefetch_count=prefetch, callback=lambda _f: set_once(done, None)
            ),
            "setting the prefetch",
        )

    def confirm_processed(self, prefetch: int) -> asyncio.Future[None]:
        """Send ``basic.qos`` now, without waiting: the future is done at its ``qos-ok``,
        which proves the broker processed every earlier method of the channel (acks
        included). It stays pending when the channel closes first."""
        if self.is_closed:
            raise self.error("confirming the acks")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._channel.basic_qos(prefetch_count=prefetch, callback=lambda _f: set_once(done, None))
        return done

    async def consume(self, queue: str, on_delivery: OnDelivery) -> str:
        """Start consuming ``queue`` with manual acks; returns the consumer tag."""
        self._connection.assemblers[self._channel.channel_number] = _Assembler(on_delivery)

        def unexpected(*_args: Any) -> None:  # every delivery goes to the assembler
            raise AssertionError("a delivery reached pika's consumer callback")

        def start(done: asyncio.Future[Any]) -> None:
            self._channel.basic_consume(
                queue, unexpected, auto_ack=False, callback=lambda frame: set_once(done, frame)
            )

        frame = await self._call(start, f"consuming '{queue}'")
        return str(frame.method.consumer_tag)

    def ack(self, delivery_tag: int, *, multiple: bool = True) -> None:
        """``basic.ack``; raises when the channel is closed."""
        if self.is_closed:
            raise self.error("acknowledging")
        self._channel.basic_ack(delivery_tag, multiple=multiple)

    async def cancel(self, consumer_tag: str) -> None:
        """``basic.cancel``, waiting for ``cancel-ok``; deliveries read before it are still
        handed over."""
        await self._call(
            lambda done: self._channel.basic_cancel(
                consumer_tag, callback=lambda _f: set_once(done, None)
            ),
            "cancelling the consumer",
        )

    async def message_count(self, queue: str) -> int:
        """Messages ready in ``queue`` (passive declare on this channel)."""
        frame = await self._call(
            lambda done: self._channel.queue_declare(
                queue, passive=True, callback=lambda f: set_once(done, f)
            ),
            f"checking queue '{queue}'",
        )
        return int(frame.method.message_count)

    async def close(self) -> None:
        """Close the channel (the broker requeues what it holds unacked)."""
        if self._channel.is_open:
            with contextlib.suppress(Exception):
                self._channel.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), 5.0)
