"""A headless simulator of the demo payment flow (see :mod:`services.demo.topology`).

One connection, one channel per role:

- the *gateway* publishes payment requests at a steady rate (publisher
  confirms, ``mandatory``) plus a ``requested`` status event for each;
- the *process worker* authorizes, declines, sends high-risk payments to the
  fraud check, or fails a payment; a failed payment gets a ``failed`` event
  whose reason is its cause ("acquirer timeout after 3012 ms on acq-7", see
  :mod:`services.demo.failures`) and is rejected without requeue, so RabbitMQ
  dead-letters it (``rejected``) to ``payments.dlx`` -> ``payments.dlq``; a
  schema-validation failure instead goes into ``payments.dlq`` the way a
  Spring AMQP republishing recoverer sends it, with ``x-exception-message``;
- the *risk engine* works through ``payments.fraudcheck``; it is down during an
  incident, so fraud checks wait until the queue's TTL dead-letters them
  (``expired``);
- the *settlement worker* captures authorized payments from the quorum queue
  ``payments.settlement``; the acquirer is sometimes flaky, so it nacks with
  requeue and the broker redelivers, and a payment that keeps failing exceeds
  the delivery limit and is dead-lettered (``delivery_limit``). The worker
  sees the last attempt coming (``x-delivery-count``) and reports the payment
  ``failed`` ("settlement retries exhausted after 4 attempts …") before that
  final nack.

The workers are idempotent consumers: a payment captured once is recorded in
Redis, and a later delivery of it (an operator's replay of a payment the flow
had captured) is acknowledged without a second capture and reported as a
``duplicate`` event (:mod:`services.demo.idempotency`, :mod:`services.demo.workers`).

Every stage publishes status events to ``payments.events`` with routing key
``payment.<status>`` (``requested``, ``review``, ``authorized``, ``captured``,
``declined``, ``failed``, ``duplicate``). Each payment of a run ends with
exactly one of ``captured``, ``declined``, ``failed``, ``duplicate`` or an
expiry in the fraud check. A failure event and the dead letter it goes with
carry the same payment id.

A message that an operator sent back (it has an ``x-death``,
``payops-action-id`` or ``payops-attempt`` header) always goes through to
``captured`` (unless it was captured already), so a requeue visibly succeeds.

With a ``seed`` the payments (ids, merchants, amounts, cards) and each
payment's outcome are reproducible: outcomes are drawn per payment from the
seed and the payment id, not from the order in which concurrent workers happen
to run. Only what depends on wall-clock time differs between runs: timestamps,
and which payments fall inside the incident window. The payments and their
messages are in :mod:`services.demo.payments`, a stage's consumer in
:mod:`services.demo.stage`, the options and counters in :mod:`services.demo.options`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final

import aio_pika
import orjson
import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, DeliveryMode, HeadersType

from services.demo.idempotency import CaptureLedger, MemoryCaptureLedger, RedisCaptureLedger
from services.demo.options import SimulationOptions, SimulationStats
from services.demo.payments import REQUESTED, Payment, PaymentGenerator
from services.demo.stage import Outlet, Stage
from services.demo.topology import DemoTopology, declare_demo_topology
from services.demo.workers import APP_ID, JSON, Tally, Workers, now_ms
from services.links.amqp_connect import connect_aio_pika
from services.links.endpoints import AmqpTarget

__all__ = ["ProgressCallback", "SimulationOptions", "SimulationStats", "run_simulation"]

log = logging.getLogger(__name__)

_PROCESS_PREFETCH: Final = 50
_RISK_PREFETCH: Final = 10
_SETTLEMENT_PREFETCH: Final = 20
_MAX_BATCH: Final = 500
_EXPIRY_GRACE_S: Final = 1.0
_DRAIN_POLL_S: Final = 0.1


ProgressCallback = Callable[[SimulationStats], None]


async def run_simulation(
    amqp: AmqpTarget,
    options: SimulationOptions,
    on_progress: ProgressCallback | None = None,
    *,
    redis: aioredis.Redis | None = None,
    redis_prefix: str = "payops",
) -> SimulationStats:
    """Declare the demo topology and run the payment flow on it.

    Runs for ``options.duration_s`` (then stops publishing, waits for the
    payments in flight and returns the final stats) or, when that is None,
    until cancelled. ``on_progress`` gets the stats about once a second and
    once more at the end. On cancellation, consumers, channels and the
    connection are closed; unacknowledged messages go back to their queues.

    The workers record captured payments in ``redis`` under ``redis_prefix``
    (:mod:`services.demo.idempotency`); without ``redis``, in this process only.
    """
    ledger: CaptureLedger = (
        MemoryCaptureLedger(options.idempotency_ttl_s)
        if redis is None
        else RedisCaptureLedger(redis, redis_prefix, options.prefix, options.idempotency_ttl_s)
    )
    return await _Simulation(amqp, options, on_progress, ledger).run()


# -- the machinery ---------------------------------------------------------------


class _Simulation:
    def __init__(
        self,
        amqp: AmqpTarget,
        options: SimulationOptions,
        on_progress: ProgressCallback | None,
        ledger: CaptureLedger,
    ) -> None:
        self._amqp = amqp
        self._options = options
        self._on_progress = on_progress
        self._seed = (
            options.seed if options.seed is not None else random.SystemRandom().getrandbits(63)
        )
        self._topology = DemoTopology.for_prefix(
            options.prefix, fraudcheck_ttl_ms=options.fraudcheck_ttl_ms
        )
        self._start = time.monotonic()
        self._tally = Tally()
        self._workers = Workers(
            options,
            self._topology,
            seed=self._seed,
            tally=self._tally,
            ledger=ledger,
            incident_now=self._incident_now,
        )
        self._channels: list[AbstractChannel] = []
        self._stages: list[Stage] = []

    # -- lifecycle --------------------------------------------------------------

    async def run(self) -> SimulationStats:
        connection = await connect_aio_pika(self._amqp)
        try:
            ops = await self._open_channel(connection)
            await declare_demo_topology(
                ops, self._options.prefix, fraudcheck_ttl_ms=self._options.fraudcheck_ttl_ms
            )
            gateway = await self._outlet(await self._open_channel(connection))
            process = await self._stage(connection, "process", self._workers.handle_request)
            risk = await self._stage(connection, "risk", self._workers.handle_fraudcheck)
            settlement = await self._stage(
                connection, "settlement", self._workers.handle_settlement
            )
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
            direct=channel.default_exchange,
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
        tally = self._tally
        return SimulationStats(
            published=tally.published,
            by_status=dict(tally.by_status),
            dead_lettered=tally.dead_lettered,
            delivery_limit_exceeded=tally.delivery_limit_exceeded,
            expired=tally.expired,
            settlement_retries=tally.settlement_retries,
            republished=tally.republished,
            duplicates=tally.duplicates,
            in_flight=len(tally.pending),
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
            idle = not self._tally.pending and all(stage.busy == 0 for stage in self._stages)
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
                    "simulation: gave up waiting for %d payments in flight",
                    len(self._tally.pending),
                )
                return
            await asyncio.sleep(_DRAIN_POLL_S)

    def _sweep_expired(self) -> None:
        """Count fraud checks whose TTL ran out (the broker has dead-lettered them)."""
        cutoff = time.monotonic() - _EXPIRY_GRACE_S
        tally = self._tally
        gone = [pid for pid, deadline in tally.awaiting_review.items() if deadline < cutoff]
        for pid in gone:
            del tally.awaiting_review[pid]
            tally.pending.discard(pid)
        tally.expired += len(gone)

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
            created_at = now_ms()
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
        # Before the publish: a worker may finish it before the confirm.
        self._tally.pending.add(payment.payment_id)
        await asyncio.gather(
            outlet.payments.publish(
                request, self._topology.request_key(payment.merchant), mandatory=True
            ),
            self._workers.emit(outlet, payment.body(), REQUESTED, headers),
        )
        self._tally.published += 1
