"""Deliveries read straight off the wire on a pika connection (the parker's and the tap's).

pika turns every frame into objects (a ``Basic.Deliver``, a ``BasicProperties``
with its properties decoded, a ``frame.Method``/``Header``/``Body``) and looks
up the consumer callback for each delivery; profiled on the tap and the parker
(issue 12), that was most of their CPU. :class:`FrameReadingConnection` reads
the frames of a consuming channel itself: ``basic.deliver``, its content
header and body frames are cut from the socket buffer with offsets (pika
copies the rest of its buffer after every frame) and handed to the channel's
``on_delivery`` as one :class:`Delivery`, synchronously, no Task, no callback
lookup. Every other frame (``consume-ok``, ``qos-ok``, ``cancel-ok``, a
channel close, heartbeats) goes through pika as usual.

The content header's property bytes are kept as they came and never decoded
here (``Delivery.raw_properties``): :mod:`services.links.amqp_wire` decodes
them tolerantly, so an undecodable header (a non-UTF-8 key, a timestamp past
year 9999) is handled like any other message instead of closing the
connection. A delivery that comes after ``basic.cancel`` is still handed over
(pika would ``basic.reject`` it, which on a quorum queue spends delivery
budget).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any, Final

import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.asyncio_connection import AsyncioConnection

_FRAME_HEAD: Final = struct.Struct(">BHL")
_METHOD_ID: Final = struct.Struct(">I")
_CONTENT_HEAD: Final = struct.Struct(">HHQ")
_DELIVERY_TAG: Final = struct.Struct(">Q")
_FRAME_END: Final = 0xCE
_METHOD, _HEADER, _BODY = 1, 2, 3
_BASIC_DELIVER: Final = pika.spec.Basic.Deliver.INDEX


class Delivery:
    """One delivered message: the ``basic.deliver`` arguments, raw properties, body."""

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


class DeliveryAssembler:
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


class FrameReadingConnection(AsyncioConnection):  # type: ignore[misc]
    """A pika connection that assembles the deliveries of consuming channels itself
    (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.assemblers: dict[int, DeliveryAssembler] = {}
        super().__init__(*args, **kwargs)

    def read_deliveries(
        self, channel_number: int, on_delivery: OnDelivery, closed: asyncio.Future[Any]
    ) -> None:
        """Hand the deliveries of channel ``channel_number`` to ``on_delivery`` from now
        on, until ``closed`` (the channel's close future) is done."""
        assembler = self.assemblers[channel_number] = DeliveryAssembler(on_delivery)

        def forget(_closed: asyncio.Future[Any]) -> None:
            if self.assemblers.get(channel_number) is assembler:
                del self.assemblers[channel_number]

        closed.add_done_callback(forget)

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


def refuse_delivery(*_args: Any) -> None:
    """The consumer callback given to pika: every delivery goes to the assembler."""
    raise AssertionError("a delivery reached pika's consumer callback")
