"""Ctrl+C and SIGTERM on a real ``payops dlq requeue --all-matching --yes`` process.

The first signal stops it after the windows already sent (their confirms recorded),
prints the summary and exits 130 (SIGINT) or 143 (SIGTERM). A second one stops it at
once: what awaits a confirm stays in doubt and is listed with how to settle it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import exit_codes
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.recovery import RecoveredEntry, ResolveHow
from services.workbench.actions.service import ActionService
from services.workbench.model import EntryState
from services.workbench.store import ParkingStore
from tests.app.cli.dlq_kit import Setup, payments_of, payops_process, wait_for_messages
from tests.helpers.action_kit import Broker, make_profile, parked_payments
from tests.helpers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

N = 3000
SMALL = 2000
CODES = {signal.SIGINT: exit_codes.INTERRUPTED, signal.SIGTERM: exit_codes.TERMINATED}


@pytest.fixture
def setup(amqp_url: str, redis_url: str, unique_prefix: str, tmp_path: Path) -> Iterator[Setup]:
    state = Setup(amqp_url, redis_url, unique_prefix, tmp_path)
    yield state
    state.cleanup()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_one_signal_stops_a_bulk_requeue_after_the_windows_sent_summary_and_exit_code(
    setup: Setup, sig: signal.Signals
) -> None:
    """One SIGINT (or SIGTERM) mid-run: the windows already sent finish, the summary is
    printed, exit 130 (143), nothing left claimed, every payment in the queue once or
    still parked."""
    setup.flow = setup.call(lambda broker, store: parked_payments(broker, store, N))
    work = setup.flow.work
    proc = payops_process(setup, "requeue", "--all-matching", "--yes")
    wait_for_messages(setup.amqp_url, work, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == CODES[sig], err
    assert "not attempted (still parked)" in err
    assert ("interrupted -" if sig == signal.SIGINT else "terminated (SIGTERM) -") in err
    summary = re.fullmatch(
        r"([\d,]+) requeued to \S+\n"
        r"([\d,]+) not attempted: the action was stopped; they stay parked",
        out.strip(),
    )
    assert summary, out
    requeued, not_attempted = (int(g.replace(",", "")) for g in summary.groups())
    assert 0 < requeued < N and requeued + not_attempted == N
    assert setup.states() == Counter(
        {EntryState.REQUEUED: requeued, EntryState.PARKED: N - requeued}
    )
    delivered = payments_of(setup.drain(work))
    assert sum(delivered.values()) == requeued and max(delivered.values()) == 1

    # the rest, requeued afterwards: every payment exactly once
    assert setup.cli("requeue", "--all-matching", "--yes") == exit_codes.OK
    delivered += payments_of(setup.drain(work))
    assert delivered == Counter({f"pay_{i:05d}": 1 for i in range(N)})
    assert setup.states() == Counter({EntryState.REQUEUED: N})


class HeldConfirms:
    """A TCP proxy to the broker, in a thread of its own, that can hold back what the
    broker sends (its confirms) while still passing on what the client publishes: a
    broker that has gone quiet mid-action."""

    def __init__(self, target_port: int) -> None:
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.proxy = TcpProxy(target_port)
        self.proxy._pipe = self._pipe  # type: ignore[method-assign]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.proxy.port}/"

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: bool = False
    ) -> None:
        """:meth:`TcpProxy._pipe`; ``replies``: the broker's side, held while on hold."""
        try:
            while data := await reader.read(65536):
                if replies:
                    await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def __enter__(self) -> HeldConfirms:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)
        return self

    def hold(self) -> None:
        self.loop.call_soon_threadsafe(self.flowing.clear)

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.flowing.set)
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_signal_stops_at_once_lists_what_is_in_doubt_and_nothing_is_lost(
    setup: Setup, sig: signal.Signals
) -> None:
    """The broker stops confirming mid-run, so the first signal's orderly stop waits on
    the windows in flight; the second stops at once: exit 130 (143), the entries awaiting
    a confirm listed in doubt with how to settle them, those claimed but never sent
    released. Settled by looking at the queue, then requeued again: every payment once."""
    setup.flow = setup.call(lambda broker, store: parked_payments(broker, store, SMALL))
    work = setup.flow.work
    with HeldConfirms(5672) as proxy:
        setup.config = setup.write_config(amqp_url=proxy.url)
        proc = payops_process(setup, "requeue", "--all-matching", "--yes")
        wait_for_messages(setup.amqp_url, work, proc)
        proxy.hold()
        assert proc.poll() is None, "the requeue ended before the broker went quiet"
        assert proc.stderr is not None
        proc.send_signal(sig)
        first = ""
        while "stopping after the windows already sent" not in first:
            first = proc.stderr.readline()
            assert first, "the first signal was not acknowledged"
        # the orderly stop waits on confirms that do not come: the process is still there
        assert proc.poll() is None
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)

    assert proc.returncode == CODES[sig], err
    assert "stopping at once" in err and "stay in doubt" in err
    assert "summary is incomplete" in err and "payops dlq audit" in err
    listed = set(re.findall(r"^  in doubt: (\S+)", err, re.MULTILINE))
    if listed:  # the windows in flight had no confirm: in doubt, and how to settle them
        assert "payops dlq resolve --all-in-doubt --dry-run" in err
    else:
        assert "nothing was left in doubt" in err
    assert out == ""  # nothing claims a summary

    delivered = payments_of(setup.drain(work))
    assert max(delivered.values(), default=1) == 1
    ids_by_payment: dict[str, str] = {}
    states_by_payment: dict[str, EntryState] = {}

    async def read(broker: Broker, store: ParkingStore) -> None:
        async for batch in store.iter_summaries(f"{setup.prefix}dlq"):
            for s in batch:
                ids_by_payment[str(s.payment_id)] = s.entry_id
                states_by_payment[str(s.payment_id)] = s.state

    setup.call(read)
    claimed = {ids_by_payment[p] for p, s in states_by_payment.items() if s is EntryState.CLAIMED}
    assert claimed == listed  # recovery released what was claimed but never sent
    for payment, state in states_by_payment.items():
        if state is EntryState.REQUEUED:
            assert delivered[payment] == 1, payment
        elif delivered[payment]:
            assert state is EntryState.CLAIMED, (payment, state)

    async def settle(broker: Broker, store: ParkingStore) -> None:
        profile = make_profile(
            setup.amqp_url, setup.redis_url, setup.redis_prefix, [f"{setup.prefix}dlq"]
        )
        publisher = ActionPublisher(setup.amqp_url)
        service = ActionService(store, publisher, profile, "cli-tester", "test-host")
        try:
            _, found = await service.in_doubt()
            there = [f for f in found if delivered[str(f.payment_id)]]
            gone = [f for f in found if not delivered[str(f.payment_id)]]
            hows: list[tuple[list[RecoveredEntry], ResolveHow]] = [
                (there, "delivered"),
                (gone, "release"),
            ]
            for items, how in hows:
                outcomes = await service.resolve_many(items, how)
                assert all(o.ok for o in outcomes), outcomes
        finally:
            await publisher.close()

    setup.call(settle)
    setup.config = setup.write_config()
    assert setup.cli("requeue", "--all-matching", "--yes") == exit_codes.OK
    delivered += payments_of(setup.drain(work))
    assert delivered == Counter({f"pay_{i:05d}": 1 for i in range(SMALL)})
    assert setup.states() == Counter({EntryState.REQUEUED: SMALL})
