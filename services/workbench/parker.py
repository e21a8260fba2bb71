"""The parker: drains a dead-letter queue into the parking store, acking only what Redis holds.

Why park at all (design brief, data flow 2): a dead letter held unacked while
a person decides is redelivered when the channel hits ``consumer_timeout``,
and on a quorum queue every redelivery counts toward ``delivery-limit``. So
the parker consumes with manual acks, writes each message whole into Redis
in batches (one pipelined round trip per batch) and acks a batch with one
``basic.ack(multiple=True)`` only after Redis accepted all of it.

Recognising a redelivery. Content cannot tell a redelivery from a twin (a
producer's retry dead-letters the same body, properties and ``x-death``
twice), so the park script writes, atomically with each new entry, one
"parked, ack not yet confirmed" mark for its fingerprint (a count per
fingerprint in a hash of the batch, listed in ``P:{D}:unacked``). After the
batch's ``basic.ack`` the parker makes a round trip on the same channel
(``basic.qos``: a channel's methods are processed in order, so its ``QosOk``
proves the broker processed the ack; it is answered while the next batch is
read, and awaited before that batch is parked) and then deletes the batch's
marks, beside the next batch's park round trip. A delivery flagged
``redelivered`` consumes ONE mark of its fingerprint and is acked as already
parked; with no mark left it is parked as new. It never takes a mark of its
own parker session (one channel): those belong to deliveries the session
still holds, so they cannot be this one. A fresh delivery never looks at
marks. Crash points (parker ``kill -9``,
connection or broker loss):

- before or during the park script: nothing of the batch is in Redis (the
  script is atomic), the deliveries come back and are parked as new;
- after the script, before the broker processed the ack: each delivery comes
  back ``redelivered`` and finds the mark its own parking wrote: acked, not
  parked again. Twins parked together left one mark each, so they come back
  as two recognised deliveries; a twin that was not parked yet finds no mark
  left for it and is parked;
- after the ack was processed, before the round trip answered (a window of
  one broker round trip): the deliveries are gone for good but their marks
  stay. A later *redelivered* identical twin would consume such a stale mark
  and not be stored. The parker never clears marks whose ack it could not
  confirm, because clearing them when the ack was lost would park the
  redelivered messages twice; the residual case needs a crash inside that
  window *and* an identical twin that is itself redelivered;
- after the round trip, before the marks are cleared: as above; the parker
  keeps the ids and clears them with its next batch, so only a crash or a
  Redis outage in between leaves stale marks;
- a retried batch (same entry ids) after a Redis error: items already written
  are recognised by their id (status 3) and keep their one mark; they were
  parked by this batch, so they count as parked and get its follow-up
  (outcomes, failure groups, cause re-checks) once, on the attempt that succeeds.

Entries parked by earlier versions have no marks; they keep working (the
fingerprint index ``P:{D}:fp`` is still written). A delivery an earlier
version parked but had not acked when it stopped is parked a second time
after the upgrade (a duplicate, never a loss).

Never spending delivery budget on our own failures. When Redis refuses a
batch (down, out of memory, read-only replica, ``WAITAOF`` not confirmed) the
parker neither acks nor hands anything back: it holds every unacked delivery
untouched, keeps its consumer (the prefetch limit stops deliveries once it
is full, and the broker keeps the rest of the queue), retries Redis with
back-off (:class:`~services.links.backoff.Backoff`) and reports "holding N
dead letters: Redis unavailable since …", then parks what it holds and goes
on. It does not ``basic.cancel``: a quorum queue returns what it had already
sent towards a cancelled consumer, and RabbitMQ 3.x counts that return toward
``x-delivery-limit`` (seen in tests/faults/test_parking_redis_outage.py).
Only when the channel itself goes (broker restart, ``consumer_timeout``, the
parker stopped or given up) do the held deliveries return to the queue - by
the channel closing, never by ``basic.nack``.

It consumes on a channel of its own of a :class:`~services.workbench.park_link.ParkLink`
(pika, deliveries read straight off the wire and handed over synchronously: no
Task per delivery; chosen by measurement, see the README's Benchmarks) and
acks with ``multiple=True``, which covers every earlier delivery of the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError

from services.alerts.new_groups import NewFailureGroups
from services.collector import RelaxedWhileBusy
from services.config import FieldPaths
from services.links.backoff import Backoff
from services.links.pika_frames import Delivery
from services.outcomes.tracker import OutcomeRules, OutcomeTracker
from services.time_range import format_local_time
from services.workbench.cause import Cause, FailureLookup
from services.workbench.codec import record_from_delivery
from services.workbench.model import ParkResult
from services.workbench.park_link import ParkChannel, ParkLink
from services.workbench.store import ParkingStore, ParkItem, new_entry_ids, new_session_id

QUIET_S: Final = 0.3
"""With ``once=True``: how long no delivery may arrive before the queue is
checked for emptiness."""

REDIS_BACKOFF_S: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Waits between attempts to park a held batch while Redis refuses it."""

CAUSE_RECHECK_S: Final = (2.0, 10.0, 30.0)
"""After parking an entry whose payment had no failure event on the flow yet, how long
after the parking its cause is looked up again (the flow's event may come after the
dead letter: the tap and the recorder run beside the parker)."""

CANCEL_TIMEOUT_S: Final = 2.0
"""How long stopping waits for the broker's ``basic.cancel-ok`` or channel close; a
broker that does not answer gets the connection closed under it instead (what was
delivered and not acked goes back to the queue either way)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ParkerStats:
    """How far a parker got.

    ``received`` deliveries, of which ``parked`` became new entries and
    ``already_parked`` were recognised (redeliveries after a crash);
    ``acked`` were acknowledged to the broker. ``errors`` counts failed Redis
    attempts, ``last_error`` describes the latest. ``holding`` deliveries
    are kept unacked while Redis is unavailable (since ``redis_down_since``,
    epoch seconds).
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
    holding: int = 0
    redis_down_since: float | None = None

    @property
    def problem(self) -> str | None:
        """What an operator should know now (None: parking runs normally)."""
        if self.redis_down_since is None or not self.running:
            return None
        since = format_local_time(self.redis_down_since, date=False)
        return (
            f"{self.dlq}: holding {self.holding:,} dead letters: Redis unavailable since"
            f" {since} ({self.last_error}); nothing is acked or handed back meanwhile"
        )


class ParkingFailed(Exception):
    """Redis did not accept a batch for ``give_up_after_s``; the deliveries go back to
    the queue when the channel closes (never with ``basic.nack``)."""

    def __init__(self, message: str, stats: ParkerStats) -> None:
        super().__init__(message)
        self.stats = stats


class Parker:
    """Parks every message of one dead-letter queue (see the module docstring).

    ``ack_after``: "write", "aof" or "replica" (see
    :mod:`services.workbench.durability`). ``give_up_after_s``: how long a
    Redis outage may last before :meth:`run` raises :class:`ParkingFailed`
    (None: hold and retry until stopped).

    Causes (:mod:`services.workbench.cause`): with ``flow_failures`` each batch's
    payments are looked up on the flow's record when parked, and an entry whose
    payment had no failure event yet is looked up again ``cause_recheck_s`` after
    parking (:meth:`ParkingStore.set_cause`). ``new_groups`` counts the failure
    groups of what is parked and records ``new_failure_group`` alerts. Neither
    holds parking up: their errors are logged.
    """

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
        ack_after: str = "write",
        give_up_after_s: float | None = None,
        redis_backoff: Sequence[float] = REDIS_BACKOFF_S,
        flow_failures: FailureLookup | None = None,
        cause_recheck_s: Sequence[float] = CAUSE_RECHECK_S,
        new_groups: NewFailureGroups | None = None,
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
        self.ack_after = ack_after
        self.give_up_after_s = give_up_after_s
        self.quiet_s = QUIET_S
        self._backoff = Backoff(redis_backoff)
        self._buffer: list[Delivery] = []
        self._unacked: list[Delivery] = []
        self._to_clear: list[int] = []
        self._confirming: list[tuple[asyncio.Future[None], int]] = []
        """(the ack's proof, batch number) of acked batches, oldest first"""
        self._settling: asyncio.Future[None] | None = None
        """the last batch's outcomes, failure groups and cause re-checks being settled"""
        self._session = new_session_id()
        self._batch_no = 0
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._consumer_tag: str | None = None
        self._last_delivery = 0.0
        self._started = 0.0
        self._received = 0
        self._parked = 0
        self._already = 0
        self._acked = 0
        self._batches = 0
        self._errors = 0
        self._last_error: str | None = None
        self._down_since: float | None = None
        self._running = False
        self.flow_failures = flow_failures
        self.cause_recheck_s = tuple(sorted(cause_recheck_s))
        self.new_groups = new_groups
        self._outcomes = OutcomeTracker(store.redis, store.prefix, OutcomeRules())
        self._rechecks: list[tuple[float, int, list[tuple[str, str]]]] = []
        """(due on the monotonic clock, index into cause_recheck_s, [(entry, payment)])"""

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
            holding=len(self._unacked) + len(self._buffer),
            redis_down_since=self._down_since,
        )

    def request_stop(self) -> None:
        """Stop consuming; what was delivered is still parked and acked, then run() returns.

        While Redis is unavailable the held deliveries cannot be parked: run()
        then returns at once and they go back to the queue with the channel.
        """
        self._stopping = True
        self._stop.set()
        self._wakeup.set()

    async def run(
        self, link: ParkLink, once: bool = False, on_consuming: Callable[[], None] | None = None
    ) -> ParkerStats:
        """Consume the DLQ on a new channel of ``link`` until :meth:`request_stop` (or, with
        ``once``, until it is empty); the channel is closed when run() returns.
        ``on_consuming`` is called once RabbitMQ has accepted the consumer (the queue
        exists and may be read).

        Redis failures are held out (see the module docstring); after
        ``give_up_after_s`` of them :class:`ParkingFailed` is raised. AMQP
        errors (queue missing, channel closed:
        :class:`~services.workbench.actions.pika_link.ChannelClosed`; connection lost:
        :class:`~services.workbench.actions.pika_link.AmqpUnavailable`) propagate. What
        was delivered and not parked goes back to the queue by the channel closing, and
        nothing unparked was acked. A parker may run again on a new link (a reconnect).
        """
        amqp = await link.consuming_channel()
        try:
            return await self._run_on(amqp, once, on_consuming)
        finally:
            await amqp.close()

    async def _run_on(
        self, amqp: ParkChannel, once: bool, on_consuming: Callable[[], None] | None
    ) -> ParkerStats:
        amqp.closed.add_done_callback(lambda _f: self._wakeup.set())
        self._buffer = []
        self._unacked = []
        self._to_clear = []
        self._confirming = []
        self._settling = None
        self._consumer_tag = None
        self._session = new_session_id()  # this channel's deliveries
        self._batch_no = 0
        await amqp.qos(self.prefetch)
        if self._stopping:
            return self.stats
        self._started = self._started or time.monotonic()
        self._last_delivery = time.monotonic()
        self._running = True
        await self._consume(amqp)
        if on_consuming is not None:
            on_consuming()
        collector = RelaxedWhileBusy()  # relaxed while there is a backlog to park
        try:
            while True:
                collector.busy(bool(self._buffer))
                if amqp.is_closed:
                    raise amqp.error(f"consuming {self.dlq}")
                if self._rechecks:
                    await self._recheck_causes()
                if not self._buffer:
                    if self._stopping:
                        break
                    if once and await self._drained(amqp):
                        break
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self.quiet_s)
                    continue
                if self._stopping:
                    await self._cancel(amqp)
                if len(self._buffer) < self.batch_size and self.batch_wait_s > 0:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self.batch_wait_s)
                await self._park_next_batch(amqp)
            await self._cancel(amqp)
            while self._buffer:  # delivered before the broker confirmed the cancel
                await self._park_next_batch(amqp)
            await self._await_previous(amqp)
            await self._clear_marks()
        except BaseException:
            await self._finish_settling(failing=True)
            with contextlib.suppress(Exception):
                await self._cancel(amqp)
            if self._unacked or self._buffer:
                await self._give_back(amqp)
            raise
        finally:
            collector.busy(False)
            self._running = False
            self._report()
        return self.stats

    # ------------------------------------------------------------------ internals

    def _on_delivery(self, message: Delivery) -> None:
        buffer = self._buffer
        buffer.append(message)
        self._received += 1
        self._last_delivery = time.monotonic()
        if len(buffer) == 1 or len(buffer) >= self.batch_size:
            self._wakeup.set()

    async def _consume(self, amqp: ParkChannel) -> None:
        self._consumer_tag = await amqp.consume(self.dlq, self._on_delivery)

    async def _drained(self, amqp: ParkChannel) -> bool:
        """``once``: nothing delivered for a quiet period and no message ready."""
        if time.monotonic() - self._last_delivery < self.quiet_s:
            return False
        ready = await amqp.message_count(self.dlq)
        return not ready and not self._buffer

    async def _cancel(self, amqp: ParkChannel) -> None:
        """Stop deliveries (``basic.cancel``); what was delivered stays unacked with us
        (deliveries read before the ``cancel-ok`` are in the buffer when it returns)."""
        consumer_tag, self._consumer_tag = self._consumer_tag, None
        if consumer_tag is None or amqp.is_closed:
            return
        async with asyncio.timeout(CANCEL_TIMEOUT_S):
            await amqp.cancel(consumer_tag)

    async def _park_next_batch(self, amqp: ParkChannel) -> None:
        batch = self._buffer[: self.batch_size]
        items = [
            ParkItem(record_from_delivery(message), message.redelivered, entry_id)
            for message, entry_id in zip(batch, new_entry_ids(len(batch)), strict=True)
        ]
        self._unacked = batch
        del self._buffer[: self.batch_size]
        self._batch_no += 1  # this batch's marks hash, kept across retries
        await self._await_previous(amqp)  # answered while this batch was read
        clearing = asyncio.ensure_future(self._clear_marks())  # beside the park round trip
        try:
            results = await self._park_holding(amqp, items)
        finally:
            await clearing
        amqp.ack(max(message.delivery_tag for message in batch), multiple=True)
        self._unacked = []
        parked = sum(1 for result in results if result.parked_by_this_item)
        self._parked += parked
        self._already += len(results) - parked
        self._acked += len(batch)
        self._batches += 1
        # A reply on the same channel proves the broker processed the ack (see the
        # module docstring): only then may the batch's marks go. It and the outcomes'
        # round trip are awaited before the next batch is parked: they overlap reading it.
        self._confirming.append((amqp.confirm_processed(self.prefetch), self._batch_no))
        self._settling = asyncio.ensure_future(self._after_parking(results))
        self._report()

    async def _await_previous(self, amqp: ParkChannel) -> None:
        """Wait for the previous batch's outcomes and (bounded) for the broker's proof of
        the acks sent; the batches proven go to ``_to_clear``."""
        await self._finish_settling()
        if self._confirming and not amqp.is_closed:
            last = self._confirming[-1][0]  # qos-oks come in order: the last proves all
            waiters: set[asyncio.Future[Any]] = {last, amqp.closed}
            await asyncio.wait(
                waiters, timeout=CANCEL_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        while self._confirming and self._confirming[0][0].done():
            self._to_clear.append(self._confirming.pop(0)[1])

    async def _finish_settling(self, *, failing: bool = False) -> None:
        """Let the previous batch's outcomes finish (for a bounded time when ``failing``)."""
        settling, self._settling = self._settling, None
        if settling is None:
            return
        if not failing:
            await settling
        else:
            await asyncio.wait({settling}, timeout=CANCEL_TIMEOUT_S)
            if not settling.done():
                settling.cancel()
            elif not settling.cancelled() and settling.exception() is not None:
                log.warning("%s: after parking: %s", self.dlq, settling.exception())

    async def _park_holding(self, amqp: ParkChannel, items: list[ParkItem]) -> list[ParkResult]:
        """Park ``items``; while Redis refuses, hold every delivery and retry with back-off.

        Retrying is safe: the items keep their entry ids, so whatever an
        earlier attempt stored is recognised and not parked twice (its result reads
        ``by_earlier_attempt``: parked by this batch all the same).
        """
        while True:
            try:
                results = await self.store.park_many(
                    self.dlq,
                    items,
                    self.fields,
                    ack_after=self.ack_after,
                    session=self._session,
                    batch=self._batch_no,
                    flow_failures=self.flow_failures,
                )
            except (RedisError, OSError) as exc:
                await self._hold(amqp, len(items), exc)
                continue
            if self._down_since is not None:
                self._down_since = None
                self._last_error = None
                self._backoff.reset()
            return results

    async def _after_parking(self, results: Sequence[ParkResult]) -> None:
        """Settle the outcomes of replayed entries that failed again, count the new
        entries' failure groups and plan the cause re-checks."""
        parked = [r.summary for r in results if r.parked_by_this_item and r.summary is not None]
        if not parked:
            return
        again = [(s.payment_id, s.entry_id, s.parked_at_ms) for s in parked if s.payment_id]
        if again:
            try:
                await self._outcomes.dead_lettered(again, self.store.entries_for_payments)
            except (RedisError, OSError) as exc:
                log.warning("%s: outcomes of replayed payments not settled: %s", self.dlq, exc)
        if self.flow_failures is not None and self.cause_recheck_s:
            waiting = [
                (s.entry_id, s.payment_id)
                for s in parked
                if s.cause_source != "flow" and s.payment_id
            ]
            if waiting:
                due = time.monotonic() + self.cause_recheck_s[0]
                self._rechecks.append((due, 0, waiting))
        await self._count_groups(Counter(s.failure_group for s in parked))

    async def _count_groups(self, added: Counter[str]) -> None:
        if self.new_groups is None or not added:
            return
        try:
            await self.new_groups.observe(added, self.dlq)
        except (RedisError, OSError) as exc:
            log.warning("%s: new failure groups not counted: %s", self.dlq, exc)

    async def _recheck_causes(self) -> None:
        """Look the causes of entries parked before their payment's failure event came
        up again, once they are due; an entry found gets the flow's cause."""
        lookup = self.flow_failures
        now = time.monotonic()
        due = [r for r in self._rechecks if r[0] <= now]
        if lookup is None or not due:
            return
        self._rechecks = [r for r in self._rechecks if r[0] > now]
        pending = [(entry, payment, step) for _, step, pairs in due for entry, payment in pairs]
        moved: Counter[str] = Counter()
        try:
            failures = await lookup(sorted({payment for _, payment, _ in pending}))
            left: dict[int, list[tuple[str, str]]] = {}
            for entry_id, payment_id, step in pending:
                failure = failures.get(payment_id)
                if failure is None or not failure.reason.strip():
                    left.setdefault(step + 1, []).append((entry_id, payment_id))
                    continue
                cause = Cause.of(failure.reason, "flow")
                if await self.store.set_cause(self.dlq, entry_id, cause) is not None:
                    moved[cause.group] += 1
        except (RedisError, OSError) as exc:
            log.warning("%s: causes not looked up again: %s", self.dlq, exc)
            return
        started = time.monotonic()
        for step, pairs in left.items():
            if step < len(self.cause_recheck_s):
                wait = self.cause_recheck_s[step] - self.cause_recheck_s[step - 1]
                self._rechecks.append((started + wait, step, pairs))
        await self._count_groups(moved)

    async def _hold(self, amqp: ParkChannel, size: int, exc: BaseException) -> None:
        self._errors += 1
        self._last_error = f"Redis did not accept a batch of {size}: {_refusal(exc)}"
        now = time.time()
        if self._down_since is None:
            # Not basic.cancel: a quorum queue returns what it had sent towards a cancelled
            # consumer, and RabbitMQ 3.x counts that return toward x-delivery-limit. The
            # consumer stays; the prefetch limit stops deliveries once it is full.
            self._down_since = now
        self._report()
        if self._stopping:
            raise ParkingFailed(f"stopped while {self._last_error}", self.stats)
        if self.give_up_after_s is not None and now - self._down_since >= self.give_up_after_s:
            raise ParkingFailed(self._last_error, self.stats)
        if amqp.is_closed:
            raise amqp.error(f"consuming {self.dlq}")
        self._stop.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self._backoff.next_delay())
        if self._stopping:
            raise ParkingFailed(f"stopped while {self._last_error}", self.stats)

    async def _clear_marks(self) -> None:
        """Drop the marks of batches whose ack the broker confirmed; on a Redis error keep
        them for the next batch (a stale mark only matters to a redelivered twin)."""
        if not self._to_clear:
            return
        ids, self._to_clear = self._to_clear, []
        try:
            await self.store.clear_marks(self.dlq, self._session, ids)
        except (RedisError, OSError):
            self._to_clear = ids + self._to_clear

    async def _give_back(self, amqp: ParkChannel) -> None:
        """Return what is not parked by closing the channel: the broker requeues it
        (``basic.nack`` would, on RabbitMQ 4, spend delivery budget)."""
        self._unacked = []
        self._buffer.clear()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CANCEL_TIMEOUT_S):
                await amqp.close()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)


def _refusal(exc: BaseException) -> str:
    """Why Redis refused a batch, in an operator's words."""
    if isinstance(exc, OutOfMemoryError):
        return f"Redis is full (used memory reached maxmemory; it evicts nothing): {exc}"
    if isinstance(exc, ReadOnlyError):
        return f"Redis is a read-only replica: {exc}"
    return str(exc) or type(exc).__name__
