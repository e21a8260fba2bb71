"""Realistic failed-payment rows for widget tests and screenshots: an incident's six hours."""

from __future__ import annotations

import random
import uuid

from services.workbench.cause import Cause, CauseSource, dead_letter_cause
from services.workbench.model import EntryState, EntrySummary
from tests.benchmarks.common import MERCHANTS

QUEUES = (
    ("payments.authorize", "payment.authorize"),
    ("payments.capture", "payment.capture"),
    ("payments.refund", "payment.refund"),
    ("payments.settle", "payment.settle"),
    ("payouts.process", "payout.process"),
)
REASONS = (("rejected", 0.55), ("expired", 0.25), ("delivery_limit", 0.12), ("maxlen", 0.08))
STATE_MIX = (
    (EntryState.PARKED, 0.8),
    (EntryState.REQUEUED, 0.09),
    (EntryState.RETRIED, 0.05),
    (EntryState.CANCELLED, 0.04),
    (EntryState.CLAIMED, 0.02),
)
NOW_MS = 1_716_000_000_000
CAUSES: tuple[tuple[str, CauseSource, float], ...] = (
    ("acquirer outage: acq-{n} refused the connection (10.20.0.1{n}:8443)", "flow", 0.45),
    ("acquirer timeout after {ms} ms on acq-{n}", "flow", 0.2),
    ("risk engine unavailable: HTTP 503 from risk-{n} after {ms} ms", "flow", 0.12),
    ("schema validation failed: amount {n}.{d} has more than 2 decimals", "message", 0.08),
)
"""The demo's causes (see services.demo.failures); the rest have the dead-letter reason."""


def _cause(rng: random.Random, reason: str) -> Cause:
    pick, total = rng.random(), 0.0
    for text, source, weight in CAUSES:
        total += weight
        if pick < total:
            n, ms, d = rng.randint(1, 6), rng.randint(800, 4000), rng.randint(100, 999)
            return Cause.of(text.format(n=n, ms=ms, d=d), source)
    return dead_letter_cause(reason)


def _weighted(rng: random.Random, choices):
    pick, total = rng.random(), 0.0
    for value, weight in choices:
        total += weight
        if pick < total:
            return value
    return choices[-1][0]


def realistic_summaries(n: int, seed: int = 42, now_ms: int = NOW_MS) -> list[EntrySummary]:
    """``n`` rows like an incident's: six hours of dead letters, mostly still parked."""
    rng = random.Random(seed)
    causes = random.Random(seed + 1)  # its own draws: the other fields stay as they were
    start = now_ms - 6 * 3600 * 1000
    rows = []
    for i in range(n):
        t = start + (now_ms - start) * i // max(n, 1) + rng.randint(0, 2000)
        queue, key = rng.choice(QUEUES)
        state = _weighted(rng, STATE_MIX)
        kind = "json" if rng.random() > 0.02 else rng.choice(["text", "binary", "empty"])
        amount = round(rng.lognormvariate(3.8, 1.2), 2) if kind == "json" else None
        rows.append(
            EntrySummary(
                entry_id=f"{t:012x}{rng.getrandbits(32):08x}",
                dlq="payouts.dlq" if queue.startswith("payouts") else "payments.dlq",
                parked_at_ms=t + rng.randint(5, 900),
                dead_lettered_at_ms=t,
                payment_id=f"pay_{rng.getrandbits(56):014x}" if kind == "json" else None,
                merchant=rng.choice(MERCHANTS) if kind == "json" else None,
                amount=f"{amount:.2f}" if amount is not None else None,
                amount_value=amount,
                currency=_weighted(rng, (("EUR", 0.5), ("USD", 0.3), ("GBP", 0.2)))
                if kind == "json"
                else None,
                reason=_weighted(rng, REASONS),
                origin_queue=queue,
                routing_key=key + rng.choice([".failed", ".declined", ".timeout", ""]),
                attempts=rng.choice([1, 1, 1, 2, 2, 3, 5]),
                state=state,
                last_operator=rng.choice(["alice", "bob", "priya"])
                if state is not EntryState.PARKED
                else None,
                body_kind=kind,
                size=rng.randint(180, 900) if kind != "empty" else 0,
                message_id=str(uuid.UUID(int=rng.getrandbits(128))),
            )
        )
        rows[-1] = rows[-1].with_cause(_cause(causes, rows[-1].reason))
    return rows
