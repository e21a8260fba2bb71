"""Helpers shared by the benchmarks: fast pipelined publishing and event-loop lag."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import aio_pika
import numpy as np
import orjson

STATUSES = ("authorized", "captured", "declined", "failed", "requested")


def event_bodies(n: int) -> Iterable[tuple[str, bytes]]:
    """``n`` (routing key, JSON body) pairs shaped like the demo's status events."""
    now_ms = int(time.time() * 1000)
    for i in range(n):
        status = STATUSES[i % len(STATUSES)]
        body = orjson.dumps(
            {
                "payment_id": f"pay_{i:016x}",
                "merchant": "Acme Books",
                "amount": "42.50",
                "currency": "EUR",
                "status": status,
                "created_at": now_ms,
                "event_at": now_ms,
            }
        )
        yield f"payment.{status}", body


async def publish_events(amqp_url: str, exchange: str, n: int, window: int = 2000) -> float:
    """Publish ``n`` demo events to ``exchange`` with confirms, pipelined; returns seconds."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False)
        started = time.perf_counter()
        pending: list[asyncio.Future[object]] = []
        for routing_key, body in event_bodies(n):
            message = aio_pika.Message(body, content_type="application/json")
            pending.append(asyncio.ensure_future(target.publish(message, routing_key)))
            if len(pending) >= window:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await connection.close()


class LoopLagProbe:
    """Measures how late the event loop wakes a sleeper that asks for ``interval_s``."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            before = clock()
            await asyncio.sleep(self.interval_s)
            self.samples.append(clock() - before - self.interval_s)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def percentile_ms(self, q: float) -> float:
        if not self.samples:
            return float("nan")
        return float(np.percentile(np.asarray(self.samples), q) * 1000)


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` every 5 ms until true; raise TimeoutError naming ``what``."""
    deadline = time.perf_counter() + timeout_s
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.005)


# Merchant names for the seeded payments of the benchmarks.
MERCHANTS = (
    "Acme Books",
    "Northwind Travel",
    "Globex Retail",
    "Initech Software",
    "Umbrella Pharmacy",
    "Stark Electronics",
    "Wayne Outfitters",
    "Hooli Cloud",
    "Vandelay Imports",
    "Soylent Foods",
    "Oceanic Airlines",
    "Monarch Hotels",
)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_stat(pid: int) -> tuple[int, int, float] | None:
    """(ppid, session id, user+system CPU seconds) of ``pid``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    ppid, session = int(fields[1]), int(fields[3])
    return ppid, session, (int(fields[11]) + int(fields[12])) / _CLK_TCK
