"""The parker's AMQP link: pika on the running asyncio loop, deliveries read straight off the wire.

Why pika and not aio-pika/aiormq (measured with py-spy, issue 12): aiormq
spends per delivery a frame receiver round, pamqp's strict decoding and one
asyncio Task for the consumer callback. :class:`ParkLink` is a
:class:`~services.workbench.actions.pika_link.PikaLink` (the same connection,
opened the same way: TLS, several nodes, a clear line on failure) whose
connection reads the deliveries of a consuming channel itself
(:class:`~services.links.pika_frames.FrameReadingConnection`): each is handed
to ``on_delivery`` as one :class:`~services.links.pika_frames.Delivery`,
synchronously, its property bytes undecoded
(:func:`~services.workbench.codec.record_from_delivery` decodes them
tolerantly), so an undecodable header parks like any other message instead
of closing the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pika.channel
import pika.exceptions

from services.links.pika_frames import (
    FrameReadingConnection,
    OnDelivery,
    refuse_delivery,
)
from services.workbench.actions.pika_link import (
    AmqpUnavailable,
    ChannelClosed,
    PikaLink,
    _CoalescingConnection,
    set_once,
)


class _ParkingConnection(FrameReadingConnection, _CoalescingConnection):
    """The parker's connection: deliveries read off the wire, publishes coalesced."""


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
        self._connection.read_deliveries(self._channel.channel_number, on_delivery, self.closed)

        def start(done: asyncio.Future[Any]) -> None:
            self._channel.basic_consume(
                queue, refuse_delivery, auto_ack=False, callback=lambda frame: set_once(done, frame)
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
