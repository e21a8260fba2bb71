"""pika's asyncio adapter as the links use it: a connection and its channels, opened and awaited.

The tap's link (``services.flow.tap_link``) and the actions' and parker's link
(``services.workbench.actions.pika_link``) open their pika connections on the
running asyncio loop (``AsyncioConnection``, on ``loop.add_reader``/``add_writer``)
the same way; each turns failures into its own errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import pika
import pika.channel
import pika.connection
from pika.adapters.asyncio_connection import AsyncioConnection

# pika narrates every connection step at INFO and logs each refused connection as a
# series of ERRORs; the links report failures themselves, in one clear line.
if logging.getLogger("pika").level == logging.NOTSET:
    logging.getLogger("pika").setLevel(logging.CRITICAL)

_Connection = TypeVar("_Connection", bound=AsyncioConnection)


async def open_first_node(
    urls: Sequence[str],
    open_node: Callable[[str], Awaitable[None]],
    *,
    failures: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    fatal: tuple[type[BaseException], ...] = (),
) -> str:
    """``open_node`` each of ``urls`` in turn until one opens; that URL. A ``fatal``
    error ends the search at once, one of ``failures`` moves on to the next node;
    when none opens, the last node's failure is raised."""
    failure: BaseException | None = None
    for url in urls:
        try:
            await open_node(url)
        except fatal:
            raise
        except failures as exc:
            failure = exc
        else:
            return url
    assert failure is not None  # an endpoint has at least one URL
    raise failure


def start_connection(
    connection_class: type[_Connection],
    params: pika.connection.Parameters,
    *,
    name: str,
    timeout_s: float,
    open_error: Callable[[BaseException], BaseException],
    on_close: Callable[[BaseException], None],
) -> tuple[_Connection, asyncio.Future[None]]:
    """Start connecting with ``params`` (one attempt, ``timeout_s`` for the socket and
    the handshake, the connection ``name`` shown in the broker's management UI).

    Returns the connection and a future set once it is open, or with the exception
    ``open_error`` makes of pika's failure; ``on_close(reason)`` is called when the
    connection closes after that, asked to or not.
    """
    params.client_properties = {"connection_name": name}
    params.socket_timeout = timeout_s
    params.stack_timeout = timeout_s + 5
    params.connection_attempts = 1
    opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_open(_connection: pika.connection.Connection) -> None:
        if not opened.done():
            opened.set_result(None)

    def on_open_error(_connection: pika.connection.Connection, error: BaseException) -> None:
        if not opened.done():
            opened.set_exception(open_error(error))

    def on_closed(_connection: pika.connection.Connection, reason: BaseException) -> None:
        on_close(reason)

    connection = connection_class(
        params,
        on_open_callback=on_open,
        on_open_error_callback=on_open_error,
        on_close_callback=on_closed,
        custom_ioloop=asyncio.get_running_loop(),
    )
    return connection, opened


def open_channel(
    connection: AsyncioConnection,
) -> tuple[asyncio.Future[pika.channel.Channel], asyncio.Future[BaseException]]:
    """Ask ``connection`` for a channel: a future set with it once open, and one set with
    the reason when it closes (also when it closes before it opened)."""
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[pika.channel.Channel] = loop.create_future()
    closed: asyncio.Future[BaseException] = loop.create_future()

    def on_open(channel: pika.channel.Channel) -> None:
        if not opened.done():
            opened.set_result(channel)

    def on_close(_channel: pika.channel.Channel, reason: BaseException) -> None:
        if not closed.done():
            closed.set_result(reason)

    connection.channel(on_open_callback=on_open).add_on_close_callback(on_close)
    return opened, closed
