"""The parker: drains a dead-letter queue into the parking store, acking only what Redis holds.

Why park at all (design brief, data flow 2): a dead letter held unacked while
a person decides is redelivered when the channel hits ``consumer_timeout``,
and on a quorum queue every redelivery counts toward ``delivery-limit``. So
the parker consumes with manual acks, writes each message whole into Redis
in batches (one pipelined round trip per batch) and acks a batch with one
``basic.ack(multiple=True)`` only after Redis accepted all of it.

Crash safety: a message is acked only after it is in Redis; a batch that was
parked but not acked (crash, ``kill -9``) is redelivered with
``redelivered=True`` and recognised by its fingerprint, so it is not parked
twice. When Redis fails, nothing more is acked: the unacked deliveries are
handed back to the broker (``basic.nack(requeue=True)``), the error is
reported and :meth:`Parker.run` raises :class:`ParkingFailed`.

It works below aio-pika's ``IncomingMessage`` wrapper, on the aiormq channel,
to keep per-message cost low. Give each parker a channel of its own: it
acks with ``multiple=True``, which covers every earlier delivery of the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import aio_pika.abc
import aiormq.abc
from aiormq.exceptions import ChannelInvalidStateError
from redis.exceptions import RedisError

from services.config import FieldPaths
from services.workbench import amqp_raw
from services.workbench.codec import record_from_delivery
from services.workbench.model import ParkResult
from services.workbench.store import ParkingStore, ParkItem, new_entry_id

QUIET_S: Final = 0.3
"""With ``once=True``: how long no delivery may arrive before the queue is
checked for emptiness."""

_RETRY_DELAYS_S: Final = (0.1, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class ParkerStats:
    """How far a parker got.

    ``received`` deliveries, of which ``parked`` became new entries and
    ``already_parked`` were recognised (redeliveries after a crash);
    ``acked`` were acknowledged to the broker. ``errors`` counts failed Redis
    attempts, ``last_error`` describes the latest.
    """

    dlq: str
    received: int = 0
    parked: int = 0
    already_parked: int = 0
    acked: int = 0
    batches: int = 0
    errors: int = 0
    last_error: str | None = None
    running: bool = False
    elapsed_s: float = 0.0


class ParkingFailed(Exception):
    """Redis did not accept a batch; the batch was handed back to the broker."""

    def __init__(self, message: str, stats: ParkerStats) -> None:
        super().__init__(message)
        self.stats = stats


class Parker:
    """Parks every message of one dead-letter queue (see the module docstring)."""

    def __init__(
        self,
        store: ParkingStore,
        dlq: str,
        fields: FieldPaths,
        *,
        on_progress: Callable[[ParkerStats], None] | None = None,
        batch_size: int = 500,
        batch_wait_s: float = 0.02,
        prefetch: int = 2000,
    ) -> None:
        if batch_size < 1 or prefetch < 1:
            raise ValueError("batch_size and prefetch must be at least 1")
        self.store = store
        self.dlq = dlq
        self.fields = fields
        self.on_progress = on_progress
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.prefetch = prefetch
        self.quiet_s = QUIET_S
        self._buffer: list[aiormq.abc.DeliveredMessage] = []
        self._unacked: list[aiormq.abc.DeliveredMessage] = []
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._last_delivery = 0.0
        self._started = 0.0
        self._received = 0
        self._parked = 0
        self._already = 0
        self._acked = 0
        self._batches = 0
        self._errors = 0
        self._last_error: str | None = None
        self._running = False

    # ------------------------------------------------------------------ public

    @property
    def stats(self) -> ParkerStats:
        """A snapshot of the counters."""
        return ParkerStats(
            dlq=self.dlq,
            received=self._received,
            parked=self._parked,
            already_parked=self._already,
            acked=self._acked,
            batches=self._batches,
            errors=self._errors,
            last_error=self._last_error,
            running=self._running,
            elapsed_s=time.monotonic() - self._started if self._started else 0.0,
        )

    def request_stop(self) -> None:
        """Stop consuming; what was delivered is still parked and acked, then run() returns."""
        self._stopping = True
        self._wakeup.set()

    async def run(self, channel: aio_pika.abc.AbstractChannel, once: bool = False) -> ParkerStats:
        """Consume the DLQ until :meth:`request_stop` (or, with ``once``, until it is empty).

        Raises :class:`ParkingFailed` when Redis keeps refusing a batch (after
        a few quick retries); AMQP errors (queue missing, channel closed:
        ``ChannelInvalidStateError``) propagate. Either way nothing unparked
        was acked, and what was delivered but not acked is handed back
        (``basic.nack`` with requeue) when the channel is still open.
        """
        amqp_raw.install()  # undecodable properties park instead of closing the connection
        amqp = await channel.get_underlay_channel()
        await amqp.basic_qos(prefetch_count=self.prefetch)
        self._stopping = False
        self._started = time.monotonic()
        self._last_delivery = self._started
        self._running = True
        consume = await amqp.basic_consume(self.dlq, self._on_message, no_ack=False)
        consumer_tag = consume.consumer_tag
        consuming = True
        try:
            while True:
                if amqp.is_closed:
                    raise ChannelInvalidStateError(f"the channel consuming {self.dlq} closed")
                if not self._buffer:
                    if self._stopping:
                        break
                    if consuming and once and await self._drained(amqp):
                        break
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self.quiet_s)
                    continue
                if self._stopping and consuming:
                    await self._cancel(amqp, consumer_tag)
                    consuming = False
                if len(self._buffer) < self.batch_size and self.batch_wait_s > 0:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self.batch_wait_s)
                batch = self._buffer[: self.batch_size]
                del self._buffer[: self.batch_size]
                await self._park_batch(amqp, batch)
            if consuming:
                await self._cancel(amqp, consumer_tag)
                consuming = False
            while self._buffer:  # delivered before the broker confirmed the cancel
                batch = self._buffer[: self.batch_size]
                del self._buffer[: self.batch_size]
                await self._park_batch(amqp, batch)
        except BaseException:
            if consuming:
                with contextlib.suppress(Exception):
                    await self._cancel(amqp, consumer_tag)
            await self._hand_back(amqp)
            raise
        finally:
            self._running = False
            self._report()
        return self.stats

    # ------------------------------------------------------------------ internals

    async def _on_message(self, message: aiormq.abc.DeliveredMessage) -> None:
        buffer = self._buffer
        buffer.append(message)
        self._received += 1
        self._last_delivery = time.monotonic()
        if len(buffer) == 1 or len(buffer) >= self.batch_size:
            self._wakeup.set()

    async def _drained(self, amqp: aiormq.abc.AbstractChannel) -> bool:
        """``once``: nothing delivered for a quiet period and no message ready."""
        if time.monotonic() - self._last_delivery < self.quiet_s:
            return False
        declared = await amqp.queue_declare(self.dlq, passive=True)
        return not declared.message_count and not self._buffer

    async def _cancel(self, amqp: aiormq.abc.AbstractChannel, consumer_tag: str | None) -> None:
        if consumer_tag is None or amqp.is_closed:
            return
        await amqp.basic_cancel(consumer_tag)
        # Deliveries read before the CancelOk are handed to tasks; let them run.
        for _ in range(3):
            await asyncio.sleep(0)

    async def _park_batch(
        self, amqp: aiormq.abc.AbstractChannel, batch: list[aiormq.abc.DeliveredMessage]
    ) -> None:
        items = [
            ParkItem(
                record_from_delivery(message),
                redelivered=bool(message.redelivered),
                entry_id=new_entry_id(),
            )
            for message in batch
        ]
        max_tag = max(message.delivery_tag or 0 for message in batch)
        self._unacked = batch  # handed back by run() if anything below fails
        results = await self._park_with_retries(items)
        created = sum(1 for result in results if result.created)
        self._parked += created
        self._already += len(results) - created
        await amqp.basic_ack(max_tag, multiple=True)
        self._unacked = []
        self._acked += len(batch)
        self._batches += 1
        self._report()

    async def _park_with_retries(self, items: list[ParkItem]) -> list[ParkResult]:
        # Retrying is safe: the items keep their entry ids, so whatever an
        # earlier attempt stored is recognised and not parked twice.
        for delay in (*_RETRY_DELAYS_S, None):
            try:
                return await self.store.park_many(self.dlq, items, self.fields)
            except (RedisError, OSError) as exc:
                self._errors += 1
                self._last_error = f"Redis did not accept a batch of {len(items)}: {exc!r}"
                self._report()
                if delay is None:
                    raise ParkingFailed(self._last_error, self.stats) from exc
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _hand_back(self, amqp: aiormq.abc.AbstractChannel) -> None:
        """Return every delivery not yet acked to the queue (none of them was parked
        for sure; those that were are recognised when redelivered)."""
        tags = [m.delivery_tag or 0 for m in (*self._unacked, *self._buffer)]
        self._unacked = []
        self._buffer.clear()
        if not tags or amqp.is_closed:
            return
        with contextlib.suppress(Exception):
            await amqp.basic_nack(max(tags), multiple=True, requeue=True)

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)
