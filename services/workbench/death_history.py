"""A message's dead-letter history across requeues: ``payops-deaths``.

RabbitMQ counts deaths in ``x-death``, which a requeue or retry must drop (a
client may not set ``x-`` headers, and the old counts would be wrong), so a
requeued message that fails again starts at ``count`` 1 and a consumer that
gives up after N deaths never does. A requeue therefore carries the history
in two headers of our own (:func:`carried_headers`):

- ``payops-deaths``: how many times the message died before this requeue, in
  all cycles (an integer); a consumer's total is this plus the ``count`` of
  every ``x-death`` entry it sees;
- ``payops-death-history``: the ``x-death`` entries of the earlier cycles,
  most recent first (tables with ``queue``, ``reason``, ``count``, ``time``,
  ``exchange``, ``routing-keys``), at most :data:`MAX_HOPS`.

Where a requeue sends a message back (:func:`origin_of`): the queue it was
dead-lettered from, ``x-death[0].queue`` (else ``x-first-death-queue``),
through the default exchange - that queue only. A dead letter that the
application republished itself, as Spring AMQP's ``RepublishMessageRecoverer``
does, has no ``x-death``: it names its original exchange and routing key in
``x-original-exchange`` and ``x-original-routingKey``, and goes back through
them (every queue bound to that exchange with that key gets it, as when it
was first published).

Restoring ``expiration``: when RabbitMQ dead-letters a message it removes the
``expiration`` property and records it as ``original-expiration`` in
``x-death``; :func:`republish_properties` puts it back, so the message returns
with the properties it was published with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from services.workbench.codec import DeathRecord, MessageRecord, parse_x_death

DEATHS_HEADER: Final = "payops-deaths"
HISTORY_HEADER: Final = "payops-death-history"
MAX_HOPS: Final = 50
ORIGINAL_EXCHANGE_HEADER: Final = "x-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER: Final = "x-original-routingKey"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a requeue or retry publishes a parked message: ``exchange`` ("" is the
    default exchange, whose routing key is the queue's name) and ``routing_key``."""

    exchange: str
    routing_key: str

    @property
    def queue(self) -> str | None:
        """The one queue it goes to (None when an exchange routes it)."""
        return self.routing_key if not self.exchange else None

    def describe(self) -> str:
        """``queue 'q'`` or ``exchange 'e' (routing key 'k')``, for people."""
        if self.queue is not None:
            return f"queue '{self.queue}'"
        return f"exchange '{self.exchange}' (routing key '{self.routing_key}')"

    @property
    def name(self) -> str:
        """Short: the queue's name, or ``e/k`` for an exchange and routing key."""
        return self.queue if self.queue is not None else f"{self.exchange}/{self.routing_key}"


def _header_str(headers: Mapping[str, Any], key: str) -> str | None:
    value = headers.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return None


def original_routing_key(headers: Mapping[str, Any]) -> str | None:
    """The routing key an application's republished dead letter names
    (``x-original-routingKey``), None without one."""
    return _header_str(headers, ORIGINAL_ROUTING_KEY_HEADER)


def origin_of(
    headers: Mapping[str, Any], deaths: tuple[DeathRecord, ...] | None = None
) -> Origin | None:
    """Where a requeue sends a message with ``headers`` back (see the module docstring);
    None when the headers name no queue and no original routing. ``deaths``: their
    ``x-death`` parsed already (:func:`~services.workbench.codec.parse_x_death`)."""
    if deaths is None:
        deaths = parse_x_death(headers)
    queue = deaths[0].queue if deaths else ""
    if not queue:
        queue = _header_str(headers, "x-first-death-queue") or ""
    if queue:
        return Origin("", queue)
    routing_key = original_routing_key(headers)
    if routing_key is None:
        return None
    exchange = _header_str(headers, ORIGINAL_EXCHANGE_HEADER) or ""
    if not exchange and not routing_key:
        return None
    return Origin(exchange, routing_key)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)


def earlier_deaths(headers: Mapping[str, Any]) -> int:
    """Deaths in cycles before the last requeue (``payops-deaths``), 0 when absent."""
    return _count(headers.get(DEATHS_HEADER))


def earlier_hops(headers: Mapping[str, Any]) -> tuple[DeathRecord, ...]:
    """The ``x-death`` entries of earlier cycles, most recent first; never raises."""
    return parse_x_death({"x-death": headers.get(HISTORY_HEADER)})


def total_deaths(headers: Mapping[str, Any], deaths: tuple[DeathRecord, ...] | None = None) -> int:
    """Every death of the message, all cycles: ``payops-deaths`` + the ``x-death`` counts
    (``deaths``: them parsed already)."""
    if deaths is None:
        deaths = parse_x_death(headers)
    return earlier_deaths(headers) + sum(d.count for d in deaths)


def _hop(death: DeathRecord) -> dict[str, Any]:
    hop: dict[str, Any] = {
        "queue": death.queue,
        "reason": death.reason,
        "count": death.count,
        "exchange": death.exchange,
        "routing-keys": list(death.routing_keys),
    }
    if death.time is not None:
        hop["time"] = death.time
    return hop


def carried_headers(
    headers: Mapping[str, Any], deaths: tuple[DeathRecord, ...] | None = None
) -> dict[str, Any]:
    """The ``payops-deaths`` headers a requeue or retry of a message with ``headers``
    sets (see the module docstring); empty when the message never died. ``deaths``:
    their ``x-death`` parsed already."""
    current = parse_x_death(headers) if deaths is None else deaths
    total = earlier_deaths(headers) + sum(d.count for d in current)  # total_deaths
    if not total and not current:
        return {}
    hops: list[Mapping[str, Any]] = [_hop(d) for d in current]
    history = headers.get(HISTORY_HEADER)
    if isinstance(history, list):
        hops.extend(h for h in history if isinstance(h, Mapping))
    return {DEATHS_HEADER: total, HISTORY_HEADER: hops[:MAX_HOPS]}


def republish_properties(record: MessageRecord) -> dict[str, Any]:
    """The record's properties with ``expiration`` restored from ``x-death``'s
    ``original-expiration`` when the broker removed it."""
    properties = dict(record.properties)
    if properties.get("expiration") is None:
        raw = record.headers.get("x-death")
        for entry in raw if isinstance(raw, list) else ():
            original = entry.get("original-expiration") if isinstance(entry, Mapping) else None
            if isinstance(original, str | bytes) and original:
                properties["expiration"] = original
                break
    return properties
