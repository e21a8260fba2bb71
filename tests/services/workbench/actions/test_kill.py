"""An action process killed with ``kill -9`` mid-way through a bulk requeue, then
``recover`` and a rerun: nothing lost, no payment duplicated in the target queue."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from services.workbench.actions.publisher import ACTION_ID_HEADER, ActionPublisher
from services.workbench.actions.recovery import RecoveryReport
from services.workbench.actions.service import ACTION_DEPTH, ActionService
from services.workbench.codec import MessageRecord
from services.workbench.model import EntryState
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import (
    Broker,
    DeadLetterFlow,
    entry_ids,
    make_profile,
    parked_payments,
    payment_of,
    state_counts,
)
from tests.helpers.paths import REPO_ROOT

pytestmark = pytest.mark.integration

N = 3000


@pytest.fixture
async def service(
    store: ParkingStore, broker: Broker, amqp_url: str, redis_url: str, prefix: str
) -> AsyncIterator[ActionService]:
    publisher = ActionPublisher(amqp_url)
    profile = make_profile(amqp_url, redis_url, prefix, [broker.name("dlq")])
    yield ActionService(store, publisher, profile, "carol", "test-host", window=250)
    await publisher.close()


async def run_proc(
    broker: Broker, redis_url: str, prefix: str, flow: DeadLetterFlow, *options: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.helpers.action_proc",
        broker.amqp_url,
        redis_url,
        prefix,
        flow.dlq,
        *options,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def check_exactly_once_after_resolving(
    broker: Broker,
    store: ParkingStore,
    service: ActionService,
    flow: DeadLetterFlow,
    report: RecoveryReport,
    delivered: list[MessageRecord],
) -> None:
    """Every in-doubt entry resolved by looking at the queue; then all N exactly once."""
    in_queue = {payment_of(m) for m in delivered}
    for found in report.in_doubt:
        entry = await store.get(flow.dlq, found.entry_id)
        assert entry is not None and entry.state is EntryState.CLAIMED
        how = "delivered" if payment_of(entry.record) in in_queue else "republish"
        outcome = await service.resolve(found.entry_id, how)
        assert outcome.ok, outcome
    await asyncio.sleep(0.2)
    delivered = delivered + await broker.drain(flow.work)
    payments = Counter(payment_of(m) for m in delivered)
    action_ids = Counter(m.headers[ACTION_ID_HEADER] for m in delivered)
    assert max(payments.values()) == 1, "a payment was duplicated in the target queue"
    assert max(action_ids.values()) == 1
    assert set(payments) == {f"pay_{i:05d}" for i in range(N)}, "a payment was lost"
    assert await state_counts(store, flow.dlq) == Counter({EntryState.REQUEUED: N})
    assert await store.in_flight(flow.dlq) == []


async def test_killed_mid_bulk_requeue_then_recover_and_rerun_lose_and_duplicate_nothing(
    broker: Broker, store: ParkingStore, service: ActionService, redis_url: str, prefix: str
) -> None:
    flow = await parked_payments(broker, store, N)
    proc = await run_proc(broker, redis_url, prefix, flow, "--window", "100", "--pause-s", "0.03")
    assert proc.stdout is not None
    done = 0
    while done < 1000:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
        assert line and line[0] == "progress", line
        done = int(line[1])
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # The moment after the crash: every payment is parked/claimed or in the queue, once.
    await asyncio.sleep(0.2)
    delivered = await broker.drain(flow.work)
    counts = await state_counts(store, flow.dlq)
    assert sum(counts.values()) == N
    assert len(delivered) == len({payment_of(m) for m in delivered})
    assert counts[EntryState.REQUEUED] <= len(delivered) <= N - counts[EntryState.PARKED]

    report = await service.recover()
    assert not report.in_progress
    claimed = counts[EntryState.CLAIMED]
    assert len(report.released) + len(report.in_doubt) == claimed
    for found in report.in_doubt:
        assert found.action == "requeue" and found.operator == "robot"
        assert flow.work in found.target and "may already be" in found.note

    rerun = await service.requeue(
        ActionTarget.for_entries(await entry_ids(store, flow.dlq)), progress=None
    )
    assert rerun.failed == 0
    assert rerun.succeeded == counts[EntryState.PARKED] + len(report.released)
    await asyncio.sleep(0.2)
    delivered += await broker.drain(flow.work)
    assert len(delivered) == len({payment_of(m) for m in delivered})

    await check_exactly_once_after_resolving(broker, store, service, flow, report, delivered)


@pytest.mark.parametrize("crash", ["claim", "publish"])
async def test_killed_at_each_step_of_a_window_is_recovered(
    broker: Broker,
    store: ParkingStore,
    service: ActionService,
    redis_url: str,
    prefix: str,
    crash: str,
) -> None:
    """Killed right after the 3rd window was claimed and announced in one call (a
    requeue's claims write its intents; nothing sent), or confirmed by the broker (its
    confirms recorded as they came, the rest not). Windows overlap, so the windows around
    it may be at any step too; the invariants hold anyway."""
    flow = await parked_payments(broker, store, N)
    proc = await run_proc(
        broker, redis_url, prefix, flow, "--window", "100", f"--crash-after-{crash}", "3"
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()

    await asyncio.sleep(0.2)
    delivered = await broker.drain(flow.work)
    in_queue = {payment_of(m) for m in delivered}
    assert len(delivered) == len(in_queue)
    counts = await state_counts(store, flow.dlq)
    assert sum(counts.values()) == N
    if crash == "claim":  # window 3 claimed, nothing of it sent: all 100 still claimed
        assert counts[EntryState.CLAIMED] >= 100
    else:  # windows 1-3 claimed and confirmed; their confirms are recorded as they arrive,
        # so any of window 3 may already be requeued when the process is killed
        assert counts[EntryState.CLAIMED] + counts[EntryState.REQUEUED] >= 300
    assert counts[EntryState.REQUEUED] <= len(delivered)
    assert len(delivered) <= counts[EntryState.REQUEUED] + counts[EntryState.CLAIMED]

    report = await service.recover()
    assert not report.in_progress
    assert len(report.released) + len(report.in_doubt) == counts[EntryState.CLAIMED]
    doubt_payments = []
    for found in report.in_doubt:
        entry = await store.get(flow.dlq, found.entry_id)
        assert entry is not None
        doubt_payments.append(payment_of(entry.record))
    doubt_sent = sum(1 for p in doubt_payments if p in in_queue)
    if crash == "claim":  # claimed and announced, never sent: in doubt, not in the queue
        assert len(doubt_payments) - doubt_sent >= 100
    else:  # windows 1-3 confirmed by the broker: each of their 300 payments is in the queue,
        # and recorded requeued (confirms are recorded as they arrive) or in doubt
        assert doubt_sent + counts[EntryState.REQUEUED] >= 300
    for found in report.released:
        entry = await store.get(flow.dlq, found.entry_id)
        assert entry is not None and payment_of(entry.record) not in in_queue
    again = await service.recover()  # idempotent: the in-doubt ones are reported again
    assert (len(again.released), len(again.in_doubt)) == (0, len(report.in_doubt))
    audit = await store.read_audit(flow.dlq, count=5)
    assert any(a.action == "recover" for a in audit)

    rerun = await service.requeue(ActionTarget.for_entries(await entry_ids(store, flow.dlq)))
    assert rerun.failed == 0
    assert rerun.succeeded == counts[EntryState.PARKED] + len(report.released)
    assert rerun.skipped == counts[EntryState.REQUEUED] + len(report.in_doubt)
    await asyncio.sleep(0.2)
    delivered += await broker.drain(flow.work)
    await check_exactly_once_after_resolving(broker, store, service, flow, report, delivered)


async def payops(config: Path, *args: str) -> tuple[int, str, str]:
    """A real ``payops dlq ...`` process: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "payops"),
        "dlq",
        *args,
        "--config",
        str(config),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_killed_at_random_moments_then_resolved_in_bulk_every_payment_once(
    broker: Broker, store: ParkingStore, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """``kill -9`` of the actor at random moments of a bulk requeue, three times; after
    each, ``payops dlq resolve --all-in-doubt`` lists (``--dry-run``) then republishes
    what is in doubt. Counted by payment: each is in the queue under one action id
    (a second copy only of an in-doubt entry republished: same action id, so consumers
    de-duplicate it), none lost, none left claimed."""
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    flow = await parked_payments(broker, store, N)
    config = tmp_path / "payops.toml"
    config.write_text(
        "[profiles.t]\n"
        f'amqp_url = "{broker.amqp_url}"\nredis_url = "{redis_url}"\n'
        f'dead_letter_queues = ["{flow.dlq}"]\nredis_prefix = "{prefix}"\n'
        'operator = "night-shift"\n'
    )
    republished: set[str] = set()
    for crash in range(3):
        proc = await run_proc(  # the product's depth: its bound on what is in doubt
            broker, redis_url, prefix, flow, "--window", "100", "--depth", str(ACTION_DEPTH),
            "--pause-s", "0.02",
        )  # fmt: skip
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
        await asyncio.sleep(rng.uniform(0.0, 0.8))  # a random moment of the run
        with contextlib.suppress(ProcessLookupError):  # unless it is done already
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert line and line[0] in ("progress", "DONE"), (seed, line)

        code, out, err = await payops(config, "resolve", "--all-in-doubt", "--dry-run")
        assert code == 0, (seed, err)
        listed = re.findall(r"^  in doubt: (\S+)", out, re.MULTILINE)
        counts = await state_counts(store, flow.dlq)
        assert len(listed) <= counts[EntryState.CLAIMED], (seed, crash)
        assert len(listed) <= ACTION_DEPTH * 100, (seed, crash)  # at most the windows in flight
        if listed:
            assert "confirmed by the broker: 0" in out and "Safe: --republish" in out
        code, out, err = await payops(config, "resolve", "--all-in-doubt", "--republish", "--yes")
        assert code == 0, (seed, out, err)
        expected = f"republished {len(listed):,}, skipped 0, failed 0" if listed else "no entries"
        assert expected in out, (seed, out)
        for entry_id in listed:
            entry = await store.get(flow.dlq, entry_id)
            assert entry is not None and entry.state is EntryState.REQUEUED
            republished.add(cast(str, entry.action_id))
        assert await store.in_flight(flow.dlq) == [], "resolve left entries claimed"

    proc = await run_proc(broker, redis_url, prefix, flow, "--window", "100")
    await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0
    await asyncio.sleep(0.2)
    delivered = await broker.drain(flow.work)
    by_payment: dict[str, Counter[str]] = defaultdict(Counter)
    for message in delivered:
        by_payment[payment_of(message)][str(message.headers[ACTION_ID_HEADER])] += 1
    assert set(by_payment) == {f"pay_{i:05d}" for i in range(N)}, f"seed {seed}: lost"
    for payment, copies in by_payment.items():
        assert len(copies) == 1, f"seed {seed}: {payment} sent under two action ids"
        [(action_id, count)] = copies.items()
        assert count == 1 or action_id in republished, f"seed {seed}: {payment} duplicated"
    assert await state_counts(store, flow.dlq) == Counter({EntryState.REQUEUED: N})
