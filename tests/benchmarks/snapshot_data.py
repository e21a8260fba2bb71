"""The data of bench_snapshot: what it seeds (history, failed payments, audit records, alert
events) under a unique prefix, in which range, and how it cleans up.

Each failed payment is a dead letter as RabbitMQ delivers it: a JSON body of 600-1,000
bytes with a card number and a CVV (2 % plain text with a card number, 0.5 % binary), an
``x-death`` header, parked through ``ParkingStore.park_many`` by worker processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import random
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import numpy.typing as npt
import orjson
import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.alerts.rules import Severity
from services.config import FieldPaths, Profile, TapBinding
from services.flow.history import BUCKET_S, HistoryStore, SecondRow
from services.workbench.codec import MessageRecord
from services.workbench.model import AuditRecord
from services.workbench.store import ParkingStore, ParkItem, new_entry_id
from tests.benchmarks.common import MERCHANTS

DEFAULT_REDIS_URL = os.environ.get("PAYOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DLQ = "payments.dlq"
PARK_BATCH = 1000
AUDIT_RECORDS = 300
ALERT_INCIDENTS = 100  # a firing and a resolved event each

STATUSES = ("requested", "authorized", "captured", "declined", "failed")
STATUS_SHARES = (1.0, 0.93, 0.88, 0.05)  # of the requests; failed: below
WATCHED = ("payments.authorize", "payments.capture", "payments.settle", DLQ)
FAILURE_REASONS = (
    ("acquirer timeout", 0.35),
    ("do not honor", 0.25),
    ("insufficient funds", 0.2),
    ("fraud suspected", 0.12),
    ("card expired", 0.08),
)
QUEUES = (
    ("payments.authorize", "payment.authorize"),
    ("payments.capture", "payment.capture"),
    ("payments.settle", "payment.settle"),
)
DEATH_REASONS = ("rejected",) * 11 + ("expired",) * 5 + ("delivery_limit",) * 3 + ("maxlen",)
CARDS = (  # Luhn-valid test numbers
    ("visa", "4111111111111111"),
    ("visa", "4012888888881881"),
    ("mastercard", "5555555555554444"),
    ("mastercard", "5105105105105100"),
    ("amex", "378282246310005"),
    ("discover", "6011111111111117"),
)
FIRST_NAMES = ("Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Gita", "Hugo", "Ines", "Jon")
LAST_NAMES = ("Martin", "Okafor", "Schmidt", "Novak", "Silva", "Tanaka", "Moreau", "Kowalski")
CITIES = (
    ("Berlin", "DE"),
    ("Lyon", "FR"),
    ("Leeds", "GB"),
    ("Porto", "PT"),
    ("Utrecht", "NL"),
    ("Austin", "US"),
)
PRODUCTS = (
    "Paperback, 320 pages",
    "Wireless earbuds, charcoal",
    "Return flight, economy",
    "Hotel night, double room",
    "Vitamin D3 1000 IU x 90",
    "Annual software licence",
    "Hiking boots, size 43",
    "Organic coffee beans 1 kg",
)
ACQUIRER_MESSAGES = (
    ("91", "Issuer or switch inoperative"),
    ("05", "Do not honor"),
    ("51", "Insufficient funds"),
    ("59", "Suspected fraud"),
    ("54", "Expired card"),
    ("68", "Response received too late"),
)
OPERATORS = ("alice", "bob", "carol", "dmitri")
ACTIONS = (
    ("requeue", "payments.authorize", "ok"),
    ("requeue", "payments.capture", "ok"),
    ("retry", "payments.authorize", "failed"),
    ("cancel", "payments.cancelled", "ok"),
    ("edit", "payments.capture", "ok"),
)
ALERT_RULES: tuple[tuple[str, Severity, str], ...] = (
    ("failure_rate", "critical", "failure rate {:.1f} % over 60 s"),
    ("latency_p99", "warning", "latency p99 {:.0f} ms"),
    ("queue_depth:payments.dlq", "warning", "payments.dlq depth {:.0f}"),
    ("flow_stopped", "critical", "no events for {:.0f} s"),
)


# --------------------------------------------------------------------------- the data


@dataclasses.dataclass(frozen=True)
class Plan:
    """What was seeded where; what each phase process needs."""

    redis_url: str
    prefix: str
    from_s: int
    to_s: int
    n: int
    batch: int
    workdir: str
    export_workers: int = 0

    @property
    def seconds(self) -> int:
        return self.to_s - self.from_s

    def profile(self) -> Profile:
        return Profile(
            name="bench-snapshot",
            amqp_url="amqp://guest:guest@127.0.0.1:5672/",
            redis_url=self.redis_url,
            tap_exchanges=(TapBinding("payments.events"),),
            watch_queues=WATCHED,
            dead_letter_queues=(DLQ,),
            redis_prefix=self.prefix,
            history_retention_h=max(24.0, self.seconds / 3600),
        )


def payment_body(rng: random.Random, died_ms: int) -> bytes:
    """A failed payment as the payment service publishes it: 600-1,000 bytes of JSON,
    card number and CVV included (2 % plain text with a card number, 0.5 % binary)."""
    brand, pan = rng.choice(CARDS)
    payment_id = f"pay_{rng.getrandbits(56):014x}"
    draw = rng.random()
    if draw < 0.005:
        return b"\x00\x01\x02PAYv2" + rng.randbytes(rng.randrange(200, 700))
    if draw < 0.025:
        return (
            f"payment {payment_id} failed at {died_ms}: acquirer said 'do not honor' for card"
            f" {pan} (cvv=123), merchant {rng.choice(MERCHANTS)}; retry budget exhausted after"
            f" {rng.randrange(1, 6)} attempts. trace={uuid.UUID(int=rng.getrandbits(128))}"
        ).encode()
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, country = rng.choice(CITIES)
    merchant = rng.choice(MERCHANTS) if rng.random() < 0.7 else f"Shop {rng.randrange(5000):04d}"
    code, message = rng.choice(ACQUIRER_MESSAGES)
    items = [
        {
            "sku": f"SKU-{rng.randrange(10**6):06d}",
            "description": rng.choice(PRODUCTS),
            "quantity": rng.randrange(1, 4),
            "unit_price": f"{rng.lognormvariate(3.0, 0.8):.2f}",
        }
        for _ in range(rng.randrange(4))
    ]
    document = {
        "payment_id": payment_id,
        "merchant": merchant,
        "merchant_id": f"mch_{rng.getrandbits(40):010x}",
        "amount": f"{rng.lognormvariate(3.8, 1.2):.2f}",
        "currency": rng.choice(("EUR", "EUR", "USD", "GBP")),
        "status": "failed",
        "reason": rng.choices(
            [r for r, _ in FAILURE_REASONS], weights=[w for _, w in FAILURE_REASONS]
        )[0],
        "created_at": died_ms - rng.randrange(200, 5000),
        "card": {
            "number": pan,
            "cvv": f"{rng.randrange(1000):03d}",
            "expiry": f"{rng.randrange(1, 13):02d}/{rng.randrange(26, 31)}",
            "holder": f"{first} {last}",
            "brand": brand,
        },
        "customer": {
            "id": f"cus_{rng.getrandbits(48):012x}",
            "email": f"{first.lower()}.{last.lower()}{rng.randrange(100)}@example.com",
            "ip": f"203.0.113.{rng.randrange(1, 255)}",
        },
        "billing_address": {
            "line1": f"{rng.randrange(1, 200)} {rng.choice(('High', 'Station', 'Mill'))} Street",
            "city": city,
            "postcode": f"{rng.randrange(10000, 99999)}",
            "country": country,
        },
        "items": items,
        "acquirer": {"name": "Acquiro", "response_code": code, "message": message},
        "attempt": rng.randrange(1, 4),
        "idempotency_key": str(uuid.UUID(int=rng.getrandbits(128))),
        "channel": rng.choice(("web", "ios", "android", "pos")),
    }
    return orjson.dumps(document)


def dead_letter(rng: random.Random, parked_ms: int) -> MessageRecord:
    """One dead letter as RabbitMQ delivers it from the DLQ."""
    died_ms = parked_ms - rng.randrange(5, 400)
    queue, routing_key = rng.choice(QUEUES)
    reason = rng.choice(DEATH_REASONS)
    died = datetime.datetime.fromtimestamp(died_ms / 1000, datetime.UTC)
    return MessageRecord(
        body=payment_body(rng, died_ms),
        properties={
            "content_type": "application/json",
            "delivery_mode": 2,
            "message_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "timestamp": datetime.datetime.fromtimestamp(died_ms // 1000 - 1, datetime.UTC),
        },
        headers={
            "x-death": [
                {
                    "count": rng.choice((1, 1, 1, 2, 3)),
                    "reason": reason,
                    "queue": queue,
                    "time": died,
                    "exchange": "payments",
                    "routing-keys": [routing_key],
                }
            ],
            "x-first-death-queue": queue,
            "x-first-death-reason": reason,
            "x-first-death-exchange": "payments",
            "x-trace-id": f"{rng.getrandbits(64):016x}",
        },
        exchange="payments.dlx",
        routing_key=routing_key,
    )


@dataclasses.dataclass
class ParkedShare:
    parked: int = 0
    body_bytes: int = 0
    text_bodies: int = 0
    binary_bodies: int = 0


async def _park_share(
    redis_url: str, prefix: str, entries: Sequence[tuple[str, int]], seed: int
) -> ParkedShare:
    client = aioredis.from_url(redis_url)
    try:
        store = ParkingStore(client, prefix)
        rng = random.Random(seed)
        fields = FieldPaths()
        share = ParkedShare()
        for start in range(0, len(entries), PARK_BATCH):
            items = []
            for entry_id, parked_ms in entries[start : start + PARK_BATCH]:
                record = dead_letter(rng, parked_ms)
                share.body_bytes += len(record.body)
                share.text_bodies += record.body.startswith(b"payment ")
                share.binary_bodies += record.body.startswith(b"\x00")
                items.append(ParkItem(record, entry_id=entry_id))
            results = await store.park_many(DLQ, items, fields)
            share.parked += sum(r.parked_by_this_item for r in results)
        return share
    finally:
        await client.aclose()


def park_worker(
    redis_url: str, prefix: str, entries: Sequence[tuple[str, int]], seed: int
) -> ParkedShare:
    """Park ``entries`` (id, parked_at ms) in a worker process."""
    return asyncio.run(_park_share(redis_url, prefix, entries, seed))


def history_rows(from_s: int, to_s: int, dead: npt.NDArray[np.int64], seed: int) -> list[SecondRow]:
    """Per-second rows of a payment flow: a daily wave of ~20-60 requests/s, the dead
    letters of each second counted among its failures."""
    rng = np.random.default_rng(seed)
    n = to_s - from_s
    t = np.arange(from_s, to_s)
    rate = 40.0 + 20.0 * np.sin(2 * np.pi * ((t % 86400) / 86400 - 0.3))
    requested = rng.poisson(rate)
    counts = [requested] + [rng.binomial(requested, share) for share in STATUS_SHARES[1:]]
    failed = dead + rng.poisson(0.3, n)
    counts.append(failed)
    reasons = rng.multinomial(failed, [w for _, w in FAILURE_REASONS])
    p50 = rng.lognormal(np.log(45.0), 0.15, n)
    latency = np.stack([p50, p50 * rng.uniform(2.0, 3.0, n), p50 * rng.uniform(3.5, 6.0, n)])
    depth_walk = np.abs(np.cumsum(rng.normal(0.0, 3.0, (3, n)), axis=1)).astype(np.int64)
    dlq_depth = rng.poisson(0.5, n)
    unknown = rng.random(n) < 0.005
    count_lists = [c.tolist() for c in counts]
    reason_lists = reasons.tolist()
    latency_lists = np.round(latency, 2).tolist()
    depth_lists = [*depth_walk.tolist(), dlq_depth.tolist()]
    dead_list = dead.tolist()
    unknown_list = unknown.tolist()
    rows = []
    reason_names = [r for r, _ in FAILURE_REASONS]
    for i in range(n):
        rows.append(
            SecondRow(
                second=from_s + i,
                status_counts={s: count_lists[k][i] for k, s in enumerate(STATUSES)},
                dead_letters=dead_list[i],
                queue_depths={
                    q: None if unknown_list[i] else depth_lists[k][i] for k, q in enumerate(WATCHED)
                },
                latency_ms=(latency_lists[0][i], latency_lists[1][i], latency_lists[2][i]),
                failure_reasons={
                    name: c for name, c in zip(reason_names, reason_lists[i], strict=True) if c
                },
            )
        )
    return rows


def audit_records(
    rng: random.Random, from_ms: int, to_ms: int, named: Sequence[str]
) -> list[AuditRecord]:
    """Operator actions spread over the range, each naming 1-5 parked entries."""
    records = []
    for ts in sorted(rng.randrange(from_ms, to_ms) for _ in range(AUDIT_RECORDS)):
        action, target, result = rng.choice(ACTIONS)
        entry_ids = tuple(rng.sample(named, rng.randrange(1, 6)))
        detail = (
            f"acquirer refused card {rng.choice(CARDS)[1]} again"
            if result == "failed"
            else f"{action} of {len(entry_ids)} after the acquirer incident"
        )
        records.append(
            AuditRecord(
                ts=ts,
                operator=rng.choice(OPERATORS),
                host=f"ops-{rng.randrange(1, 4)}",
                action=action,
                entry_ids=entry_ids,
                target=target,
                result=result,
                detail=detail,
                action_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            )
        )
    return records


def alert_events(rng: random.Random, from_s: int, to_s: int) -> list[AlertEvent]:
    """Incidents in slots of the range (no rule overlaps itself), oldest first."""
    slot = (to_s - from_s) / ALERT_INCIDENTS
    events = []
    for k in range(ALERT_INCIDENTS):
        rule, severity, text = rng.choice(ALERT_RULES)
        start = from_s + k * slot + rng.uniform(0, slot / 2)
        end = start + rng.uniform(30, slot / 2)
        value = rng.uniform(5, 2500)
        events.append(AlertEvent(start, rule, "firing", value, text.format(value), severity))
        events.append(AlertEvent(end, rule, "resolved", value / 10, "resolved", severity))
    return events


@dataclasses.dataclass
class Seeded:
    history_s: float
    entries_s: float
    other_s: float
    share: ParkedShare


async def seed(plan: Plan, workers: int) -> Seeded:
    client = aioredis.from_url(plan.redis_url)
    try:
        rng = random.Random(7)
        from_ms, to_ms = plan.from_s * 1000, plan.to_s * 1000
        parked_ms = np.sort(np.random.default_rng(7).integers(from_ms, to_ms, plan.n))
        ids = [new_entry_id(ms) for ms in parked_ms.tolist()]

        # Audit first: its stream ids (Redis's clock, now) must fall in the range.
        started = time.perf_counter()
        store = ParkingStore(client, plan.prefix)
        named = rng.sample(ids, min(len(ids), 1000))
        for record in audit_records(rng, from_ms, to_ms, named):
            await store.append_audit(DLQ, record)
        await AlertLog(client, plan.prefix).extend(alert_events(rng, plan.from_s, plan.to_s))
        other_s = time.perf_counter() - started

        started = time.perf_counter()
        history = HistoryStore(client, plan.prefix, round(plan.profile().history_retention_s))
        dead = np.bincount(parked_ms // 1000 - plan.from_s, minlength=plan.seconds)
        for start in range(plan.from_s, plan.to_s, BUCKET_S):
            end = min(start + BUCKET_S, plan.to_s)
            chunk = dead[start - plan.from_s : end - plan.from_s]
            await history.write_seconds(history_rows(start, end, chunk, seed=start))
        history_s = time.perf_counter() - started

        started = time.perf_counter()
        pairs = list(zip(ids, parked_ms.tolist(), strict=True))
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            shares = await asyncio.gather(
                *(
                    loop.run_in_executor(
                        pool, park_worker, plan.redis_url, plan.prefix, pairs[k::workers], 100 + k
                    )
                    for k in range(workers)
                )
            )
        entries_s = time.perf_counter() - started
        total = ParkedShare(
            parked=sum(s.parked for s in shares),
            body_bytes=sum(s.body_bytes for s in shares),
            text_bodies=sum(s.text_bodies for s in shares),
            binary_bodies=sum(s.binary_bodies for s in shares),
        )
        if total.parked != plan.n:
            raise RuntimeError(f"parked {total.parked} of {plan.n}")
        return Seeded(history_s, entries_s, other_s, total)
    finally:
        await client.aclose()


async def cleanup(redis_url: str, prefix: str) -> int:
    client = aioredis.from_url(redis_url)
    try:
        deleted = 0
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(await client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(await client.unlink(*batch))
        return deleted
    finally:
        await client.aclose()
