"""What the demo simulator simulates (:class:`SimulationOptions`) and what it counted
(:class:`SimulationStats`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.demo.idempotency import DEFAULT_TTL_S
from services.demo.topology import DEFAULT_FRAUDCHECK_TTL_MS


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate. Rates are fractions (0.03 is 3 %); times in seconds.

    ``rate`` 0 runs the workers only (they still process what is queued).
    The incident (``incident=True``) starts ``incident_after_s`` after the
    start and lasts ``incident_duration_s``: ``incident_failure_rate`` of the
    payments fail (mostly "acquirer outage", some acquirer timeouts and
    "risk engine unavailable": see ``failures.INCIDENT_KINDS``), processing
    is ``incident_latency_factor`` times slower and the risk engine is down, so
    fraud checks expire. ``fraudcheck_ttl_ms`` is part of the fraud-check
    queue's declaration: it must match the queue if that already exists.
    ``seed`` None draws a seed at random (the stats report it, to replay a run).
    ``idempotency_ttl_s`` is how long a capture is remembered: a delivery of
    a payment captured within it is a duplicate (:mod:`services.demo.idempotency`).
    A seeded run repeats its payment ids, so a second run with the same seed
    and Redis within that time finds its payments captured already.
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
    idempotency_ttl_s: float = DEFAULT_TTL_S

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
        if not (self.idempotency_ttl_s > 0.0 and math.isfinite(self.idempotency_ttl_s)):
            raise ValueError(
                f"idempotency_ttl_s must be a finite number > 0, not {self.idempotency_ttl_s!r}"
            )

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
    ``republished`` counts the schema-validation failures the Spring-style
    recoverer put into the dead-letter queue itself (``x-exception-message``,
    no ``x-death``). ``duplicates`` counts deliveries of payments already
    captured, acknowledged without a second capture (``duplicate`` events).
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
    republished: int = 0
    duplicates: int = 0
    in_flight: int = 0
    incident_active: bool = False
    elapsed_s: float = 0.0
    seed: int = 0

    @property
    def dead_lettered_total(self) -> int:
        """Messages that reach the dead-letter queue because of this run, all reasons."""
        return self.dead_lettered + self.delivery_limit_exceeded + self.expired + self.republished
