"""A dead-letter flow on the real broker and Redis, and a config file: the set-up of the
``payops dlq`` command-line tests."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import redis.asyncio as aioredis

from app.cli.main import main
from services.workbench.model import EntryState
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, DeadLetterFlow, entry_ids
from tests.helpers.paths import REPO_ROOT


class Setup:
    """A dead-letter flow with parked... or not yet parked messages, and a config file."""

    def __init__(self, amqp_url: str, redis_url: str, prefix: str, tmp_path: Path) -> None:
        self.amqp_url = amqp_url
        self.redis_url = redis_url
        self.prefix = prefix
        self.redis_prefix = prefix.rstrip(".")
        self.tmp_path = tmp_path
        self.flow: DeadLetterFlow | None = None
        self.config = self.write_config()

    def write_config(self, **extra: Any) -> Path:
        lines = [
            "[profiles.t]",
            f'amqp_url = "{extra.pop("amqp_url", self.amqp_url)}"',
            f'redis_url = "{extra.pop("redis_url", self.redis_url)}"',
            f'dead_letter_queues = ["{self.prefix}dlq"]',
            f'redis_prefix = "{self.redis_prefix}"',
            'operator = "cli-tester"',
            # The shared test Redis keeps nothing on disk.
            f"allow_volatile_store = {json.dumps(extra.pop('allow_volatile_store', True))}",
        ]
        for key, value in extra.items():
            lines.append(f"{key} = {json.dumps(value)}")
        path = self.tmp_path / f"payops-{len(list(self.tmp_path.glob('*.toml')))}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    async def _broker(self) -> tuple[aio_pika.abc.AbstractConnection, Broker]:
        connection = await aio_pika.connect(self.amqp_url)
        broker = Broker(connection, self.prefix, self.amqp_url)
        await broker.open()
        return connection, broker

    def dead_letter(self, bodies: list[bytes], **message: Any) -> None:
        """Dead-letter ``bodies`` (``message``: more ``aio_pika.Message`` arguments)."""

        async def run() -> None:
            connection, broker = await self._broker()
            flow = DeadLetterFlow(broker, "rejected")
            if self.flow is None:
                await flow.declare()
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(flow.payments)
            for body in bodies:
                await exchange.publish(
                    aio_pika.Message(body, content_type="application/json", **message),
                    "payment.failed",
                )
            await channel.close()
            await flow.kill(len(bodies))
            await broker.drain(flow.other)
            self.flow = flow
            await connection.close()

        asyncio.run(run())

    def call(self, coro_factory: Any) -> Any:
        async def run() -> Any:
            connection, broker = await self._broker()
            client = aioredis.from_url(self.redis_url)
            try:
                return await coro_factory(broker, ParkingStore(client, self.redis_prefix))
            finally:
                await client.aclose()
                await connection.close()

        return asyncio.run(run())

    def ids(self) -> list[str]:
        async def get(broker: Broker, store: ParkingStore) -> list[str]:
            return sorted(await entry_ids(store, f"{self.prefix}dlq"))

        result: list[str] = self.call(get)
        return result

    def state(self, entry_id: str) -> EntryState:
        async def get(broker: Broker, store: ParkingStore) -> EntryState:
            entry = await store.get(f"{self.prefix}dlq", entry_id)
            assert entry is not None
            return entry.state

        result: EntryState = self.call(get)
        return result

    def states(self) -> Counter[EntryState]:
        async def get(broker: Broker, store: ParkingStore) -> Counter[EntryState]:
            counts: Counter[EntryState] = Counter()
            async for batch in store.iter_summaries(f"{self.prefix}dlq"):
                counts.update(s.state for s in batch)
            return counts

        result: Counter[EntryState] = self.call(get)
        return result

    def drain(self, queue: str) -> list[Any]:
        async def get(broker: Broker, store: ParkingStore) -> list[Any]:
            return await broker.drain(queue)

        result: list[Any] = self.call(get)
        return result

    def cleanup(self) -> None:
        async def run(broker: Broker, store: ParkingStore) -> None:
            for short in ("work", "other", "dlq", "cancelled"):
                broker.queues.append(broker.name(short))
            broker.exchanges += [broker.name("payments"), broker.name("dlx")]
            await broker.cleanup()
            keys = [k async for k in store.redis.scan_iter(match=f"{self.redis_prefix}:*")]
            if keys:
                await store.redis.unlink(*keys)

        self.call(run)

    def cli(self, *args: str, config: Path | None = None) -> int:
        return main(["dlq", *args, "--config", str(config or self.config)])


def payops_process(setup: Setup, *args: str) -> subprocess.Popen[str]:
    """A real ``payops dlq ...`` process (the console script next to this Python)."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "payops"), "dlq", *args, "--config", str(setup.config)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_messages(amqp_url: str, queue: str, proc: subprocess.Popen[str]) -> None:
    """Until ``queue`` holds a message (the requeue is under way) or ``proc`` ended."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if channel.queue_declare(queue, passive=True).method.message_count:
                return
            time.sleep(0.005)
    finally:
        connection.close()


def payments_of(messages: list[Any]) -> Counter[str]:
    return Counter(str(orjson.loads(m.body)["payment_id"]) for m in messages)
