"""Closing AMQP channels and connections on the way out, whatever state they are in."""

from __future__ import annotations

import asyncio
import contextlib
import inspect

from aio_pika.abc import AbstractChannel, AbstractConnection

CLOSE_TIMEOUT_S = 2.0


async def close_quietly(
    resource: AbstractChannel | AbstractConnection | None, timeout_s: float = CLOSE_TIMEOUT_S
) -> None:
    """Close a channel or connection, ignoring errors; bounded in time.

    Safe in ``finally`` blocks of cancelled tasks: if the caller is cancelled
    before the close starts, the close coroutine is discarded without a
    "never awaited" warning.
    """
    if resource is None or resource.is_closed:
        return
    closing = resource.close()
    try:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(closing, timeout_s)
    finally:
        if inspect.iscoroutine(closing):
            closing.close()
