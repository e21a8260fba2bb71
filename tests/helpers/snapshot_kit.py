"""Shared kit of the snapshot writer's tests: a seeded incident range (history rows, alert
events, parked entries in two dead-letter queues, audit records), the bundle read back from
its zip, and a stand-in chart renderer that returns fixed PNG bytes (the real one is Qt's,
tested under tests/widgets); Redis is always the real one."""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.config import FieldPaths, Profile, TapBinding
from services.flow.history import HistoryStore, SecondRow
from services.flow.types import FlowFrame
from services.links.endpoints import RedisSettings
from services.snapshot.job import write_snapshot
from services.snapshot.model import (
    CHARTS,
    AlertSpan,
    SnapshotRequest,
)
from services.workbench.codec import MessageRecord
from services.workbench.model import AUDIT_STARTED, AuditRecord, EntryState
from services.workbench.store import ParkingStore, ParkItem, new_entry_id
from tests.conftest import REDIS_URL

FIELDS = FieldPaths()
DLQ = "payments.dlq"
DLQ2 = "refunds.dlq"
AMQP_USER, AMQP_PASSWORD = "snapuser_q7", "s3cr3t-Pa55w0rd"
REDIS_USER, REDIS_PASSWORD = "redisuser_k3", "r3d1s-Pa55w0rd"
QUERY_SECRET = "qs-t0ken-774"
AMQP_URL = f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@mq.internal:5671/payments"
PAN_JSON = "4111111111111111"
PAN_TEXT = "5105105105105100"
PAN_HEADER = "4012888888881881"
PAN_ERROR = "378282246310005"
PAN_BINARY = "6011111111111117"
PAN_GROUPED = "5500 0055 5555 5559"
CVV = "9731"
PANS = (PAN_JSON, PAN_TEXT, PAN_HEADER, PAN_ERROR, PAN_BINARY, PAN_GROUPED, "5500005555555559")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


# --------------------------------------------------------------------------- seeding


def profile_for(prefix: str, **overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "name": "incident-test",
        "amqp_url": AMQP_URL,
        "redis_url": (
            f"redis://{REDIS_USER}:{REDIS_PASSWORD}@127.0.0.1:6379/15?password={QUERY_SECRET}"
        ),
        "tap_exchanges": (TapBinding("payments.events"),),
        "watch_queues": ("payments.process", DLQ),
        "dead_letter_queues": (DLQ, DLQ2),
        "redis_prefix": prefix,
        "operator": "alice",
    }
    values.update(overrides)
    return Profile(**values)


def dead_letter(
    n: int,
    death_ms: int,
    *,
    body: bytes | None = None,
    queue: str = "payments.process",
    reason: str = "rejected",
    merchant: str = "Acme Books",
    **headers: Any,
) -> MessageRecord:
    if body is None:
        body = orjson.dumps(
            {
                "payment_id": f"pay_{n}",
                "merchant": merchant,
                "amount": f"{n}.50",
                "currency": "EUR",
                "card": {"number": PAN_JSON, "cvv": CVV, "holder": "A. Tester"},
                "note": f"grouped card {PAN_GROUPED}",
            }
        )
    return MessageRecord(
        body=body,
        properties={"content_type": "application/json", "message_id": f"m-{n}"},
        headers={
            "x-death": [
                {
                    "count": 1,
                    "reason": reason,
                    "queue": queue,
                    "time": datetime.datetime.fromtimestamp(death_ms / 1000, tz=datetime.UTC),
                    "exchange": "payments",
                    "routing-keys": ["payment.failed"],
                }
            ],
            **headers,
        },
        exchange="payments.dlx",
        routing_key="payment.failed",
    )


@dataclass
class Scenario:
    """What was seeded, and what the bundle must therefore hold."""

    from_s: int
    to_s: int
    included: dict[str, str] = field(default_factory=dict)  # entry id -> dlq
    excluded: set[str] = field(default_factory=set)
    status_totals: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    audit_in_range: int = 0
    actions_finished: dict[str, int] = field(default_factory=dict)
    alert_events_in_range: int = 0
    binary_id: str = ""
    text_id: str = ""
    error_id: str = ""
    acted_earlier: set[str] = field(default_factory=set)
    empty_second: int = 0


async def seed(client: aioredis.Redis, profile: Profile) -> Scenario:
    now = int(time.time())
    # The range holds "now" so that audit records (stream ids: Redis's clock) fall inside.
    scenario = Scenario(from_s=now - 1800, to_s=now + 120)
    from_s, to_s = scenario.from_s, scenario.to_s
    prefix = profile.redis_prefix

    # Flow history: a row every second except a gap, also rows outside the range.
    history = HistoryStore(client, prefix)
    rows = []
    scenario.empty_second = from_s + 1000
    for second in range(from_s - 300, to_s + 300):
        if second == scenario.empty_second:
            continue
        failed = 3 if from_s + 600 <= second < from_s + 900 else (1 if second % 10 == 0 else 0)
        reasons = {"acquirer timeout": failed} if failed else {}
        row = SecondRow(
            second=second,
            status_counts={"captured": 20, "failed": failed, "declined": second % 2},
            dead_letters=1 if second % 30 == 0 else 0,
            queue_depths={"payments.process": second % 40, DLQ: None},
            latency_ms=(20.0, 55.5, 120.25),
            failure_reasons=reasons,
        )
        rows.append(row)
        if from_s <= second < to_s:
            for status, count in row.status_counts.items():
                scenario.status_totals[status] = scenario.status_totals.get(status, 0) + count
            scenario.dead_letters += row.dead_letters
            for reason, count in reasons.items():
                scenario.reasons[reason] = scenario.reasons.get(reason, 0) + count
    await history.write_seconds(rows)

    # Alerts: latency firing before the range (resolves inside), failure rate inside,
    # flow stopped still firing at the end; one event after the range.
    log = AlertLog(client, prefix)
    events = [
        AlertEvent(from_s - 300, "latency_p99", "firing", 2500.0, "latency p99 2500 ms", "warning"),
        AlertEvent(from_s + 300, "latency_p99", "resolved", 900.0, "resolved: p99 900 ms"),
        AlertEvent(from_s + 600, "failure_rate", "firing", 15.0, "failure rate 15 %", "critical"),
        AlertEvent(
            from_s + 900, "failure_rate", "resolved", 1.0, "resolved: card " + PAN_TEXT, "critical"
        ),
        AlertEvent(from_s + 1500, "flow_stopped", "firing", 31.0, "no events", "critical"),
        AlertEvent(to_s + 10, "flow_stopped", "resolved", 0.0, "resolved"),
    ]
    await log.extend(events)
    scenario.alert_events_in_range = 4

    store = ParkingStore(client, prefix)

    async def park(dlq: str, at_s: float, record: MessageRecord) -> str:
        entry_id = new_entry_id(int(at_s * 1000))
        result = await store.park(dlq, record, FIELDS, entry_id=entry_id)
        assert result.parked_by_this_item and result.entry_id == entry_id
        return entry_id

    spring = "x-exception-message"  # a Spring AMQP producer's own error: the cause
    inside = [
        await park(
            DLQ,
            from_s + 100 + n,
            dead_letter(
                n,
                (from_s + 100 + n) * 1000,
                **{spring: f"acquirer timeout after {3000 + n} ms on acq-{n}"},
            ),
        )
        for n in range(5)
    ]
    for entry_id in inside:
        scenario.included[entry_id] = DLQ
    scenario.text_id = await park(
        DLQ,
        from_s + 200,
        dead_letter(
            50,
            (from_s + 200) * 1000,
            body=f"payment pay_50 failed, card {PAN_TEXT}, cvv={CVV}".encode(),
            note=f"card {PAN_HEADER} declined",
            blob=b"\xff\x00 " + PAN_BINARY.encode(),
        ),
    )
    scenario.binary_id = await park(
        DLQ,
        from_s + 201,
        dead_letter(51, (from_s + 201) * 1000, body=b"\xff\xfe\x00pan=" + PAN_BINARY.encode()),
    )
    refunds = [
        await park(
            DLQ2,
            from_s + 300 + n,
            dead_letter(
                60 + n,
                (from_s + 300) * 1000,
                queue="refunds.process",
                reason="expired",
                merchant='=HYPERLINK("http://evil")',
            ),
        )
        for n in range(2)
    ]
    for entry_id in (scenario.text_id, scenario.binary_id):
        scenario.included[entry_id] = DLQ
    for entry_id in refunds:
        scenario.included[entry_id] = DLQ2

    # The last error of a failed action, and a completed action's detail, hold a PAN.
    scenario.error_id = inside[0]
    assert (await store.claim(DLQ, inside[0], "requeue", "act-1", "bob")).ok
    assert (await store.release(DLQ, inside[0], "act-1", f"NO_ROUTE for card {PAN_ERROR}")).ok
    assert (await store.claim(DLQ, inside[1], "cancel", "act-2", "bob")).ok
    done = await store.complete(DLQ, inside[1], "act-2", EntryState.CANCELLED, f"card {PAN_ERROR}")
    assert done.ok

    # Parked before the range: excluded unless acted on in it.
    before = [
        await park(DLQ, from_s - 3600 + n, dead_letter(70 + n, (from_s - 3600) * 1000))
        for n in range(5)
    ]
    scenario.acted_earlier = {before[0], before[1]}
    for entry_id in scenario.acted_earlier:
        scenario.included[entry_id] = DLQ
    scenario.excluded = {before[2], before[3], before[4]}
    after = await park(DLQ, to_s + 60, dead_letter(99, (to_s + 60) * 1000))
    scenario.excluded.add(after)

    now_ms = int(time.time() * 1000)
    records = [
        # in range: names two earlier entries and one inside (each exported once)
        AuditRecord(
            now_ms,
            "bob",
            "ops-1",
            "requeue",
            (before[0], before[1], inside[2]),
            "payments.process",
            "ok",
            "requeued 3",
        ),
        AuditRecord(
            now_ms,
            "bob",
            "ops-1",
            "retry",
            (before[0],),
            "payments.process",
            "failed",
            f"card {PAN_ERROR} refused",
        ),
        # outside the range by its own time: its entry stays out
        AuditRecord(
            (from_s - 600) * 1000,
            "carol",
            "ops-2",
            "cancel",
            (before[2],),
            "payments.cancelled",
            "ok",
            "late write",
        ),
    ]
    for record in records:
        await store.append_audit(DLQ, record)
    await store.append_audit(
        DLQ2, AuditRecord(now_ms, "dave", "ops-3", "cancel", (refunds[0],), "x", "ok", "")
    )
    # One action over both DLQs: a "started" record, then a final record in each.
    run = {"action_id": "run-9", "detail": ""}
    await store.append_audit(
        DLQ, AuditRecord(now_ms, "erin", "ops-4", "requeue", (), "q", AUDIT_STARTED, **run)
    )
    for dlq in (DLQ, DLQ2):
        done_record = AuditRecord(
            now_ms, "erin", "ops-4", "requeue", (before[0],), "q", "ok", **run
        )
        await store.append_audit(dlq, done_record)
    # An action that started and has not finished: not an action (yet).
    await store.append_audit(
        DLQ,
        AuditRecord(now_ms, "erin", "ops-4", "cancel", (), "q", AUDIT_STARTED, action_id="run-10"),
    )
    scenario.audit_in_range = 7
    scenario.actions_finished = {"requeue": 2, "retry": 1, "cancel": 1}
    return scenario


# --------------------------------------------------------------------------- reading back


class Bundle:
    """A written snapshot, read back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as archive:
            self.names = archive.namelist()
            self.files = {name: archive.read(name) for name in self.names}
            self.infos = {info.filename: info for info in archive.infolist()}

    def text(self, name: str) -> str:
        return self.files[name].decode("utf-8")

    def csv(self, name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.text(name))))

    def jsonl(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text(name).splitlines()]

    @property
    def manifest(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.files["manifest.json"])
        return result

    def report_value(self, element_id: str) -> int:
        match = re.search(rf'id="{element_id}" data-value="(\d+)"', self.text("report.html"))
        assert match, f"no {element_id} in report.html"
        return int(match.group(1))


@dataclass
class FakeRenderer:
    """Stands in for the Qt renderer: records what it was given."""

    calls: list[tuple[FlowFrame, list[AlertSpan]]] = field(default_factory=list)

    def __call__(self, frame: FlowFrame, spans: Sequence[AlertSpan]) -> Mapping[str, bytes]:
        self.calls.append((frame, list(spans)))
        return {name: PNG + name.encode() for name in CHARTS}


WORKER_REDIS = RedisSettings.standalone(REDIS_URL)
"""Where an export's worker processes read the entries: the test Redis (the profiles'
``redis_url`` holds credentials it does not know, to check that no bundle shows them)."""


async def snapshot(
    client: aioredis.Redis,
    profile: Profile,
    scenario: Scenario,
    out: Path,
    **kwargs: Any,
) -> Any:
    batch = kwargs.pop("batch", 3)
    request = SnapshotRequest(profile, scenario.from_s, scenario.to_s, out, batch=batch)
    kwargs.setdefault("worker_redis", WORKER_REDIS)
    return await write_snapshot(request, client, **kwargs)


async def seeded_bundle(
    client: aioredis.Redis, prefix: str, out: Path, **kwargs: Any
) -> tuple[Profile, Scenario, Bundle]:
    """A range seeded under ``prefix`` (``profile_for(prefix)``), written to ``out`` by
    :func:`snapshot` with ``kwargs`` and read back."""
    seeded = await seeded_range(client, prefix)
    await snapshot(client, seeded.profile, seeded.scenario, out, **kwargs)
    return seeded.profile, seeded.scenario, Bundle(out)


@dataclass(frozen=True)
class Seeded:
    """A profile under the test's prefix and the range seeded for it (the ``seeded``
    fixture of tests/services/snapshot)."""

    profile: Profile
    scenario: Scenario


async def seeded_range(client: aioredis.Redis, prefix: str) -> Seeded:
    """:func:`seed` of ``profile_for(prefix)``: what most snapshot tests start from."""
    profile = profile_for(prefix)
    return Seeded(profile, await seed(client, profile))


def empty_profile(prefix: str, ago_s: int = 120) -> tuple[Profile, int]:
    """A profile with no dead-letter queue and the start of a range ``ago_s`` in the past
    with nothing in it."""
    return profile_for(prefix, dead_letter_queues=()), int(time.time()) - ago_s


async def park_records(
    client: aioredis.Redis,
    prefix: str,
    records: Iterable[MessageRecord],
    first_ms: int,
    *,
    step_ms: int = 100,
    fields: FieldPaths = FIELDS,
    dlq: str = DLQ,
) -> list[str]:
    """Park ``records`` in ``dlq`` (a thousand per ``park_many``), the n-th at ``first_ms +
    n * step_ms``; their entry ids."""
    store = ParkingStore(client, prefix)
    ids: list[str] = []
    batch: list[ParkItem] = []
    for n, record in enumerate(records):
        ids.append(new_entry_id(first_ms + n * step_ms))
        batch.append(ParkItem(record, entry_id=ids[-1]))
        if len(batch) == 1000:
            await store.park_many(dlq, batch, fields)
            batch = []
    if batch:
        await store.park_many(dlq, batch, fields)
    return ids
