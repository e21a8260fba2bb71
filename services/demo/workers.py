"""The demo flow's workers: process, risk engine, settlement (:mod:`services.demo.simulator`).

They are idempotent consumers (:mod:`services.demo.idempotency`): before any
work a payment is looked up in the record of captured payments, and the
settlement worker records a capture atomically with the decision to make it.
A delivery of a payment already captured is acknowledged as it is and
reported as a ``duplicate`` event (reason "already captured"), carrying the
same headers as the stage's other events, so a replay stays marked as one.

Failures carry their cause in the ``failed`` event's ``reason``
(:mod:`services.demo.failures`). The payment is dead-lettered with the same
payment id in its body: by the broker (``rejected``, ``delivery_limit``) or,
for a schema-validation failure, by a Spring-style republishing recoverer
that puts the message with ``x-exception-message`` straight into the
dead-letter queue.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage, DeliveryMode, HeadersType

from services.demo import failures
from services.demo.idempotency import CaptureLedger, forget_quietly
from services.demo.options import SimulationOptions
from services.demo.payments import (
    AUTHORIZED,
    CAPTURED,
    DECLINE_REASONS,
    DECLINED,
    DUPLICATE,
    FAILED,
    REASON_ALREADY_CAPTURED,
    REASON_SUSPECTED_FRAUD,
    RETRY_MARKER_HEADER,
    REVIEW,
    carried_headers,
    delivery_count,
    is_operator_retry,
    parse_payment,
    status_event,
)
from services.demo.stage import Outlet
from services.demo.topology import DemoTopology

APP_ID: Final = "payops-simulator"
JSON: Final = "application/json"


def now_ms() -> int:
    """Wall-clock time, epoch milliseconds."""
    return time.time_ns() // 1_000_000


def pick(choices: tuple[tuple[str, float], ...], u: float) -> str:
    """The choice whose cumulative weight first exceeds ``u`` (0 <= u < 1)."""
    total = sum(weight for _, weight in choices)
    running = 0.0
    for choice, weight in choices:
        running += weight / total
        if u < running:
            return choice
    return choices[-1][0]


def skewed_ms(u: float, low: float, high: float) -> float:
    """A latency between low and high ms, mostly near low."""
    return low + (high - low) * u * u


@dataclass
class Tally:
    """The run's counters and its payments in flight, shared by the gateway and the workers."""

    published: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0  # rejected by a worker: the broker dead-letters them
    republished: int = 0  # put into the dead-letter queue by the Spring-style recoverer
    delivery_limit_exceeded: int = 0
    expired: int = 0
    settlement_retries: int = 0
    duplicates: int = 0
    pending: set[str] = field(default_factory=set)  # this run's payments without an outcome
    awaiting_review: dict[str, float] = field(default_factory=dict)  # id -> TTL deadline


class Workers:
    """The handlers of the three stages, and the status events they publish."""

    def __init__(
        self,
        options: SimulationOptions,
        topology: DemoTopology,
        *,
        seed: int,
        tally: Tally,
        ledger: CaptureLedger,
        incident_now: Callable[[], bool],
    ) -> None:
        self._options = options
        self._topology = topology
        self._seed = seed
        self._tally = tally
        self._ledger = ledger
        self._incident_now = incident_now

    # -- publishing -----------------------------------------------------------------

    def rng(self, *key: object) -> random.Random:
        """A generator for one decision about one payment, from the seed."""
        return random.Random("/".join([str(self._seed), *map(str, key)]))

    async def emit(
        self,
        outlet: Outlet,
        payment: Mapping[str, Any],
        status: str,
        headers: HeadersType | None,
        reason: str | None = None,
    ) -> None:
        """Publish a status event (``payment.<status>``) and count it once confirmed."""
        at_ms = now_ms()
        message = aio_pika.Message(
            orjson.dumps(status_event(payment, status, at_ms, reason)),
            content_type=JSON,
            message_id=uuid.uuid4().hex,
            timestamp=at_ms / 1000,
            app_id=APP_ID,
            type=f"payment.{status}",
            headers=carried_headers(headers),
        )
        # Not mandatory: nobody has to listen to status events.
        await outlet.events.publish(message, self._topology.event_key(status), mandatory=False)
        self._tally.by_status[status] += 1

    async def _forward(
        self, outlet: Outlet, body: Mapping[str, Any], routing_key: str, headers: HeadersType
    ) -> None:
        message = aio_pika.Message(
            orjson.dumps(body),
            content_type=JSON,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=str(body.get("payment_id")),
            timestamp=now_ms() / 1000,
            app_id=APP_ID,
            headers=dict(headers),
        )
        await outlet.payments.publish(message, routing_key, mandatory=True)

    def _finish(self, payment_id: str) -> None:
        self._tally.pending.discard(payment_id)

    # -- failures and duplicates ------------------------------------------------------

    async def _reject_unreadable(self, outlet: Outlet, message: AbstractIncomingMessage) -> None:
        """A body that is not a payment: report it failed and dead-letter it."""
        fallback = {"payment_id": message.message_id}
        await self.emit(outlet, fallback, FAILED, message.headers, failures.UNREADABLE_BODY)
        await message.reject(requeue=False)
        self._tally.dead_lettered += 1

    async def _fail(
        self,
        outlet: Outlet,
        message: AbstractIncomingMessage,
        payment: Mapping[str, Any],
        cause: str,
    ) -> None:
        """Report the payment failed and dead-letter it: a schema failure through the
        Spring-style recoverer, anything else by rejecting it (the broker dead-letters it)."""
        await self.emit(outlet, payment, FAILED, message.headers, cause)
        if not cause.startswith(failures.SCHEMA_INVALID):
            await message.reject(requeue=False)
            self._tally.dead_lettered += 1
            return
        headers = failures.spring_recoverer_headers(
            message.headers,
            cause,
            original_exchange=message.exchange or "",
            original_routing_key=message.routing_key or "",
        )
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=DeliveryMode.PERSISTENT,
            correlation_id=message.correlation_id,
            message_id=message.message_id,
            timestamp=message.timestamp,
            type=message.type,
            app_id=message.app_id,
        )
        await outlet.direct.publish(copy, self._topology.dead_letter_queue, mandatory=True)
        await message.ack()
        self._tally.republished += 1

    async def _already_captured(
        self, outlet: Outlet, message: AbstractIncomingMessage, payment: Mapping[str, Any]
    ) -> bool:
        """Whether the payment was captured; if so, report the delivery a duplicate."""
        payment_id = str(payment["payment_id"])
        if not await self._ledger.captured(payment_id):
            return False
        await self._duplicate(outlet, message, payment)
        return True

    async def _payment_to_handle(
        self, outlet: Outlet, message: AbstractIncomingMessage
    ) -> dict[str, Any] | None:
        """The message's payment; None when its body is not one (dead-lettered) or the
        payment was captured already (a duplicate): nothing more to do."""
        payment = parse_payment(message.body)
        if payment is None:
            await self._reject_unreadable(outlet, message)
            return None
        if await self._already_captured(outlet, message, payment):
            return None
        return payment

    async def _duplicate(
        self, outlet: Outlet, message: AbstractIncomingMessage, payment: Mapping[str, Any]
    ) -> None:
        await self.emit(outlet, payment, DUPLICATE, message.headers, REASON_ALREADY_CAPTURED)
        self._tally.duplicates += 1
        self._finish(str(payment["payment_id"]))

    # -- the stages -------------------------------------------------------------------

    async def handle_request(self, outlet: Outlet, message: AbstractIncomingMessage) -> None:
        """The process worker: authorize, decline, send to review, or fail."""
        async with message.process(requeue=True, ignore_processed=True):
            payment = await self._payment_to_handle(outlet, message)
            if payment is None:
                return
            pid: str = payment["payment_id"]
            merchant = str(payment.get("merchant") or "unknown")
            retried = is_operator_retry(message.headers)
            incident = self._incident_now()
            rng = self.rng("process", pid)
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
            latency_ms = skewed_ms(u_latency, 5.0, 80.0)
            if incident:
                latency_ms *= options.incident_latency_factor
            await asyncio.sleep(latency_ms / 1000)
            headers = message.headers
            if not retried:
                cause: str | None = None
                if incident and u_outage < options.incident_failure_rate:
                    kind = pick(failures.INCIDENT_KINDS, u_reason)
                    cause = failures.cause_of(kind, self.rng("cause", pid))
                elif u_failure < options.failure_rate:
                    kind = pick(failures.FAILURE_KINDS, u_reason)
                    cause = failures.cause_of(kind, self.rng("cause", pid))
                if cause is not None:
                    await self._fail(outlet, message, payment, cause)
                    self._finish(pid)
                    return
                if u_decline < options.decline_rate:
                    decline_reason = pick(DECLINE_REASONS, u_decline_reason)
                    await self.emit(outlet, payment, DECLINED, headers, decline_reason)
                    self._finish(pid)
                    return
                if u_review < options.review_rate:
                    review = {**payment, "risk_score": round(0.7 + 0.3 * u_score, 3)}
                    ttl_s = self._topology.fraudcheck_ttl_ms / 1000
                    # Noted before the publish: the risk engine may have it before the confirm.
                    self._tally.awaiting_review[pid] = time.monotonic() + ttl_s
                    key = self._topology.fraudcheck_key(merchant)
                    await self._forward(outlet, review, key, carried_headers(headers))
                    await self.emit(outlet, payment, REVIEW, headers)
                    return
            await self._authorize(outlet, payment, headers, retried)

    async def _authorize(
        self, outlet: Outlet, payment: Mapping[str, Any], headers: HeadersType, retried: bool
    ) -> None:
        """Report the payment authorized and send it for settlement (without the card)."""
        pid = str(payment["payment_id"])
        merchant = str(payment.get("merchant") or "unknown")
        rng = self.rng("auth", pid)
        settle = {key: value for key, value in payment.items() if key not in ("card", "risk_score")}
        settle["auth_code"] = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=6))
        settle["authorized_at"] = now_ms()
        carried = carried_headers(headers)
        if retried:
            carried[RETRY_MARKER_HEADER] = True
        await self.emit(outlet, payment, AUTHORIZED, headers)
        await self._forward(outlet, settle, self._topology.settle_key(merchant), carried)

    async def handle_fraudcheck(self, outlet: Outlet, message: AbstractIncomingMessage) -> None:
        """The risk engine: approve (authorize) or decline as suspected fraud."""
        async with message.process(requeue=True, ignore_processed=True):
            payment = parse_payment(message.body)
            if payment is None:
                await self._reject_unreadable(outlet, message)
                return
            pid: str = payment["payment_id"]
            self._tally.awaiting_review.pop(pid, None)
            if await self._already_captured(outlet, message, payment):
                return
            retried = is_operator_retry(message.headers)
            rng = self.rng("risk", pid)
            u_latency, u_decline = rng.random(), rng.random()
            await asyncio.sleep(skewed_ms(u_latency, 20.0, 150.0) / 1000)
            if not retried and u_decline < self._options.risk_decline_rate:
                await self.emit(outlet, payment, DECLINED, message.headers, REASON_SUSPECTED_FRAUD)
                self._finish(pid)
                return
            await self._authorize(outlet, payment, message.headers, retried)

    async def handle_settlement(self, outlet: Outlet, message: AbstractIncomingMessage) -> None:
        """The settlement worker: capture once, or nack for redelivery when the acquirer is
        flaky."""
        async with message.process(requeue=True, ignore_processed=True):
            payment = await self._payment_to_handle(outlet, message)
            if payment is None:
                return
            pid: str = payment["payment_id"]
            options = self._options
            attempt = delivery_count(message.headers)
            stuck = self.rng("settle-stuck", pid).random() < options.settlement_stuck_rate
            rng = self.rng("settle", pid, attempt)
            u_flaky, u_latency = rng.random(), rng.random()
            flaky = stuck or u_flaky < options.settlement_retry_rate
            if is_operator_retry(message.headers) or not flaky:
                await asyncio.sleep(skewed_ms(u_latency, 5.0, 40.0) / 1000)
                await self._capture(outlet, message, payment)
                return
            await asyncio.sleep(skewed_ms(u_latency, 20.0, 120.0) / 1000)  # acquirer times out
            if attempt >= self._topology.settlement_delivery_limit:
                # This nack makes the broker dead-letter the message (delivery_limit).
                cause = failures.settlement_exhausted(attempt + 1, self.rng("cause", pid))
                await self.emit(outlet, payment, FAILED, message.headers, cause)
                await message.nack(requeue=True)
                self._tally.delivery_limit_exceeded += 1
                self._finish(pid)
                return
            await message.nack(requeue=True)
            self._tally.settlement_retries += 1

    async def _capture(
        self, outlet: Outlet, message: AbstractIncomingMessage, payment: Mapping[str, Any]
    ) -> None:
        """Capture the payment unless another delivery of it did (then it is a duplicate)."""
        pid = str(payment["payment_id"])
        if not await self._ledger.record(pid, now_ms()):
            await self._duplicate(outlet, message, payment)
            return
        try:
            await self.emit(outlet, payment, CAPTURED, message.headers)
        except BaseException:
            # Not reported: the delivery goes back to the queue, and its next
            # delivery must capture it rather than call it a duplicate.
            await forget_quietly(self._ledger, pid)
            raise
        self._finish(pid)
