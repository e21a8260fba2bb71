"""The demo payment flow's RabbitMQ topology: exchanges, queues, arguments, bindings.

The flow (names shown with the default empty prefix)::

    gateway --payment.request.<merchant>--> [payments] (topic)
        payment.request.#    -> payments.process     classic; DLX payments.dlx
        payment.fraudcheck.# -> payments.fraudcheck  classic; x-message-ttl; DLX payments.dlx
        payment.settle.#     -> payments.settlement  quorum; x-delivery-limit 3; DLX payments.dlx

    every stage --payment.<status>--> [payments.events] (topic; the console taps it with #)

    [payments.dlx] (topic; the console taps it with #)
        #                    -> payments.dlq          classic

Where the dead letters come from, one source per reason:

- ``rejected``: the process worker rejects (``requeue=False``) a payment it
  cannot process: acquirer timeout, risk engine unavailable, or an acquirer
  outage during an incident.
- no ``x-death``: a payment that fails schema validation is put into
  ``payments.dlq`` by the process worker itself, as a Spring AMQP
  ``RepublishMessageRecoverer`` does (default exchange, with
  ``x-exception-message``, ``x-exception-stacktrace``, ``x-original-exchange``
  and ``x-original-routingKey``); it never passes ``payments.dlx``.
- ``delivery_limit``: the settlement worker nacks with ``requeue=True`` when
  the acquirer is flaky; a payment that keeps failing is redelivered until the
  quorum queue's delivery limit is exceeded and the broker dead-letters it.
- ``expired``: high-risk payments wait in ``payments.fraudcheck`` for the risk
  engine. A checkout waits only so long for a risk decision, so the queue has a
  message TTL; while the risk engine is down (the incident) they expire.

No queue sets ``x-dead-letter-routing-key``, so dead letters keep their
routing key (``payment.request.<merchant>`` and so on), and the console can
tell the stage apart by key as well as by ``x-death``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aio_pika.abc import AbstractChannel, ExchangeType, HeadersType
from aio_pika.exceptions import ChannelPreconditionFailed

from services.links.amqp_connect import connect_aio_pika
from services.links.endpoints import AmqpTarget

DEFAULT_FRAUDCHECK_TTL_MS = 10_000
"""How long a payment waits for the risk engine before it expires (ms)."""

SETTLEMENT_DELIVERY_LIMIT = 3
"""Unsuccessful deliveries a settlement may have before the broker dead-letters it."""


class TopologyConflictError(Exception):
    """A queue or exchange exists with other arguments than the demo expects.

    RabbitMQ closes the channel on such a conflict (PRECONDITION_FAILED), so
    the channel passed in is unusable afterwards.
    """


@dataclass(frozen=True)
class DemoTopology:
    """Names and arguments of the demo payment flow, all under one prefix.

    Build it with :meth:`for_prefix`; the default empty prefix gives the names
    of the ``demo`` profile (``payments.events``, ``payments.dlq`` …).
    """

    prefix: str
    payments_exchange: str
    events_exchange: str
    dlx_exchange: str
    process_queue: str
    settlement_queue: str
    fraudcheck_queue: str
    dead_letter_queue: str
    fraudcheck_ttl_ms: int = DEFAULT_FRAUDCHECK_TTL_MS
    settlement_delivery_limit: int = SETTLEMENT_DELIVERY_LIMIT

    @classmethod
    def for_prefix(
        cls, prefix: str = "", *, fraudcheck_ttl_ms: int = DEFAULT_FRAUDCHECK_TTL_MS
    ) -> DemoTopology:
        """The demo topology with every exchange and queue name prefixed."""
        if fraudcheck_ttl_ms < 1:
            raise ValueError(f"fraudcheck_ttl_ms must be >= 1, not {fraudcheck_ttl_ms}")
        return cls(
            prefix=prefix,
            payments_exchange=f"{prefix}payments",
            events_exchange=f"{prefix}payments.events",
            dlx_exchange=f"{prefix}payments.dlx",
            process_queue=f"{prefix}payments.process",
            settlement_queue=f"{prefix}payments.settlement",
            fraudcheck_queue=f"{prefix}payments.fraudcheck",
            dead_letter_queue=f"{prefix}payments.dlq",
            fraudcheck_ttl_ms=fraudcheck_ttl_ms,
        )

    # -- routing keys ---------------------------------------------------------

    @staticmethod
    def request_key(merchant: str) -> str:
        """Routing key of a payment request on the payments exchange."""
        return f"payment.request.{merchant}"

    @staticmethod
    def fraudcheck_key(merchant: str) -> str:
        """Routing key of a payment sent to the risk engine."""
        return f"payment.fraudcheck.{merchant}"

    @staticmethod
    def settle_key(merchant: str) -> str:
        """Routing key of an authorized payment sent for settlement (capture)."""
        return f"payment.settle.{merchant}"

    @staticmethod
    def event_key(status: str) -> str:
        """Routing key of a status event on the events exchange."""
        return f"payment.{status}"

    # -- what the console's profile refers to ---------------------------------

    @property
    def exchanges(self) -> tuple[str, ...]:
        """All exchanges, in declaration order."""
        return (self.dlx_exchange, self.payments_exchange, self.events_exchange)

    @property
    def queues(self) -> tuple[str, ...]:
        """All queues, in declaration order."""
        return (
            self.dead_letter_queue,
            self.process_queue,
            self.fraudcheck_queue,
            self.settlement_queue,
        )

    @property
    def tap_exchanges(self) -> tuple[str, ...]:
        """Exchanges the console taps with ``#`` (both are topic exchanges)."""
        return (self.events_exchange, self.dlx_exchange)

    @property
    def watch_queues(self) -> tuple[str, ...]:
        """Queues worth watching the depth of."""
        return (
            self.process_queue,
            self.settlement_queue,
            self.fraudcheck_queue,
            self.dead_letter_queue,
        )

    @property
    def dead_letter_queues(self) -> tuple[str, ...]:
        """Queues holding dead letters (what the console parks)."""
        return (self.dead_letter_queue,)

    # -- declaration details --------------------------------------------------

    def queue_arguments(self, queue: str) -> HeadersType:
        """The ``x-`` arguments a queue is declared with."""
        dlx: HeadersType = {"x-dead-letter-exchange": self.dlx_exchange}
        if queue == self.process_queue:
            return dlx
        if queue == self.fraudcheck_queue:
            return {"x-message-ttl": self.fraudcheck_ttl_ms, **dlx}
        if queue == self.settlement_queue:
            return {
                "x-queue-type": "quorum",
                "x-delivery-limit": self.settlement_delivery_limit,
                **dlx,
            }
        if queue == self.dead_letter_queue:
            return {}
        raise KeyError(f"{queue!r} is not a queue of this topology")

    def describe(self) -> str:
        """A few lines for people: every exchange and queue with its arguments and bindings."""
        lines = [f"exchange {name}  (topic, durable)" for name in self.exchanges]
        for queue in self.queues:
            arguments = dict(self.queue_arguments(queue))
            kind = str(arguments.pop("x-queue-type", "classic"))
            extra = "".join(f", {key}={value!s}" for key, value in arguments.items())
            lines.append(f"queue    {queue}  ({kind}, durable{extra})")
            lines.extend(
                f"           <- {exchange}  {key!r}"
                for queue_name, exchange, key in self.bindings
                if queue_name == queue
            )
        return "\n".join(lines)

    @property
    def bindings(self) -> tuple[tuple[str, str, str], ...]:
        """``(queue, exchange, binding key)`` for every binding."""
        return (
            (self.dead_letter_queue, self.dlx_exchange, "#"),
            (self.process_queue, self.payments_exchange, "payment.request.#"),
            (self.fraudcheck_queue, self.payments_exchange, "payment.fraudcheck.#"),
            (self.settlement_queue, self.payments_exchange, "payment.settle.#"),
        )


async def declare_demo_topology(
    channel: AbstractChannel,
    prefix: str = "",
    *,
    fraudcheck_ttl_ms: int = DEFAULT_FRAUDCHECK_TTL_MS,
) -> DemoTopology:
    """Declare the demo flow's exchanges, queues and bindings (idempotent).

    Declaring what already exists with the same arguments is a no-op. If a
    queue or exchange exists with other arguments, raises
    :class:`TopologyConflictError` (and the broker has closed ``channel``).
    """
    topology = DemoTopology.for_prefix(prefix, fraudcheck_ttl_ms=fraudcheck_ttl_ms)
    for name in topology.exchanges:
        try:
            await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)
        except ChannelPreconditionFailed as exc:
            raise TopologyConflictError(
                f"exchange {name!r} exists but is not a durable topic exchange ({exc});"
                " delete it or use another prefix"
            ) from exc
    for name in topology.queues:
        arguments = topology.queue_arguments(name)
        try:
            queue = await channel.declare_queue(name, durable=True, arguments=arguments or None)
        except ChannelPreconditionFailed as exc:
            raise TopologyConflictError(
                f"queue {name!r} exists with other arguments than {arguments!r} ({exc});"
                " delete it or use another prefix"
            ) from exc
        for queue_name, exchange, key in topology.bindings:
            if queue_name == name:
                await queue.bind(exchange, key)
    return topology


async def declare_demo_topology_at(
    amqp: AmqpTarget,
    prefix: str = "",
    *,
    fraudcheck_ttl_ms: int = DEFAULT_FRAUDCHECK_TTL_MS,
) -> DemoTopology:
    """Connect to ``amqp`` (the profile's endpoint, or a URL), declare the demo topology
    and disconnect."""
    connection = await connect_aio_pika(amqp)
    try:
        channel = await connection.channel()
        return await declare_demo_topology(channel, prefix, fraudcheck_ttl_ms=fraudcheck_ttl_ms)
    finally:
        await connection.close()


async def delete_demo_topology(channel: AbstractChannel, prefix: str = "") -> None:
    """Delete the demo flow's queues and exchanges (their messages are lost).

    Deleting what does not exist is not an error.
    """
    topology = DemoTopology.for_prefix(prefix)
    for name in topology.queues:
        await channel.queue_delete(name)
    for name in topology.exchanges:
        await channel.exchange_delete(name)
