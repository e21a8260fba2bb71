"""A bulk ``payops dlq requeue`` (a real subprocess) hit by a fault mid-way, then settled
as an operator would; every payment counted by its id.

Shared by the broker-restart and Redis-restart tests: dead letters with unique payment
ids are parked, ``payops dlq requeue --all-matching --yes`` starts, the fault strikes
once the origin queue holds a random number of them, and afterwards:

1. at that moment, each payment is in its origin queue at most once; every entry the
   ledger calls ``requeued`` is there (a recorded confirm survives the fault); every
   payment there is ``requeued`` or claimed (in doubt);
2. ``payops dlq resolve --all-in-doubt --dry-run`` lists exactly what recovery calls in
   doubt; each is settled by looking at the queue (``delivered`` when its payment is
   there, ``release`` when not: the check only a test can make);
3. ``payops dlq requeue --all-matching --yes`` again: every payment ends in its origin
   queue exactly once and every entry is ``requeued``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import redis.asyncio as aioredis

from services.config import FieldPaths, load_profile
from services.links.endpoints import RedisSettings
from services.links.redis_client import make_redis_client
from services.workbench.actions.jobs import Job, JobStore
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.recovery import RecoveredEntry, ResolveHow
from services.workbench.actions.service import ActionService
from services.workbench.model import EntryState
from services.workbench.parker import Parker
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, make_profile
from tests.helpers.park_links import park_link
from tests.helpers.paths import REPO_ROOT
from tests.helpers.private_servers import PrivateSentinel


def payment_of(body: bytes) -> str:
    return str(orjson.loads(body)["payment_id"])


def sentinel_settings(servers: PrivateSentinel) -> dict[str, object]:
    """The profile keys that find Redis through ``servers``' sentinel, acking only what a
    replica has confirmed."""
    return {
        "redis_mode": "sentinel",
        "redis_sentinels": [servers.sentinel],
        "redis_sentinel_master": servers.master_name,
        "redis_min_replicas": 1,
        "allow_volatile_store": True,  # the private servers keep nothing on disk
    }


DRAIN_IDLE_S = 5.0
"""How long the origin queue must stay silent before a drain ends."""


@dataclass
class RequeueScenario:
    """N dead letters of ``<names>work`` parked from ``<names>dlq`` into ``redis_prefix``."""

    amqp_url: str
    redis_url: str
    names: str
    redis_prefix: str
    tmp_path: Path
    n: int
    seed: int = field(default_factory=lambda: random.randrange(1_000_000))
    log: list[str] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)
    """More profile settings (``redis_mode = "sentinel"``...); ``redis_url`` then says
    what the profile's does (the store finds Redis as the profile does). With
    ``amqp_urls`` the profile has no ``amqp_url``: ``amqp_url`` is then the node the
    test's own connections use (set it to another when that one goes away)."""

    @classmethod
    def on_sentinel(
        cls, servers: PrivateSentinel, amqp_url: str, names: str, tmp_path: Path, n: int
    ) -> RequeueScenario:
        """A scenario whose profile finds Redis through ``servers``' sentinel
        (:func:`sentinel_settings`); its Redis prefix is ``names`` without its dot."""
        return cls(
            amqp_url, "redis://payops/0", names, names.rstrip("."), tmp_path, n,
            settings=sentinel_settings(servers),
        )  # fmt: skip

    @contextlib.asynccontextmanager
    async def action_service(self, **options: Any) -> AsyncIterator[ActionService]:
        """night-shift's action service as the profile makes it (its store on a client of
        its own, with the profile's ``redis_min_replicas``), closed afterwards."""
        profile = load_profile(self.config)
        client = make_redis_client(profile.redis_settings, socket_timeout=10)
        store = ParkingStore(client, self.redis_prefix, min_replicas=profile.redis_min_replicas)
        publisher = ActionPublisher(self.amqp_url)
        try:
            yield ActionService(store, publisher, profile, "night-shift", "faults", **options)
        finally:
            await publisher.close()
            await client.aclose()

    @property
    def work(self) -> str:
        return f"{self.names}work"

    @property
    def dlq(self) -> str:
        return f"{self.names}dlq"

    @property
    def config(self) -> Path:
        path = self.tmp_path / "payops.toml"
        if not path.exists():
            nodes = "" if "amqp_urls" in self.settings else f'amqp_url = "{self.amqp_url}"\n'
            path.write_text(
                f"[profiles.f]\n{nodes}"
                f'redis_url = "{self.redis_url}"\n'
                f'dead_letter_queues = ["{self.dlq}"]\nredis_prefix = "{self.redis_prefix}"\n'
                'operator = "night-shift"\n'
                + "".join(f"{key} = {json.dumps(v)}\n" for key, v in self.settings.items())
            )
        return path

    def expected(self) -> Counter[str]:
        return Counter({f"pay_{i:05d}": 1 for i in range(self.n)})

    # ------------------------------------------------------------------ set-up

    async def park_dead_letters(self) -> None:
        """Durable quorum queues, ``n`` persistent payments expired (queue TTL) into the
        DLQ and parked; the origin queue then declared again without the TTL, empty."""
        connection = await aio_pika.connect(self.amqp_url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            quorum = {"x-queue-type": "quorum"}
            await channel.declare_queue(self.dlq, durable=True, arguments=quorum)
            expiring = {
                "x-message-ttl": 1,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dlq,
            }
            await channel.declare_queue(self.work, durable=True, arguments=expiring)
            pending = []
            for i in range(self.n):
                body = orjson.dumps({"payment_id": f"pay_{i:05d}", "amount": "1.00"})
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                pending.append(channel.default_exchange.publish(message, self.work))
                if len(pending) >= 500:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
            broker = Broker(connection, self.names, self.amqp_url)
            await broker.wait_depth(self.dlq, self.n, timeout=60)
            await channel.queue_delete(self.work)
            await channel.declare_queue(self.work, durable=True, arguments=quorum)
            async with self.store() as store, park_link(self.amqp_url) as link:
                stats = await Parker(store, self.dlq, FieldPaths()).run(link, once=True)
            assert stats.parked == self.n
        finally:
            await connection.close()
        # A quorum queue's registration reaches the disk within a second or so
        # (see tests/faults/test_private_servers.py): only then may its node be killed.
        await asyncio.sleep(2)

    async def delete_queues(self) -> None:
        """Delete the scenario's queues (on the shared broker)."""
        connection = await aio_pika.connect(self.amqp_url)
        try:
            channel = await connection.channel()
            for queue in (self.work, self.dlq):
                await channel.queue_delete(queue)
        finally:
            await connection.close()

    # ------------------------------------------------------------------ pieces

    def store(self) -> _StoreContext:
        return _StoreContext(load_profile(self.config).redis_settings, self.redis_prefix)

    async def payops(self, *args: str, timeout_s: float = 180) -> tuple[int, str, str]:
        proc = await self.start("dlq", *args)
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        return proc.returncode or 0, out.decode(), err.decode()

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "payops"), *args, "--config", str(self.config),
            cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def drain_work(self) -> Counter[str]:
        """The payments in the origin queue, taken off it (a consumer: fast).

        A quorum queue just restarted says it holds 0 messages until it has replayed
        its log (seconds for a few thousand), so its count is not trusted: the queue is
        read until it has said nothing for :data:`DRAIN_IDLE_S`."""
        connection = await aio_pika.connect(self.amqp_url)
        found: Counter[str] = Counter()
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=500)
            queue = await channel.declare_queue(self.work, passive=True)
            with contextlib.suppress(TimeoutError):
                async with queue.iterator(timeout=DRAIN_IDLE_S) as messages:
                    async for message in messages:
                        found[payment_of(message.body)] += 1
                        await message.ack()
        finally:
            await connection.close()
        return found

    async def states(self) -> dict[str, EntryState]:
        """Each payment's entry state."""
        found: dict[str, EntryState] = {}
        async with self.store() as store:
            async for batch in store.iter_summaries(self.dlq):
                for summary in batch:
                    assert summary.payment_id not in found, f"{summary.payment_id} parked twice"
                    found[str(summary.payment_id)] = summary.state
        return found

    async def last_job(self) -> Job:
        """The newest job's record (the one the scenario's requeue ran)."""
        async with self.store() as store:
            [job] = await JobStore(store.redis, self.redis_prefix).recent(limit=1)
        return job

    async def wait_until_sent(self, proc: asyncio.subprocess.Process, count: int) -> int:
        """Until the origin queue holds ``count`` messages or ``proc`` ended: how many."""
        connection = await aio_pika.connect(self.amqp_url)
        try:
            channel = await connection.channel()
            deadline = time.monotonic() + 120
            while True:
                queue = await channel.declare_queue(self.work, passive=True)
                depth = queue.declaration_result.message_count or 0
                if depth >= count or proc.returncode is not None:
                    return depth
                assert time.monotonic() < deadline, f"{self.work} never reached {count}"
                await asyncio.sleep(0.003)
        finally:
            await connection.close()

    # ------------------------------------------------------------------ the run

    async def requeue_through(
        self, fault: Callable[[], Awaitable[None]], *more: str
    ) -> tuple[int, str, str]:
        """``payops dlq requeue --all-matching --yes`` (and ``more`` arguments); ``fault``
        strikes once the origin queue holds a random share of the messages. The
        requeue's exit code, stdout and stderr (also kept in the test's folder)."""
        rng = random.Random(self.seed)
        proc = await self.start("dlq", "requeue", "--all-matching", "--yes", *more)
        threshold = rng.randrange(1, self.n * 3 // 4)
        depth = await self.wait_until_sent(proc, threshold)
        self.log.append(f"seed {self.seed}: fault at depth {depth} (threshold {threshold})")
        await fault()
        out, err = await asyncio.wait_for(proc.communicate(), 180)
        self.log.append(f"requeue exit {proc.returncode}")
        (self.tmp_path / "requeue.out").write_bytes(out)
        (self.tmp_path / "requeue.err").write_bytes(err)
        return proc.returncode or 0, out.decode(), err.decode()

    async def check_after_fault(self) -> Counter[str]:
        """Invariant 1 (see the module docstring); the payments taken off the queue."""
        delivered = await self.drain_work()
        states = await self.states()
        why = "; ".join(self.log)
        assert len(states) == self.n, why
        assert max(delivered.values(), default=1) == 1, f"a payment was duplicated: {why}"
        for payment, state in states.items():
            if state is EntryState.REQUEUED:
                assert delivered[payment] == 1, f"{payment} recorded requeued, lost: {why}"
            elif delivered[payment]:
                assert state is EntryState.CLAIMED, f"{payment} in the queue yet {state}: {why}"
        assert set(delivered) <= set(states), why
        return delivered

    async def settle_and_finish(self, delivered: Counter[str]) -> None:
        """Invariants 2 and 3 (see the module docstring)."""
        why = "; ".join(self.log)
        code, out, err = await self.payops("resolve", "--all-in-doubt", "--dry-run")
        assert code == 0, (why, out, err)
        listed = set(re.findall(r"^  in doubt: (\S+)", out, re.MULTILINE))
        async with self.store() as store:
            publisher = ActionPublisher(self.amqp_url)
            profile = make_profile(self.amqp_url, self.redis_url, self.redis_prefix, [self.dlq])
            service = ActionService(store, publisher, profile, "night-shift", "faults")
            try:
                report, found = await service.in_doubt()
                assert {f.entry_id for f in found} == listed, why
                assert not report.in_progress, why
                there: list[RecoveredEntry] = []
                gone: list[RecoveredEntry] = []
                for item in found:
                    entry = await store.get(self.dlq, item.entry_id)
                    assert entry is not None and entry.state is EntryState.CLAIMED, why
                    (there if delivered[payment_of(entry.record.body)] else gone).append(item)
                hows: tuple[tuple[list[RecoveredEntry], ResolveHow], ...] = (
                    (there, "delivered"),
                    (gone, "release"),
                )
                for items, how in hows:
                    outcomes = await service.resolve_many(items, how)
                    assert all(o.ok for o in outcomes), (why, outcomes)
            finally:
                await publisher.close()
        self.log.append(f"in doubt: {len(listed)} ({len(there)} there, {len(gone)} not)")
        code, out, err = await self.payops("requeue", "--all-matching", "--yes")
        assert code == 0, (why, out, err)
        delivered += await self.drain_work()
        assert delivered == self.expected(), f"lost or duplicated: {why}"
        states = await self.states()
        assert Counter(states.values()) == Counter({EntryState.REQUEUED: self.n}), why
        async with self.store() as store:
            assert await store.in_flight(self.dlq) == [], why


ParkOnSentinel = Callable[[int], Awaitable[RequeueScenario]]
"""``await park(n)``: a scenario on a Sentinel set-up with ``n`` dead letters parked."""


class _StoreContext:
    """``async with``: a parking store on a client of its own (a restarted Redis, or the
    master after a failover, is met by a new connection)."""

    def __init__(self, settings: RedisSettings, prefix: str) -> None:
        self.settings = settings
        self.prefix = prefix
        self.client: aioredis.Redis | None = None

    async def __aenter__(self) -> ParkingStore:
        self.client = make_redis_client(self.settings, socket_timeout=10)
        return ParkingStore(self.client, self.prefix)

    async def __aexit__(self, *_: object) -> None:
        assert self.client is not None
        await self.client.aclose()
