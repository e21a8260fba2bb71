"""A stage of the demo flow: a consumer on one queue, its pool of workers, where it publishes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue


@dataclass(frozen=True)
class Outlet:
    """The exchanges one channel publishes to (``direct``: the default exchange)."""

    payments: AbstractExchange
    events: AbstractExchange
    direct: AbstractExchange


Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Stage:
    """A consumer on one queue with a pool of workers (prefetch = pool size)."""

    def __init__(self, name: str, queue: AbstractQueue, handler: Handler, workers: int) -> None:
        self.name = name
        self._queue = queue
        self._handler = handler
        self._workers = workers
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._consumer_tag: str | None = None
        self.busy = 0  # delivered and not yet handled

    async def start_consuming(self) -> None:
        if self._consumer_tag is None:
            self._consumer_tag = await self._queue.consume(self._on_delivery)

    async def stop_consuming(self) -> None:
        tag, self._consumer_tag = self._consumer_tag, None
        if tag is not None:
            await self._queue.cancel(tag)

    def spawn_workers(self, group: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        return [
            group.create_task(self._work(), name=f"simulator-{self.name}-{i}")
            for i in range(self._workers)
        ]

    async def _on_delivery(self, message: AbstractIncomingMessage) -> None:
        self.busy += 1
        self._inbox.put_nowait(message)

    async def _work(self) -> None:
        while True:
            message = await self._inbox.get()
            try:
                await self._handler(message)
            finally:
                self.busy -= 1
