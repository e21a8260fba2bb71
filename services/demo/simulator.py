"""A headless simulator of the demo payment flow (see :mod:`services.demo.topology`).

One connection, one channel per role:

- the *gateway* publishes payment requests at a steady rate (publisher
  confirms, ``mandatory``) plus a ``requested`` status event for each;
- the *process worker* authorizes, declines, sends high-risk payments to the
  fraud check, or fails a payment; a failed payment gets a ``failed`` event
  with a reason and is rejected without requeue, so RabbitMQ dead-letters it
  (``rejected``) to ``payments.dlx`` -> ``payments.dlq``;
- the *risk engine* works through ``payments.fraudcheck``; it is down during an
  incident, so fraud checks wait until the queue's TTL dead-letters them
  (``expired``);
- the *settlement worker* captures authorized payments from the quorum queue
  ``payments.settlement``; the acquirer is sometimes flaky, so it nacks with
  requeue and the broker redelivers, and a payment that keeps failing exceeds
  the delivery limit and is dead-lettered (``delivery_limit``). The worker
  sees the last attempt coming (``x-delivery-count``) and reports the payment
  ``failed`` ("settlement retries exhausted") before that final nack.

Every stage publishes status events to ``payments.events`` with routing key
``payment.<status>`` (``requested``, ``review``, ``authorized``, ``captured``,
``declined``, ``failed``). Each payment of a run ends with exactly one of
``captured``, ``declined``, ``failed`` or an expiry in the fraud check.

A message that an operator sent back (it has an ``x-death``,
``payops-action-id`` or ``payops-attempt`` header) always goes through to
``captured``, so a requeue visibly succeeds.

With a ``seed`` the payments (ids, merchants, amounts, cards) and each
payment's outcome are reproducible: outcomes are drawn per payment from the
seed and the payment id, not from the order in which concurrent workers happen
to run. Only what depends on wall-clock time differs between runs: timestamps,
and which payments fall inside the incident window. The payments and their
messages are in :mod:`services.demo.payments`, a stage's consumer in
:mod:`services.demo.stage`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, DeliveryMode, HeadersType

from services.demo.payments import (
    AUTHORIZED,
    CAPTURED,
    DECLINE_REASONS,
    DECLINED,
    FAILED,
    FAILURE_REASONS,
    REASON_OUTAGE,
    REASON_SCHEMA,
    REASON_SETTLEMENT_EXHAUSTED,
    REASON_SUSPECTED_FRAUD,
    REQUESTED,
    RETRY_MARKER_HEADER,
    REVIEW,
    Payment,
    PaymentGenerator,
    carried_headers,
    delivery_count,
    is_operator_retry,
    parse_payment,
    status_event,
)
from services.demo.stage import Outlet, Stage
from services.demo.topology import (
    DEFAULT_FRAUDCHECK_TTL_MS,
    DemoTopology,
    declare_demo_topology,
)

log = logging.getLogger(__name__)

APP_ID: Final = "payops-simulator"
JSON: Final = "application/json"

_PROCESS_PREFETCH: Final = 50
_RISK_PREFETCH: Final = 10
_SETTLEMENT_PREFETCH: Final = 20
_MAX_BATCH: Final = 500
_EXPIRY_GRACE_S: Final = 1.0
_DRAIN_POLL_S: Final = 0.1


# -- options and stats ----------------------------------------------------------


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate. Rates are fractions (0.03 is 3 %); times in seconds.

    ``rate`` 0 runs the workers only (they still process what is queued).
    The incident (``incident=True``) starts ``incident_after_s`` after the
    start and lasts ``incident_duration_s``: the acquirer fails
    ``incident_failure_rate`` of the payments ("acquirer outage"), processing
    is ``incident_latency_factor`` times slower and the risk engine is down, so
    fraud checks expire. ``fraudcheck_ttl_ms`` is part of the fraud-check
    queue's declaration: it must match the queue if that already exists.
    ``seed`` None draws a seed at random (the stats report it, to replay a run).
    """

    rate: float = 20.0
    failure_rate: float = 0.03
    duration_s: float | None = None
    incident: bool = False
    incident_after_s: float = 30.0
    incident_duration_s: float = 60.0
    seed: int | None = None
    prefix: str = ""
    decline_rate: float = 0.03
    review_rate: float = 0.08  # share of payments the risk engine must check
    risk_decline_rate: float = 0.15  # share of checked payments it declines
    settlement_retry_rate: float = 0.05  # chance that one settlement attempt fails
    settlement_stuck_rate: float = 0.004  # share of payments whose settlement always fails
    incident_failure_rate: float = 0.4
    incident_latency_factor: float = 4.0
    fraudcheck_ttl_ms: int = DEFAULT_FRAUDCHECK_TTL_MS
    drain_timeout_s: float = 30.0  # at the end, how long to wait for payments in flight

    def __post_init__(self) -> None:
        fractions = (
            "failure_rate",
            "decline_rate",
            "review_rate",
            "risk_decline_rate",
            "settlement_retry_rate",
            "settlement_stuck_rate",
            "incident_failure_rate",
        )
        for name in fractions:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
        for name in ("rate", "incident_after_s", "incident_duration_s", "drain_timeout_s"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        if self.duration_s is not None and not (
            self.duration_s >= 0.0 and math.isfinite(self.duration_s)
        ):
            raise ValueError(f"duration_s must be None or >= 0, not {self.duration_s!r}")
        if self.incident_latency_factor < 1.0:
            raise ValueError("incident_latency_factor must be >= 1")
        if self.fraudcheck_ttl_ms < 1:
            raise ValueError("fraudcheck_ttl_ms must be >= 1")

    def incident_active_at(self, elapsed_s: float) -> bool:
        """Whether the incident is on ``elapsed_s`` seconds after the start."""
        start = self.incident_after_s
        return self.incident and start <= elapsed_s < start + self.incident_duration_s


@dataclass(frozen=True)
class SimulationStats:
    """Counters of one run so far.

    ``by_status`` counts the status events the broker confirmed.
    ``dead_lettered`` counts payments a worker rejected (dead-letter reason
    ``rejected``); ``delivery_limit_exceeded`` the settlements that ran out of
    deliveries (``delivery_limit``); ``expired`` the fraud checks that waited
    past the TTL (``expired``; counted a second after their TTL ran out).
    ``in_flight`` is this run's payments without an outcome yet; after the run
    it counts payments still unfinished when the drain timed out. ``seed`` is
    the seed the run used.
    """

    published: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    delivery_limit_exceeded: int = 0
    expired: int = 0
    settlement_retries: int = 0
    in_flight: int = 0
    incident_active: bool = False
    elapsed_s: float = 0.0
    seed: int = 0

    @property
    def dead_lettered_total(self) -> int:
        """Messages the broker dead-letters because of this run, all reasons."""
        return self.dead_lettered + self.delivery_limit_exceeded + self.expired


ProgressCallback = Callable[[SimulationStats], None]


async def run_simulation(
    amqp_url: str,
    options: SimulationOptions,
    on_progress: ProgressCallback | None = None,
) -> SimulationStats:
    """Declare the demo topology and run the payment flow on it.

    Runs for ``options.duration_s`` (then stops publishing, waits for the
    payments in flight and returns the final stats) or, when that is None,
    until cancelled. ``on_progress`` gets the stats about once a second and
    once more at the end. On cancellation, consumers, channels and the
    connection are closed; unacknowledged messages go back to their queues.
    """
    return await _Simulation(amqp_url, options, on_progress).run()


# -- the machinery ---------------------------------------------------------------


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _pick(choices: tuple[tuple[str, float], ...], u: float) -> str:
    """The choice whose cumulative weight first exceeds ``u`` (0 <= u < 1)."""
    total = sum(weight for _, weight in choices)
    running = 0.0
    for choice, weight in choices:
        running += weight / total
        if u < running:
            return choice
    return choices[-1][0]


def _skewed_ms(u: float, low: float, high: float) -> float:
    """A latency between low and high ms, mostly near low."""
    return low + (high - low) * u * u


class _Simulation:
    def __init__(
        self, amqp_url: str, options: SimulationOptions, on_progress: ProgressCallback | None
    ) -> None:
        self._url = amqp_url
        self._options = options
        self._on_progress = on_progress
        self._seed = (
            options.seed if options.seed is not None else random.SystemRandom().getrandbits(63)
        )
        self._topology = DemoTopology.for_prefix(
            options.prefix, fraudcheck_ttl_ms=options.fraudcheck_ttl_ms
        )
        self._start = time.monotonic()
        self._published = 0
        self._by_status: Counter[str] = Counter()
        self._dead_lettered = 0
        self._delivery_limit_exceeded = 0
        self._expired = 0
        self._settlement_retries = 0
        self._pending: set[str] = set()  # this run's payments without an outcome
        self._awaiting_review: dict[str, float] = {}  # payment id -> TTL deadline (monotonic)
        self._channels: list[AbstractChannel] = []
        self._stages: list[Stage] = []

    # -- lifecycle --------------------------------------------------------------

    async def run(self) -> SimulationStats:
        connection = await aio_pika.connect(self._url)
        try:
            ops = await self._open_channel(connection)
            await declare_demo_topology(
                ops, self._options.prefix, fraudcheck_ttl_ms=self._options.fraudcheck_ttl_ms
            )
            gateway = await self._outlet(await self._open_channel(connection))
            process = await self._stage(connection, "process", self._handle_request)
            risk = await self._stage(connection, "risk", self._handle_fraudcheck)
            settlement = await self._stage(connection, "settlement", self._handle_settlement)
            self._start = time.monotonic()
            try:
                async with asyncio.TaskGroup() as group:
                    workers = [t for stage in self._stages for t in stage.spawn_workers(group)]
                    await process.start_consuming()
                    await settlement.start_consuming()
                    if not self._options.incident_active_at(0.0):
                        await risk.start_consuming()
                    control = [
                        group.create_task(self._report_progress()),
                        group.create_task(self._run_incident(risk)),
                    ]
                    await self._run_gateway(gateway)
                    await self._drain(ops)
                    # Stop the incident clock first, so it cannot restart a consumer.
                    for task in control:
                        task.cancel()
                    await asyncio.wait(control)
                    for stage in self._stages:
                        await stage.stop_consuming()
                    for task in workers:
                        task.cancel()
            except ExceptionGroup as group_error:
                for extra in group_error.exceptions[1:]:
                    log.error("simulation: another error", exc_info=extra)
                raise group_error.exceptions[0] from None
        finally:
            await self._close(connection)
        self._sweep_expired()
        stats = self.snapshot()
        if stats.in_flight:
            log.warning("simulation: %d payments still in flight at the end", stats.in_flight)
        if self._on_progress is not None:
            self._on_progress(stats)
        return stats

    async def _open_channel(self, connection: aio_pika.abc.AbstractConnection) -> AbstractChannel:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._channels.append(channel)
        return channel

    async def _outlet(self, channel: AbstractChannel) -> Outlet:
        return Outlet(
            payments=await channel.get_exchange(self._topology.payments_exchange, ensure=False),
            events=await channel.get_exchange(self._topology.events_exchange, ensure=False),
        )

    async def _stage(
        self,
        connection: aio_pika.abc.AbstractConnection,
        name: str,
        handler: Callable[[Outlet, AbstractIncomingMessage], Awaitable[None]],
    ) -> Stage:
        queue_name, prefetch = {
            "process": (self._topology.process_queue, _PROCESS_PREFETCH),
            "risk": (self._topology.fraudcheck_queue, _RISK_PREFETCH),
            "settlement": (self._topology.settlement_queue, _SETTLEMENT_PREFETCH),
        }[name]
        channel = await self._open_channel(connection)
        await channel.set_qos(prefetch_count=prefetch)
        outlet = await self._outlet(channel)
        queue = await channel.get_queue(queue_name, ensure=False)

        async def handle(message: AbstractIncomingMessage) -> None:
            await handler(outlet, message)

        stage = Stage(name, queue, handle, prefetch)
        self._stages.append(stage)
        return stage

    async def _close(self, connection: aio_pika.abc.AbstractConnection) -> None:
        for channel in reversed(self._channels):
            if not channel.is_closed:
                try:
                    await channel.close()
                except Exception:  # the connection may already be gone
                    log.debug("simulation: closing a channel failed", exc_info=True)
        await connection.close()

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def _incident_now(self) -> bool:
        return self._options.incident_active_at(self._elapsed())

    async def _sleep_until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))

    def snapshot(self) -> SimulationStats:
        """The counters now."""
        elapsed = self._elapsed()
        return SimulationStats(
            published=self._published,
            by_status=dict(self._by_status),
            dead_lettered=self._dead_lettered,
            delivery_limit_exceeded=self._delivery_limit_exceeded,
            expired=self._expired,
            settlement_retries=self._settlement_retries,
            in_flight=len(self._pending),
            incident_active=self._options.incident_active_at(elapsed),
            elapsed_s=elapsed,
            seed=self._seed,
        )

    async def _report_progress(self) -> None:
        next_at = self._start + 1.0
        while True:
            await self._sleep_until(next_at)
            next_at = max(next_at + 1.0, time.monotonic() + 0.5)
            self._sweep_expired()
            if self._on_progress is not None:
                self._on_progress(self.snapshot())

    async def _run_incident(self, risk: Stage) -> None:
        options = self._options
        if not options.incident:
            return
        begins = self._start + options.incident_after_s
        ends = begins + options.incident_duration_s
        await self._sleep_until(begins)
        log.info(
            "simulation: incident for %.0f s: acquirer outage, risk engine down",
            options.incident_duration_s,
        )
        await risk.stop_consuming()
        await self._sleep_until(ends)
        log.info("simulation: incident over, risk engine back")
        await risk.start_consuming()

    async def _drain(self, ops: AbstractChannel) -> None:
        """Wait until this run's payments have an outcome and the queues are idle."""
        deadline = time.monotonic() + self._options.drain_timeout_s
        queues = (
            self._topology.process_queue,
            self._topology.fraudcheck_queue,
            self._topology.settlement_queue,
        )
        quiet = 0
        while True:
            self._sweep_expired()
            idle = not self._pending and all(stage.busy == 0 for stage in self._stages)
            if idle:
                for name in queues:
                    queue = await ops.declare_queue(name, passive=True)
                    if queue.declaration_result.message_count:
                        idle = False
                        break
            quiet = quiet + 1 if idle else 0
            if quiet >= 2:
                return
            if time.monotonic() >= deadline:
                log.warning(
                    "simulation: gave up waiting for %d payments in flight", len(self._pending)
                )
                return
            await asyncio.sleep(_DRAIN_POLL_S)

    def _sweep_expired(self) -> None:
        """Count fraud checks whose TTL ran out (the broker has dead-lettered them)."""
        cutoff = time.monotonic() - _EXPIRY_GRACE_S
        gone = [pid for pid, deadline in self._awaiting_review.items() if deadline < cutoff]
        for pid in gone:
            del self._awaiting_review[pid]
            self._pending.discard(pid)
        self._expired += len(gone)

    # -- publishing ---------------------------------------------------------------

    def _rng(self, *key: object) -> random.Random:
        """A generator for one decision about one payment, from the seed."""
        return random.Random("/".join([str(self._seed), *map(str, key)]))

    async def _emit(
        self,
        outlet: Outlet,
        payment: Mapping[str, Any],
        status: str,
        headers: HeadersType,
        reason: str | None = None,
    ) -> None:
        now_ms = _now_ms()
        message = aio_pika.Message(
            orjson.dumps(status_event(payment, status, now_ms, reason)),
            content_type=JSON,
            message_id=uuid.uuid4().hex,
            timestamp=now_ms / 1000,
            app_id=APP_ID,
            type=f"payment.{status}",
            headers=carried_headers(headers),
        )
        # Not mandatory: nobody has to listen to status events.
        await outlet.events.publish(message, self._topology.event_key(status), mandatory=False)
        self._by_status[status] += 1

    async def _forward(
        self, outlet: Outlet, body: Mapping[str, Any], routing_key: str, headers: HeadersType
    ) -> None:
        message = aio_pika.Message(
            orjson.dumps(body),
            content_type=JSON,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=str(body.get("payment_id")),
            timestamp=_now_ms() / 1000,
            app_id=APP_ID,
            headers=dict(headers),
        )
        await outlet.payments.publish(message, routing_key, mandatory=True)

    def _finish(self, payment_id: str) -> None:
        self._pending.discard(payment_id)

    # -- the gateway ----------------------------------------------------------------

    async def _run_gateway(self, outlet: Outlet) -> None:
        """Publish payments at ``rate`` on a fixed schedule: payment i at start + i/rate.

        A run with a duration publishes ``ceil(duration_s * rate)`` payments; if the
        machine cannot keep up, the late ones go out in batches as fast as it can.
        """
        options = self._options
        end = math.inf if options.duration_s is None else self._start + options.duration_s
        if options.rate <= 0:
            if math.isinf(end):
                await asyncio.get_running_loop().create_future()  # until cancelled
            await self._sleep_until(end)
            return
        total = (
            math.inf if options.duration_s is None else math.ceil(options.duration_s * options.rate)
        )
        generator = PaymentGenerator(self._seed)
        sent = 0
        warned = False
        while sent < total:
            slot = self._start + sent / options.rate
            now = time.monotonic()
            if slot > now:
                await asyncio.sleep(slot - now)
                continue
            if not warned and now - slot > 1.0:
                warned = True
                log.warning(
                    "simulation: the gateway cannot keep up with %g payments/s;"
                    " it publishes as fast as it can and catches up in bursts",
                    options.rate,
                )
            due = min(math.floor((now - self._start) * options.rate) + 1, total) - sent
            count = max(1, min(int(due), _MAX_BATCH))
            created_at = _now_ms()
            payments = [generator.next_payment(created_at) for _ in range(count)]
            sent += count
            await asyncio.gather(*(self._publish_payment(outlet, p) for p in payments))

    async def _publish_payment(self, outlet: Outlet, payment: Payment) -> None:
        headers: HeadersType = {"trace_id": payment.trace_id}
        request = aio_pika.Message(
            orjson.dumps(payment.body()),
            content_type=JSON,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=payment.payment_id,
            timestamp=payment.created_at / 1000,
            app_id=APP_ID,
            type="payment.request",
            headers=headers,
        )
        self._pending.add(payment.payment_id)  # before: a worker may finish it before the confirm
        await asyncio.gather(
            outlet.payments.publish(
                request, self._topology.request_key(payment.merchant), mandatory=True
            ),
            self._emit(outlet, payment.body(), REQUESTED, headers),
        )
        self._published += 1

    # -- the workers ------------------------------------------------------------------

    async def _reject_unreadable(self, outlet: Outlet, message: AbstractIncomingMessage) -> None:
        """A body that is not a payment: report it failed and dead-letter it."""
        fallback = {"payment_id": message.message_id}
        await self._emit(outlet, fallback, FAILED, message.headers, REASON_SCHEMA)
        await message.reject(requeue=False)
        self._dead_lettered += 1

    async def _handle_request(self, outlet: Outlet, message: AbstractIncomingMessage) -> None:
        """The process worker: authorize, decline, send to review, or fail."""
        async with message.process(requeue=True, ignore_processed=True):
            payment = parse_payment(message.body)
            if payment is None:
                await self._reject_unreadable(outlet, message)
                return
            pid: str = payment["payment_id"]
            merchant = str(payment.get("merchant") or "unknown")
            retried = is_operator_retry(message.headers)
            incident = self._incident_now()
            rng = self._rng("process", pid)
            # Always the same draws, in the same order, so that a payment's fate
            # depends only on the seed, its id and the options.
            u_latency, u_outage, u_failure, u_reason = (
                rng.random(),
                rng.random(),
                rng.random(),
                rng.random(),
            )
            u_decline, u_decline_reason, u_review, u_score = (
                rng.random(),
                rng.random(),
                rng.random(),
                rng.random(),
            )
            options = self._options
            latency_ms = _skewed_ms(u_latency, 5.0, 80.0)
            if incident:
                latency_ms *= options.incident_latency_factor
            await asyncio.sleep(latency_ms / 1000)
            headers = message.headers
            if not retried:
                reason: str | None = None
                if incident and u_outage < options.incident_failure_rate:
                    reason = REASON_OUTAGE
                elif u_failure < options.failure_rate:
                    reason = _pick(FAILURE_REASONS, u_reason)
                if reason is not None:
                    await self._emit(outlet, payment, FAILED, headers, reason)
                    await message.reject(requeue=False)  # the broker dead-letters it
                    self._dead_lettered += 1
                    self._finish(pid)
                    return
                if u_decline < options.decline_rate:
                    decline_reason = _pick(DECLINE_REASONS, u_decline_reason)
                    await self._emit(outlet, payment, DECLINED, headers, decline_reason)
                    self._finish(pid)
                    return
                if u_review < options.review_rate:
                    review = {**payment, "risk_score": round(0.7 + 0.3 * u_score, 3)}
                    ttl_s = options.fraudcheck_ttl_ms / 1000
                    # Noted before the publish: the risk engine may have it before the confirm.
                    self._awaiting_review[pid] = time.monotonic() + ttl_s
                    key = self._topology.fraudcheck_key(merchant)
                    await self._forward(outlet, review, key, carried_headers(headers))
                    await self._emit(outlet, payment, REVIEW, headers)
                    return
            await self._authorize(outlet, payment, headers, retried)

    async def _authorize(
        self, outlet: Outlet, payment: Mapping[str, Any], headers: HeadersType, retried: bool
    ) -> None:
        """Report the payment authorized and send it for settlement (without the card)."""
        pid = str(payment["payment_id"])
        merchant = str(payment.get("merchant") or "unknown")
        rng = self._rng("auth", pid)
        settle = {key: value for key, value in payment.items() if key not in ("card", "risk_score")}
        settle["auth_code"] = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=6))
        settle["authorized_at"] = _now_ms()
        carried = carried_headers(headers)
        if retried:
            carried[RETRY_MARKER_HEADER] = True
        await self._emit(outlet, payment, AUTHORIZED, headers)
        await self._forward(outlet, settle, self._topology.settle_key(merchant), carried)

    async def _handle_fraudcheck(self, outlet: Outlet, message: AbstractIncomingMessage) -> None:
        """The risk engine: approve (authorize) or decline as suspected fraud."""
        async with message.process(requeue=True, ignore_processed=True):
            payment = parse_payment(message.body)
            if payment is None:
                await self._reject_unreadable(outlet, message)
                return
            pid: str = payment["payment_id"]
            self._awaiting_review.pop(pid, None)
            retried = is_operator_retry(message.headers)
            rng = self._rng("risk", pid)
            u_latency, u_decline = rng.random(), rng.random()
            await asyncio.sleep(_skewed_ms(u_latency, 20.0, 150.0) / 1000)
            if not retried and u_decline < self._options.risk_decline_rate:
                await self._emit(outlet, payment, DECLINED, message.headers, REASON_SUSPECTED_FRAUD)
                self._finish(pid)
                return
            await self._authorize(outlet, payment, message.headers, retried)

    async def _handle_settlement(self, outlet: Outlet, message: AbstractIncomingMessage) -> None:
        """The settlement worker: capture, or nack for redelivery when the acquirer is flaky."""
        async with message.process(requeue=True, ignore_processed=True):
            payment = parse_payment(message.body)
            if payment is None:
                await self._reject_unreadable(outlet, message)
                return
            pid: str = payment["payment_id"]
            options = self._options
            attempt = delivery_count(message.headers)
            stuck = self._rng("settle-stuck", pid).random() < options.settlement_stuck_rate
            rng = self._rng("settle", pid, attempt)
            u_flaky, u_latency = rng.random(), rng.random()
            flaky = stuck or u_flaky < options.settlement_retry_rate
            if is_operator_retry(message.headers) or not flaky:
                await asyncio.sleep(_skewed_ms(u_latency, 5.0, 40.0) / 1000)
                await self._emit(outlet, payment, CAPTURED, message.headers)
                self._finish(pid)
                return
            await asyncio.sleep(_skewed_ms(u_latency, 20.0, 120.0) / 1000)  # acquirer times out
            if attempt >= self._topology.settlement_delivery_limit:
                # This nack makes the broker dead-letter the message (delivery_limit).
                await self._emit(
                    outlet, payment, FAILED, message.headers, REASON_SETTLEMENT_EXHAUSTED
                )
                await message.nack(requeue=True)
                self._delivery_limit_exceeded += 1
                self._finish(pid)
                return
            await message.nack(requeue=True)
            self._settlement_retries += 1
