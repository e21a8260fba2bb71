"""The console's tap queue: a lossy, no-ack observer of the configured exchanges."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pika
import pika.channel
import pika.spec
from aio_pika.abc import AbstractConnection
from pamqp.common import FieldTable

from services.config import Profile, TapBinding
from services.flow.aggregator import FlowAggregator
from services.flow.decoder import REPLAY_HEADER, EventDecoder
from services.flow.payment_events import PaymentEventBuffer
from services.flow.tap_link import AmqpChannelError, TapChannel, TapLink
from services.links.amqp_wire import read_basic
from services.links.pika_frames import Delivery
from services.problems import ProblemReporter

log = logging.getLogger(__name__)

ProblemCallback = Callable[[str], None]

AGE_SAMPLES = 512
REBIND_INTERVAL_S = 15.0
MAX_PROBLEMS = 100
MAX_KEY_LENGTH = 128  # a longer message id is replaced by the body's digest as an event's key

# Drop probes: numbered messages the tap publishes into its own queue.
PROBE_HEADER = "payops-probe"  # the probe's sequence number; its presence marks a probe
PROBE_SOURCE_HEADER = "payops-probe-source"  # "<tap instance>/<probe channel generation>"
PROBE_RATE_HZ = 50.0
PROBE_MAX_BURST = 25  # probes published at once to catch up after the loop was held up
PROBE_SEQ_MODULUS = 1 << 31  # sequence numbers wrap here (a signed 32-bit table value)
PROBE_MAX_GAP = 1 << 20  # a larger jump is a restart, not ~6 h of lost probes at 50/s
PROBE_RETRY_S = 1.0
# Drops are only possible while messages arrive: idle, the tap probes at a low rate
# (which keeps the sequence's baseline) and the first delivery wakes it.
PROBE_IDLE_HZ = 1.0
PROBE_BUSY_HOLD_S = 2.0  # full rate until this long after the last delivery
ACCESS_REFUSED = 403


def tap_queue_arguments(profile: Profile) -> FieldTable:
    """The tap queue's arguments: bounded, dropping its oldest, expiring, no DLX."""
    return {
        "x-max-length": profile.tap_max_length,
        "x-overflow": "drop-head",
        "x-expires": profile.tap_expires_s * 1000,
    }


def tap_queue_name() -> str:
    """A fresh tap queue name that tells an operator whose queue it is."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"payops.tap.{host[:60] or 'host'}.{uuid.uuid4().hex[:12]}"


# -- the probe estimator ---------------------------------------------------------


def probe_gap(last_seq: int, seq: int, modulus: int = PROBE_SEQ_MODULUS) -> int | None:
    """Probes lost between the probe numbered ``last_seq`` and the next one received.

    Probes share the tap queue's FIFO order, so every probe numbered between
    two received ones is gone for good (it cannot arrive later). Numbers wrap
    at ``modulus``. ``None`` when ``seq`` cannot follow ``last_seq``: the same
    number again (a duplicate) or a jump backwards or implausibly far ahead (a
    restart of the sequence); the caller takes such a probe as a new baseline.
    """
    step = (seq - last_seq) % modulus
    if step == 0 or step > PROBE_MAX_GAP:
        return None
    return step - 1


@dataclass
class ProbeDropEstimator:
    """Estimate the tap's dropped messages from the sequence gaps of its probes.

    The tap publishes numbered probes into its own queue at a steady rate.
    ``drop-head`` drops a probe with the same chance as the messages queued
    around it, so the probes lost between received probes sample the loss
    among the messages consumed around them. Each received probe closes a
    *segment*: the messages consumed since the previous probe and the probes
    missing in between (``probe_gap``). Consecutive segments are pooled into
    groups of ``group_size`` received probes; a group of *C* consumed
    messages, *m* missing and *r* received probes adds ``C * min(m / r,
    max_ratio)`` estimated drops (lost messages per surviving one are the same
    for probes and for messages). Small groups keep the estimate local, so a
    burst of losses is not diluted by the quiet time after it.

    ``take`` (once per poll) returns the drops of the groups closed since the
    last call, in whole messages (fractions carry over). At a poll an open
    group that lost nothing is discarded (its estimate is 0 whatever follows),
    and one that lost probes waits at most ``max_hold`` polls for its
    ``group_size`` probes before it is closed as it is. Messages consumed after
    the last received probe belong to a segment still open; probes still in
    flight are neither missing nor received until a later probe arrives.

    Known limits: probes sample time evenly, messages arrive as they come, so
    when the inflow comes in lumps (the broker's credit flow under load, many
    small messages) the probes sit more often in the quiet gaps and the
    estimate reads low (measured 0.3-0.7x there; 0.6-1.7x otherwise). Under
    heavy loss few probes survive (2-3 per second at 95 % loss), so a single
    group's estimate is rough; totals over seconds are what it is good for.
    """

    modulus: int = PROBE_SEQ_MODULUS
    group_size: int = 5
    max_hold: int = 3
    max_ratio: float = 99.0
    source: str | None = None
    last_seq: int = -1
    segment_start: int = 0  # messages consumed when the last probe arrived
    group_consumed: int = 0
    group_missing: int = 0
    group_received: int = 0
    held: int = 0
    pending: float = 0.0
    carry: float = 0.0
    missing_total: int = 0
    received_total: int = 0

    def probe_received(self, source: str, seq: int, consumed_total: int) -> None:
        """Close a segment: the probe ``seq`` of ``source`` arrived after ``consumed_total``."""
        if source != self.source:
            # A new probe channel (or the first probe at all) numbers from 0.
            self.source, self.last_seq = source, -1
        missing = probe_gap(self.last_seq, seq, self.modulus)
        if missing is None:
            if seq == self.last_seq:
                return  # a duplicate tells nothing
            missing = 0  # a restart: what was lost across it is unknown
        self.group_consumed += consumed_total - self.segment_start
        self.group_missing += missing
        self.group_received += 1
        self.segment_start = consumed_total
        self.last_seq = seq
        self.missing_total += missing
        self.received_total += 1
        if self.group_received >= self.group_size:
            self._close_group()

    def take(self) -> int:
        """The estimated drops of the groups closed since the last call, in whole messages."""
        if not self.group_missing:
            self._close_group()  # nothing lost: adds 0
        elif self.held >= self.max_hold:
            self._close_group()
        else:
            self.held += 1
        self.carry += self.pending
        self.pending = 0.0
        dropped = int(self.carry)
        self.carry -= dropped
        return dropped

    def _close_group(self) -> None:
        if self.group_missing and self.group_received:
            ratio = min(self.group_missing / self.group_received, self.max_ratio)
            self.pending += self.group_consumed * ratio
        self.group_consumed = self.group_missing = self.group_received = self.held = 0


# -- the fallback: message ages ------------------------------------------------------


def is_full(depth: int, max_length: int) -> bool:
    """Whether the tap queue is at its length limit (within 1 %, at least one message)."""
    return depth >= max_length - max(1, max_length // 100)


def estimate_drops_per_s(
    *,
    depth: int,
    max_length: int,
    median_age_s: float | None,
    consume_rate: float,
    fallback_inflow: float | None,
) -> float:
    """Estimate how many messages per second the broker drops from a full tap queue.

    The fallback for when the tap may not publish probes (``ProbeDropEstimator``).
    In steady state a full queue of length L with inflow I holds each message
    about L / I seconds, so I ≈ L / median age of recently consumed messages,
    and drops ≈ max(0, I - consume rate). Without an age, the last inflow
    measured while the queue was not full stands in for I. Zero when the
    queue is not full.

    Known bias: a message's age also counts the time it spent in TCP buffers
    after leaving the queue, which dominates when the console itself is the
    bottleneck, so the estimate then falls short (often to zero) of the truth.
    """
    if not is_full(depth, max_length):
        return 0.0
    if median_age_s is not None and median_age_s > 0:
        inflow = depth / median_age_s
    elif fallback_inflow is not None:
        inflow = fallback_inflow
    else:
        return 0.0
    return max(0.0, inflow - consume_rate)


@dataclass
class AgeDropEstimator:
    """Turns periodic depth polls into whole numbers of (estimated) dropped messages."""

    max_length: int
    last_time: float | None = None
    last_consumed: int = 0
    last_depth: int = 0
    inflow_not_full: float | None = None
    carry: float = 0.0

    def update(
        self, now: float, depth: int, consumed_total: int, median_age_s: float | None
    ) -> int:
        """Feed one poll; return the estimated drops since the previous poll."""
        if self.last_time is None or now <= self.last_time:
            self.last_time, self.last_consumed, self.last_depth = now, consumed_total, depth
            return 0
        elapsed = now - self.last_time
        consume_rate = max(0, consumed_total - self.last_consumed) / elapsed
        if not is_full(depth, self.max_length):
            self.inflow_not_full = max(0.0, consume_rate + (depth - self.last_depth) / elapsed)
        rate = estimate_drops_per_s(
            depth=depth,
            max_length=self.max_length,
            median_age_s=median_age_s,
            consume_rate=consume_rate,
            fallback_inflow=self.inflow_not_full,
        )
        self.last_time, self.last_consumed, self.last_depth = now, consumed_total, depth
        self.carry += rate * elapsed
        dropped = int(self.carry)
        self.carry -= dropped
        return dropped


# -- the tap -------------------------------------------------------------------------


class FlowTap:
    """Declare the tap queue, bind it, and count every delivery into the aggregator.

    The tap queue is exclusive and auto-delete, ``x-max-length`` with
    ``drop-head`` overflow, ``x-expires``, and has no dead-letter exchange, so
    it can never hurt the payment flow. A binding that fails (missing exchange)
    is reported through ``on_problem`` and in ``problems``, retried every
    ``REBIND_INTERVAL_S`` (``on_resolved`` says when it bound after all), and
    the tap carries on with the others. Deliveries
    are consumed no-ack on a pika connection of the tap's own
    (``services.flow.tap_link``: the frames are read off the wire and each
    delivery handed over as one plain object, where aiormq ran a Task and
    pika built its frame and property objects; chosen by measurement, see the
    README's ``ingest`` benchmark).

    Messages dropped by the broker while the console fell behind are
    estimated with probes (``ProbeDropEstimator``): while it runs, the tap
    publishes ``PROBE_RATE_HZ`` numbered probes into its own queue through the
    default exchange (so they never reach the payment flow), on a channel of
    its own on the same connection; they are recognised by the
    ``PROBE_HEADER`` header and counted neither as events, nor as dead
    letters, nor in ``consumed``. When the broker refuses the probes
    (ACCESS_REFUSED: no write permission on the default exchange), that is
    reported once and the estimate falls back to message ages
    (``estimate_drops_per_s``), which reads low when the console is behind.

    With ``payment_events`` (a :class:`PaymentEventBuffer`), every event with a
    payment id is appended to it as a plain tuple (the id comes out of the
    decoder's one parse of the body; the key is the message id, else a digest of
    the body), and every dead letter's payment id to its ``kept``: O(1) each,
    no Redis on this path (the recorder writes them).
    """

    def __init__(
        self,
        profile: Profile,
        aggregator: FlowAggregator,
        decoder: EventDecoder,
        on_problem: ProblemCallback | None = None,
        *,
        on_resolved: ProblemCallback | None = None,
        poll_interval_s: float = 1.0,
        consume_gate: threading.Event | None = None,
        payment_events: PaymentEventBuffer | None = None,
    ) -> None:
        self._profile = profile
        self._aggregator = aggregator
        self._reporter = ProblemReporter(on_problem, on_resolved, keep=MAX_PROBLEMS)
        self._poll_interval = poll_interval_s
        self._consume_gate = consume_gate
        self.queue_name: str | None = None
        self.link: TapLink | None = None  # the tap's own connection, while it runs
        self.bound = asyncio.Event()  # set once the tap queue is declared and bound
        self.ready = asyncio.Event()  # set while the tap is consuming
        self.problems = self._reporter.problems
        self.consumed = 0  # deliveries counted (events and dead letters; probes are not)
        self.probes_sent = 0
        self.probes_received = 0
        self._ages: deque[float] = deque(maxlen=AGE_SAMPLES)
        self._instance = uuid.uuid4().hex[:12]
        self._probe_prefix = f"{self._instance}/"
        self._probe_generation = 0
        self._probes = ProbeDropEstimator()
        self._probes_refused = False
        self._depth = 0  # the tap queue's depth at the last poll
        self._refusal_reported = False
        self._traffic_waiters: list[asyncio.Future[None]] = []  # see ``traffic_or_timeout``
        # Bound methods looked up once; the delivery callback is the hot path.
        self._decode = decoder.decode
        self._record_event = aggregator.record_event
        self._record_dead_letter = aggregator.record_dead_letter
        self._add_age = self._ages.append
        self._payment_id = decoder.payment_id
        self._add_payment_event = (
            payment_events.events.append if payment_events is not None else None
        )
        self._keep_payment = payment_events.kept.append if payment_events is not None else None

    async def run(self, connection: AbstractConnection) -> None:
        """Tap until cancelled or a connection fails (then it raises).

        ``connection`` is the live flow's link (aio-pika); the tap works on a
        pika connection of its own to the same broker (``TapLink``) and ends,
        raising, when either closes.
        """
        bindings = self._profile.tap_exchanges
        if not bindings:
            self._reporter.report(
                "config", "no tap exchanges configured: the live flow shows nothing"
            )
            return
        self.ready.clear()
        self.bound.clear()
        self._ages.clear()
        self._probes = ProbeDropEstimator()
        self._probes_refused = False
        name = tap_queue_name()
        link = self.link = TapLink(self._profile.amqp_endpoint)
        prober: asyncio.Task[None] | None = None
        try:
            await link.open()
            control = await link.channel()
            await control.queue_declare(
                name,
                exclusive=True,
                auto_delete=True,
                arguments=dict(tap_queue_arguments(self._profile)),
            )
            self.queue_name = name
            control, unbound = await self._bind(link, control, name, bindings, report=True)
            self.bound.set()
            if self._consume_gate is not None:  # benchmarks fill the queue before consuming
                while not self._consume_gate.is_set():
                    await asyncio.sleep(0.005)
            consumer = await link.channel()
            await consumer.consume(name, self._on_delivery)
            prober = asyncio.create_task(self._send_probes(link, name), name="payops-probes")
            self.ready.set()
            log.info("tap %s consuming %s", name, ", ".join(map(str, bindings)))

            by_age = AgeDropEstimator(self._profile.tap_max_length)
            next_rebind = time.monotonic() + REBIND_INTERVAL_S
            while True:
                await asyncio.sleep(self._poll_interval)
                if connection.is_closed:
                    raise ConnectionError("the live flow's RabbitMQ connection closed")
                if link.is_closed:
                    raise link.close_reason()
                if consumer.is_closed:
                    raise consumer.close_reason()
                if control.is_closed:
                    control = await link.channel()
                depth = self._depth = await control.queue_declare(name, passive=True)
                dropped_by_age = by_age.update(
                    time.monotonic(), depth, self.consumed, self._median_age_s()
                )
                dropped = dropped_by_age if self._probes_refused else self._probes.take()
                if dropped:
                    self._aggregator.record_tap_dropped(dropped)
                if unbound and time.monotonic() >= next_rebind:
                    next_rebind = time.monotonic() + REBIND_INTERVAL_S
                    control, unbound = await self._bind(link, control, name, unbound, report=False)
        finally:
            self.ready.clear()
            self.bound.clear()
            if prober is not None:
                prober.cancel()
                await asyncio.wait([prober])
            await link.close()  # its channels and the exclusive tap queue with it

    def _on_delivery(self, delivery: Delivery) -> None:
        # The frame reader calls this for each delivery, directly from its loop.
        body = delivery.body
        headers, message_id, timestamp = read_basic(delivery.raw_properties)
        if headers and PROBE_HEADER in headers:
            self._on_probe(headers)
            return
        if self._traffic_waiters:  # an idle loop waits for the first delivery
            self._wake_traffic_waiters()
        if headers and ("x-death" in headers or "x-first-death-queue" in headers):
            self._record_dead_letter()
            self.consumed += 1
            if self._keep_payment is not None:
                payment_id = self._payment_id(body)
                if payment_id is not None:
                    self._keep_payment((time.time() * 1000.0, payment_id))
            return
        now_ms = time.time() * 1000.0
        status, latency, reason, payment_id = self._decode(
            body, delivery.routing_key, headers, timestamp, now_ms
        )
        replayed = headers is not None and REPLAY_HEADER in headers
        if replayed:  # its age is its parking time
            self._record_event(status, None, reason, replayed=True)
        else:
            self._record_event(status, latency, reason)
            if latency is not None:
                self._add_age(latency)
        self.consumed += 1
        if payment_id is not None and self._add_payment_event is not None:
            key = message_id
            if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
                key = _digest(body)
            self._add_payment_event((payment_id, now_ms, status, reason, replayed, key))

    async def traffic_or_timeout(self, timeout_s: float) -> None:
        """Sleep ``timeout_s``, or less: until the next delivery (not a probe) arrives.

        What an idle loop waits with instead of polling ``consumed``: the
        delivery callback wakes it, at the cost of one test per delivery.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._traffic_waiters.append(waiter)
        timer = loop.call_later(max(0.0, timeout_s), _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if waiter in self._traffic_waiters:
                self._traffic_waiters.remove(waiter)

    def _wake_traffic_waiters(self) -> None:
        waiters, self._traffic_waiters = self._traffic_waiters, []
        for waiter in waiters:
            _resolve(waiter)

    def _on_probe(self, headers: Mapping[str, Any]) -> None:
        seq = headers.get(PROBE_HEADER)
        source = headers.get(PROBE_SOURCE_HEADER)
        if (
            isinstance(seq, int)
            and isinstance(source, str)
            and source.startswith(self._probe_prefix)
        ):
            self.probes_received += 1
            self._probes.probe_received(source, seq, self.consumed)

    async def _send_probes(self, link: TapLink, queue: str) -> None:
        """Publish probes into ``queue`` until cancelled, refused, or the connection fails.

        Each (re)opened channel is a new probe source numbering from 0, so the
        probes lost when a channel failed are not taken for dropped ones.
        """
        while True:
            self._probe_generation += 1
            source = f"{self._probe_prefix}{self._probe_generation}"
            channel: TapChannel | None = None
            try:
                channel = await link.channel()
                await self._probe_loop(link, channel, queue, source)
            except AmqpChannelError as exc:
                if exc.code != ACCESS_REFUSED:
                    log.warning("tap probe channel failed (%s); reopening it", exc)
                else:
                    self._probes_refused = True
                    if not self._refusal_reported:
                        self._refusal_reported = True
                        self._reporter.report(
                            "probes",
                            "tap cannot publish drop probes to its own queue through the "
                            f"default exchange ({exc}): 'tap dropped' is estimated "
                            "from message ages and reads low when the console falls behind",
                        )
                    return
            except Exception as exc:
                if link.is_closed or isinstance(exc, ConnectionError):
                    return  # the tap's poll loop sees the connection fail too
                log.warning("tap probe channel failed (%r); reopening it", exc)
            finally:
                if channel is not None:
                    await channel.close()
            await asyncio.sleep(PROBE_RETRY_S)

    async def _probe_loop(
        self, link: TapLink, channel: TapChannel, queue: str, source: str
    ) -> None:
        """Publish probes on ``channel`` until it fails: ``PROBE_RATE_HZ`` while
        messages arrive, ``PROBE_IDLE_HZ`` while none do.

        Drops are only possible while messages arrive (or wait in the tap queue):
        from the first delivery (which wakes the idle loop) until
        ``PROBE_BUSY_HOLD_S`` after the last, or while the last poll found the
        queue non-empty, probes go at the full rate; idle, a few keep the
        sequence going, so the first probes under load close a segment at once.
        Ticks the event loop served late are made up by publishing the probes
        that were due (at most ``PROBE_MAX_BURST`` at once), so the probes keep
        sampling the queue evenly in time while the console is busiest. While
        the broker blocks publishers (a resource alarm) no probe is sent, so the
        connection, shared with the tap and the depth polls, is not blocked.
        """
        loop = asyncio.get_running_loop()
        busy_period, idle_period = 1.0 / PROBE_RATE_HZ, 1.0 / PROBE_IDLE_HZ
        publish = channel.channel.basic_publish
        seq = 0
        next_at = loop.time()
        busy_until = next_at + PROBE_BUSY_HOLD_S  # a baseline first
        seen = self.consumed
        while True:
            await link.unblocked()
            if channel.is_closed:
                raise channel.close_reason()
            now = loop.time()
            if self.consumed != seen or self._depth:
                seen = self.consumed
                if now >= busy_until:  # traffic again: probe now
                    next_at = min(next_at, now)
                busy_until = now + PROBE_BUSY_HOLD_S
            busy = now < busy_until
            period = busy_period if busy else idle_period
            due = int((now - next_at) / period) + 1 if now >= next_at else 0
            if not busy:
                due = min(due, 1)  # nothing to catch up on while idle
            elif due > PROBE_MAX_BURST:
                next_at += (due - PROBE_MAX_BURST) * period
                due = PROBE_MAX_BURST
            for _ in range(due):
                properties = pika.BasicProperties(
                    headers={PROBE_HEADER: seq, PROBE_SOURCE_HEADER: source},
                    delivery_mode=1,
                )
                try:
                    publish("", queue, b"", properties)
                except pika.exceptions.AMQPError:
                    raise channel.close_reason() from None
                seq = (seq + 1) % PROBE_SEQ_MODULUS
                self.probes_sent += 1
            if due:
                next_at = next_at + due * period if busy else now + period
            if busy:
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            else:  # nothing to probe for until a delivery arrives or the next idle probe
                await self.traffic_or_timeout(next_at - loop.time())

    async def _bind(
        self,
        link: TapLink,
        control: TapChannel,
        queue: str,
        bindings: tuple[TapBinding, ...],
        *,
        report: bool,
    ) -> tuple[TapChannel, tuple[TapBinding, ...]]:
        """Bind what can be bound; return a live channel and the bindings that failed."""
        failed: list[TapBinding] = []
        for binding in bindings:
            if control.is_closed:
                control = await link.channel()
            try:
                await control.queue_bind(queue, binding.exchange, binding.routing_key)
            except AmqpChannelError as exc:
                failed.append(binding)
                if report:
                    self._reporter.report(
                        f"bind:{binding}",
                        f"tap cannot bind to exchange '{binding.exchange}': {exc}",
                    )
            else:
                self._reporter.resolve(f"bind:{binding}")
        return control, tuple(failed)

    def _median_age_s(self) -> float | None:
        if not self._ages:
            return None
        return statistics.median(self._ages) / 1000.0


def _digest(body: bytes) -> str:
    """What names a delivery without a message id: a short digest of its body."""
    return "b:" + hashlib.blake2b(body, digest_size=10).hexdigest()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
