"""Publishing for the workbench's actions: confirms, mandatory returns, messages unchanged.

Why pika and not aio-pika here: aiormq's ``basic_publish`` gives every
message without a ``message_id`` a random one, and matches ``basic.return``
to confirms by ``message_id``; pamqp writes floats as 32-bit floats and
refuses ``bytes``. A requeue must leave a message as it was, so this module
publishes through pika (a :class:`~services.workbench.actions.pika_link.PikaLink`,
on any asyncio loop, qasync's included) and writes the properties and headers
with :func:`services.workbench.codec.encode_message_properties`: over the raw
property bytes the message was parked with, so every unchanged property and
header goes out byte for byte (wire type and key order kept); messages parked
before those bytes were kept are encoded from their values, each with the
AMQP type it was read as.

:class:`ActionPublisher` keeps one connection with one confirm channel.
:meth:`ActionPublisher.publish_many` publishes a batch with ``mandatory=True``
and up to ``window`` messages awaiting their confirm, and says for each item
what the broker did (:class:`PublishOutcome`):

- ``confirmed`` - routed to at least one queue and confirmed;
- ``returned`` - unroutable: the broker sent ``basic.return`` (which
  RabbitMQ sends before the ``basic.ack`` of the same publish; returns are
  matched to items by the ``payops-action-id`` header each item carries,
  unique among the messages in flight);
- ``nacked`` - the broker refused it (``basic.nack``) - for a message to one queue
  (the default exchange), only after it was refused again and again for
  ``nack_retry_s`` (see :meth:`ActionPublisher._retry_nacked`);
- ``unknown`` - the channel or connection was lost, or no confirm came in
  time: the message may or may not be in the queue;
- ``not_sent`` - never handed to the broker (it could not be encoded, or the
  connection was already gone): safe to try again.

Acks may come out of order and with ``multiple=True``; both are handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pika
import pika.channel
import pika.connection
import pika.exceptions
import pika.frame
import pika.spec

from services.links.backoff import Backoff
from services.links.endpoints import AmqpTarget
from services.links.headers import ACTION_ID_HEADER
from services.workbench.actions.pika_link import (
    AmqpUnavailable,
    ChannelClosed,
    PikaLink,
    PublisherError,
    set_once,
)
from services.workbench.codec import encode_message_properties

log = logging.getLogger(__name__)


NO_ROUTE: Final = 312

OutcomeStatus = Literal["confirmed", "returned", "nacked", "unknown", "not_sent"]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class PublishItem:
    """One message to publish.

    ``properties`` are basic properties by their AMQP names
    (:data:`services.workbench.codec.PROPERTY_NAMES`) with the values the parking
    store keeps (``timestamp`` as a datetime or epoch seconds); ``headers``
    the header table; ``wire`` the raw property bytes the message arrived with
    (:attr:`services.workbench.codec.MessageRecord.wire`), written over by
    ``properties`` and ``headers``. ``action_id`` is written to the
    :data:`ACTION_ID_HEADER` header (replacing any value there) and must be
    unique among the items of one :meth:`ActionPublisher.publish_many` call.
    """

    exchange: str
    routing_key: str
    body: bytes
    action_id: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, Any] = field(default_factory=dict)
    wire: bytes | None = None
    encoded: bytes | None = None


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """What the broker did with one item (see the module docstring)."""

    status: OutcomeStatus
    detail: str = ""
    reply_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "confirmed"

    @property
    def maybe_delivered(self) -> bool:
        """True when the message may be in a queue although it was not confirmed."""
        return self.status == "unknown"


CONFIRMED: Final = PublishOutcome("confirmed")
NACK_BACKOFF_S: Final = (0.25, 0.5, 1.0, 2.0, 5.0)
"""The waits before nacked messages are published again (the last repeats)."""

SettledCallback = Callable[[int, PublishOutcome], None]
"""``on_settled(index, outcome)``: the broker answered for item ``index`` (called as
each confirm, nack or lost channel arrives, before :meth:`ActionPublisher.publish_many`
returns), so a caller can record confirms while the rest are in flight."""


def unroutable_detail(exchange: str, routing_key: str, reply_code: int, reply_text: str) -> str:
    """A returned publish, in words an operator understands."""
    code = reply_text or str(reply_code)
    if exchange == "":
        return f"unroutable: no queue '{routing_key}' (mandatory publish returned {code})"
    return (
        f"unroutable: exchange '{exchange}' has no binding for routing key '{routing_key}'"
        f" (mandatory publish returned {code})"
    )


class EncodedProperties(pika.spec.BasicProperties):  # type: ignore[misc]
    """Properties pika writes as they are: :func:`encode_message_properties` did the work."""

    def __init__(self, encoded: bytes) -> None:
        super().__init__()
        self._encoded = encoded

    def encode(self) -> list[bytes]:
        return [self._encoded]


# --------------------------------------------------------------------------- publisher


class _Batch:
    """Bookkeeping of one publish_many call."""

    __slots__ = ("hold_nacks", "on_settled", "outcomes", "remaining", "returned", "wakeup")

    def __init__(self, size: int, on_settled: SettledCallback | None = None) -> None:
        self.on_settled = on_settled
        self.hold_nacks = False
        """While nacked items may still be published again, their nack is not reported."""
        self.outcomes: list[PublishOutcome | None] = [None] * size
        self.returned: dict[int, PublishOutcome] = {}
        self.remaining = 0
        self.wakeup = asyncio.Event()


@dataclass(slots=True)
class _InFlight:
    batch: _Batch
    index: int
    action_id: str
    size: int


class ActionPublisher(PikaLink):
    """One pika connection with one confirm channel (see the module docstring).

    ``window`` messages (and at most ``max_inflight_bytes`` of bodies) await
    their confirms at a time, over all :meth:`publish_many` calls running at
    once (several may: the actions service keeps a few windows in flight);
    ``confirm_timeout_s`` is how long to wait for the broker before the
    messages in flight are reported ``unknown``. Reconnects by itself on the
    next call after the connection was lost.
    """

    def __init__(
        self,
        amqp: AmqpTarget,
        *,
        window: int = 2000,
        max_inflight_bytes: int = 64 * 1024 * 1024,
        confirm_timeout_s: float = 120.0,
        connect_timeout_s: float = 10.0,
        connection_name: str = "PayOps Console actions",
        nack_retry_s: float = 30.0,
        nack_backoff_s: Sequence[float] = NACK_BACKOFF_S,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        super().__init__(amqp, connect_timeout_s=connect_timeout_s, connection_name=connection_name)
        self.window = window
        self.max_inflight_bytes = max_inflight_bytes
        self.confirm_timeout_s = confirm_timeout_s
        self.nack_retry_s = nack_retry_s
        """How long a message to one queue that the broker nacks is published again."""
        self.nack_backoff_s = tuple(nack_backoff_s)
        self.on_wait: Callable[[str], None] | None = None
        """Told what a wait for the broker is about (nacks published again), as it starts."""
        self._channel: pika.channel.Channel | None = None
        self._inflight: dict[int, _InFlight] = {}
        self._by_action: dict[str, int] = {}
        self._inflight_bytes = 0
        self._next_tag = 0
        self._space = asyncio.Event()  # set whenever a confirm settles anything
        self._refused_on_channel = False  # the confirm channel has had a basic.nack
        self._replacing = False  # publishing waits while the channel is replaced
        self._replace_lock = asyncio.Lock()

    # ------------------------------------------------------------------ connection

    async def connect(self) -> None:
        """Open the connection and the confirm channel (no-op when open).

        Raises :class:`AmqpUnavailable` when the broker cannot be reached or
        refuses the login.
        """
        if self.is_open and self._channel is not None and self._channel.is_open:
            return
        async with self._lock:
            if not self.is_open:
                await self._open_connection()
            if self._channel is None or not self._channel.is_open:
                await self._open_confirm_channel()

    async def close(self) -> None:
        """Close the connection; messages still in flight are reported ``unknown``."""
        try:
            await super().close()
        finally:
            self._channel = None

    def _connection_lost(self, reason: BaseException) -> None:
        self._fail_in_flight(f"the connection to RabbitMQ was lost before the confirm ({reason})")
        self._channel = None

    async def _open_confirm_channel(self) -> None:
        channel, closed = await self._new_channel()
        loop = asyncio.get_running_loop()
        selected: asyncio.Future[None] = loop.create_future()
        channel.confirm_delivery(
            ack_nack_callback=self._on_confirm,
            callback=lambda _frame: set_once(selected, None),
        )
        await self._wait(selected, closed, "turning on publisher confirms")
        channel.add_on_return_callback(self._on_return)
        channel.add_on_close_callback(self._on_channel_closed)
        self._channel = channel
        self._next_tag = 0
        self._refused_on_channel = False

    def _on_channel_closed(self, channel: pika.channel.Channel, reason: BaseException) -> None:
        if channel is not self._channel:
            return
        self._channel = None
        if isinstance(reason, pika.exceptions.ChannelClosedByBroker):
            self._fail_in_flight(f"the broker closed the channel before the confirm ({reason})")
        else:
            self._fail_in_flight(
                f"the connection to RabbitMQ was lost before the confirm ({reason})"
            )

    # ------------------------------------------------------------------ callbacks

    def _settle(self, tag: int, outcome: PublishOutcome | None) -> None:
        entry = self._inflight.pop(tag, None)
        if entry is None:
            return
        self._by_action.pop(entry.action_id, None)
        self._inflight_bytes -= entry.size
        batch = entry.batch
        returned = batch.returned.pop(entry.index, None)
        batch.outcomes[entry.index] = settled = returned or outcome or CONFIRMED
        batch.remaining -= 1
        if batch.on_settled is not None and not (batch.hold_nacks and settled.status == "nacked"):
            batch.on_settled(entry.index, settled)
        batch.wakeup.set()
        self._space.set()

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tag = int(method.delivery_tag)
        if isinstance(method, pika.spec.Basic.Nack):
            self._refused_on_channel = True
            outcome: PublishOutcome | None = PublishOutcome(
                "nacked", "the broker refused the message (basic.nack)"
            )
        else:
            outcome = None  # confirmed, unless a return came first
        if method.multiple:  # tags go in ascending order: stop at the first one after
            for pending in list(itertools.takewhile(tag.__ge__, self._inflight)):
                self._settle(pending, outcome)
        else:
            self._settle(tag, outcome)

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        properties: pika.spec.BasicProperties,
        _body: bytes,
    ) -> None:
        headers = properties.headers or {}
        action_id = headers.get(ACTION_ID_HEADER)
        if isinstance(action_id, bytes):
            action_id = action_id.decode("utf-8", "replace")
        tag = self._by_action.get(action_id) if isinstance(action_id, str) else None
        entry = self._inflight.get(tag) if tag is not None else None
        if entry is None:
            log.warning("action publisher: a return matches no message in flight (%s)", action_id)
            return
        reply_code = int(method.reply_code)
        entry.batch.returned[entry.index] = PublishOutcome(
            "returned",
            unroutable_detail(
                str(method.exchange), str(method.routing_key), reply_code, str(method.reply_text)
            ),
            reply_code,
        )

    def _fail_in_flight(self, detail: str) -> None:
        outcome = PublishOutcome("unknown", detail)
        for tag in list(self._inflight):
            self._settle(tag, outcome)
        self._inflight_bytes = 0

    # ------------------------------------------------------------------ publishing

    async def publish_many(
        self, items: Sequence[PublishItem], *, on_settled: SettledCallback | None = None
    ) -> list[PublishOutcome]:
        """Publish ``items`` with confirms and ``mandatory=True``; outcomes in item order
        (and each one to ``on_settled`` as the broker's answer arrives).

        Never raises for a broker or connection problem once it has started:
        that is what the ``unknown``/``not_sent`` outcomes say. Raises
        :class:`AmqpUnavailable` only when it cannot connect at all (nothing
        was sent then).
        """
        if not items:
            return []
        ids = [item.action_id for item in items]
        if len(set(ids)) != len(ids):
            raise ValueError("the items of one publish_many call need distinct action ids")
        await self.connect()
        return await self._publish_batch(items, on_settled)

    async def _publish_batch(
        self, items: Sequence[PublishItem], on_settled: SettledCallback | None = None
    ) -> list[PublishOutcome]:
        self._coalesce(True)
        try:
            return await self._publish_coalesced(items, on_settled)
        finally:
            self._coalesce(False)

    def _coalesce(self, on: bool) -> None:
        connection = self._connection
        if connection is None:
            return
        if on:
            connection.coalesce()
        else:
            connection.flush()

    async def _publish_coalesced(
        self, items: Sequence[PublishItem], on_settled: SettledCallback | None = None
    ) -> list[PublishOutcome]:
        batch = _Batch(len(items), on_settled)
        batch.hold_nacks = self.nack_retry_s > 0
        await self._publish_round(batch, items, range(len(items)))
        if batch.hold_nacks:
            await self._retry_nacked(batch, items)
        return [o or PublishOutcome("unknown", "no outcome") for o in batch.outcomes]

    async def _retry_nacked(self, batch: _Batch, items: Sequence[PublishItem]) -> None:
        """Publish again, after a back-off and for up to ``nack_retry_s``, what the broker
        nacked on its way to one queue; then report the nacks that are left.

        Why this sends nothing twice: a ``basic.nack`` says the broker "was unable to
        process the messages and refuses responsibility for them; at that point, the
        client may choose to re-publish the messages" (RabbitMQ, "Confirms", Negative
        Acknowledgment: https://www.rabbitmq.com/confirms.html). A queue rejects a
        publish when it is full (``x-overflow = reject-publish``) or unavailable - a
        quorum queue electing a new leader - and then has not enqueued it
        (rabbitmq-server#15075 names the two reasons, ``maxlen`` and ``unavailable``).
        But a message routed to several queues is acked only when all of them took it
        and nacked when one refused, so the others may hold it: only a publish through
        the default exchange (one queue, by name: a requeue, a retry) is published again;
        one through a named exchange (a cancel event, a Spring requeue) stays nacked. The
        copy carries the same ``payops-action-id`` (the same encoded properties).

        Each round goes out on a fresh channel (:meth:`_replace_refusing_channel`): on
        RabbitMQ 3.10 a channel whose first publish to a quorum queue came while the
        node of the queue's old leader was down keeps refusing that queue."""
        backoff = Backoff(self.nack_backoff_s)
        deadline = time.monotonic() + self.nack_retry_s
        started = time.monotonic()
        rounds = 0
        while True:
            again = [
                i
                for i, outcome in enumerate(batch.outcomes)
                if outcome is not None and outcome.status == "nacked" and items[i].exchange == ""
            ]
            delay = backoff.next_delay()
            if not again or time.monotonic() + delay > deadline:
                break
            queues = sorted({items[i].routing_key for i in again})
            text = (
                f"RabbitMQ refused {len(again):,} message(s) for {', '.join(queues[:3])}"
                f" (basic.nack: queue full or electing a leader); publishing them again"
                f" in {delay:g} s (for up to {self.nack_retry_s:g} s)"
            )
            log.warning("action publisher: %s", text)
            if self.on_wait is not None:
                self.on_wait(text)
            await asyncio.sleep(delay)
            for i in again:
                batch.outcomes[i] = None
            await self._replace_refusing_channel(batch)
            await self._publish_round(batch, items, again)
            rounds += 1
        batch.hold_nacks = False
        waited = time.monotonic() - started
        for i in range(len(items)):
            nacked = batch.outcomes[i]
            if nacked is None or nacked.status != "nacked":
                continue
            if items[i].exchange == "" and rounds:
                batch.outcomes[i] = nacked = PublishOutcome(
                    "nacked",
                    f"the broker refused the message (basic.nack), {rounds + 1} times"
                    f" over {waited:.1f} s",
                )
            if batch.on_settled is not None:
                batch.on_settled(i, nacked)

    async def _publish_round(
        self, batch: _Batch, items: Sequence[PublishItem], indexes: Iterable[int]
    ) -> None:
        """Publish ``items[i]`` for each ``i`` of ``indexes`` and await their confirms."""
        timeout_s = self.confirm_timeout_s
        stalled = False
        reopens = 3
        for index in indexes:
            item = items[index]
            if stalled:
                batch.outcomes[index] = PublishOutcome(
                    "not_sent",
                    f"not published: RabbitMQ sent no confirm within {timeout_s:g} s",
                )
                continue
            try:
                encoded = self._encode(item)
            except ValueError as exc:
                batch.outcomes[index] = PublishOutcome("not_sent", f"cannot be published: {exc}")
                continue
            size = len(item.body)
            while self._replacing or self._window_full(size):
                if not await self._await_settle(batch, timeout_s, any_batch=True):
                    stalled = True
                    break
            if stalled:
                self._give_up(batch, timeout_s)
                batch.outcomes[index] = PublishOutcome(
                    "not_sent",
                    f"not published: RabbitMQ sent no confirm within {timeout_s:g} s",
                )
                continue
            channel = self._channel
            connection = self._connection
            if (channel is None or not channel.is_open) and reopens > 0 and self.is_open:
                reopens -= 1  # the broker closed the channel (a 404/406): open another
                channel = await self._reopen_quietly()
                connection = self._connection
            if channel is None or not channel.is_open or connection is None:
                batch.outcomes[index] = PublishOutcome(
                    "not_sent",
                    "not published: the connection to RabbitMQ is lost"
                    if not self.is_open
                    else "not published: the broker keeps closing the channel",
                )
                continue
            self._next_tag += 1
            tag = self._next_tag
            self._inflight[tag] = _InFlight(batch, index, item.action_id, size)
            self._by_action[item.action_id] = tag
            self._inflight_bytes += size
            batch.remaining += 1
            try:
                connection.publish_encoded(
                    channel.channel_number, item.exchange, item.routing_key, encoded, item.body
                )
            except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
                self._settle(tag, PublishOutcome("unknown", f"publish failed: {exc!r}"))
        while batch.remaining > 0:
            if not await self._await_settle(batch, timeout_s):
                self._give_up(batch, timeout_s)
                break

    def _window_full(self, size: int) -> bool:
        """Whether a message of ``size`` bytes must wait for confirms first."""
        return self._channel is not None and (
            len(self._inflight) >= self.window
            or bool(self._inflight and self._inflight_bytes + size > self.max_inflight_bytes)
        )

    def _give_up(self, batch: _Batch, timeout_s: float) -> None:
        """No confirm in time: what is in flight is in doubt."""
        outcome = PublishOutcome("unknown", f"no confirm from RabbitMQ within {timeout_s:g} s")
        for tag, entry in list(self._inflight.items()):
            if entry.batch is batch:
                self._settle(tag, outcome)

    async def _await_settle(self, batch: _Batch, timeout_s: float, any_batch: bool = False) -> bool:
        """Wait until a confirm (or a lost channel) settles something of ``batch`` (with
        ``any_batch``, of any call: room in the window); False on time-out."""
        event = self._space if any_batch else batch.wakeup
        event.clear()
        self._coalesce(False)
        try:  # not wait_for: on Python 3.11 it can swallow a cancel (Ctrl+C) racing a confirm
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            return False
        finally:
            self._coalesce(True)
        return True

    async def _replace_refusing_channel(self, batch: _Batch) -> None:
        """Open a new confirm channel in place of one the broker has nacked on, once
        nothing is in flight on it (new publishes wait meanwhile).

        Why: on RabbitMQ 3.10.8 a channel keeps one quorum-queue client per queue, made
        at its first publish to that queue from the queue's record, which names the
        leader. When that first publish comes after the leader's node died and before
        the record names the new leader, the client's first call (to the dead node)
        fails and the publish is nacked (``rabbit_fifo_client:enqueue/3``: ``badrpc,
        nodedown`` gives ``reject_publish``); the client stays as it was, so every later
        publish on that channel to that queue is nacked too, until the node is back
        (``rabbit_quorum_queue:update/2`` ignores the new record). A new channel makes
        a new client from the record as it is now."""
        async with self._replace_lock:
            if not self._refused_on_channel or self._channel is None or not self.is_open:
                return
            self._replacing = True
            try:
                while self._inflight:
                    if not await self._await_settle(batch, self.confirm_timeout_s, True):
                        return  # confirms stalled: _publish_round reports that
                old, self._channel = self._channel, None
                if await self._reopen_quietly() is not None and old.is_open:
                    with contextlib.suppress(pika.exceptions.AMQPError):
                        old.close()
            finally:
                self._replacing = False
                self._space.set()

    async def _reopen_quietly(self) -> pika.channel.Channel | None:
        self._coalesce(False)
        try:
            async with self._lock:
                if self._channel is None or not self._channel.is_open:
                    await self._open_confirm_channel()
        except (AmqpUnavailable, PublisherError, ChannelClosed) as exc:
            log.warning("action publisher: cannot reopen the channel: %s", exc)
            return None
        finally:
            self._coalesce(True)
        return self._channel

    def _encode(self, item: PublishItem) -> bytes:
        if item.encoded is not None:
            return item.encoded
        headers = dict(item.headers)
        headers[ACTION_ID_HEADER] = item.action_id
        user_id = item.properties.get("user_id")
        if user_id is not None:
            text = user_id.decode("utf-8", "replace") if isinstance(user_id, bytes) else user_id
            if text != self.username:
                raise ValueError(
                    f"the message carries user_id '{text}' but the console logs in as"
                    f" '{self.username}'; RabbitMQ refuses such a publish (validated user-id)"
                )
        return encode_message_properties(item.properties, headers, item.wire)


def describe_outcomes(outcomes: Iterable[PublishOutcome]) -> dict[str, int]:
    """How many outcomes of each status (for logs and benchmarks)."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


__all__ = [
    "ACTION_ID_HEADER",
    "ActionPublisher",
    "PublishItem",
    "PublishOutcome",
    "describe_outcomes",
    "unroutable_detail",
]
