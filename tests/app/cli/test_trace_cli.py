"""``payops trace`` against the real RabbitMQ and Redis: a payment's events go through
the real tap into the payment record; the message is dead-lettered by RabbitMQ,
parked and requeued with ``payops dlq``; the trace lists every step in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from app.cli import exit_codes
from app.cli.main import main
from services.config import Profile, load_profile
from services.flow.payment_events import PaymentEventStore
from services.flow.process import FlowProcess
from services.flow.protocol import ChildConfig
from services.flow.recorder import RecorderState
from services.links.headers import ACTION_ID_HEADER
from services.time_range import zone_name
from tests.helpers.action_kit import PAN, Broker, DeadLetterFlow, payment
from tests.helpers.waiting import eventually
from tests.helpers.zones import local_zone

pytestmark = pytest.mark.integration

MASKED = "411111******1111"
NOTE = f"acquirer back up; card {PAN} checked"


class Scenario:
    """A dead-letter topology, an events exchange, a config file and a recording flow."""

    def __init__(self, broker: Broker, tmp_path: Path, amqp_url: str, redis_url: str) -> None:
        self.broker = broker
        self.dead = DeadLetterFlow(broker, "rejected")
        self.events_name = broker.name("events")
        prefix = broker.prefix.rstrip(".")
        self.config = tmp_path / "payops.toml"
        self.config.write_text(
            "\n".join(
                [
                    "[profiles.t]",
                    f'amqp_url = "{amqp_url}"',
                    f'redis_url = "{redis_url}"',
                    f'tap_exchanges = ["{self.events_name}", "{self.dead.dlx}"]',
                    f'dead_letter_queues = ["{self.dead.dlq}"]',
                    f'redis_prefix = "{prefix}"',
                    'operator = "alice"',
                    "allow_volatile_store = true",
                    "alert_defaults = false",
                    "payment_events_recent_min = 5",
                ]
            )
            + "\n"
        )
        self.profile: Profile = load_profile(self.config, env={})
        self.states: list[RecorderState] = []
        self.flow = FlowProcess(
            ChildConfig(self.profile, capacity_s=600),
            lambda _: None,
            on_recorder=self.states.append,
        )
        self.events: aio_pika.abc.AbstractExchange | None = None

    async def start(self) -> None:
        await self.dead.declare()
        self.events = await self.broker.exchange("events", aio_pika.ExchangeType.TOPIC)
        self.flow.start()
        await eventually(
            lambda: (
                self.flow.tap.ready.is_set()
                and bool(self.states)
                and self.states[-1].role == "writer"
            ),
            30,
            "a recording writer",
        )

    def consumed(self) -> int:
        return sum(self.flow.mirror.totals_by_status().values())

    async def event(self, status: str, headers: dict[str, Any] | None = None, **body: Any) -> None:
        """Publish a status event of pay_7 and wait until the tap counted it."""
        assert self.events is not None
        before = self.consumed()
        message = aio_pika.Message(
            orjson.dumps({"payment_id": "pay_7", "status": status, **body}), headers=headers
        )
        await self.events.publish(message, f"payment.{status}")
        await eventually(lambda: self.consumed() > before, 20, f"the tap to see {status}")

    async def cli(self, *args: str) -> int:
        return await asyncio.to_thread(main, [*args, "--config", str(self.config)])


@pytest.fixture
async def scenario(
    amqp_url: str, redis_url: str, unique_prefix: str, tmp_path: Path
) -> AsyncIterator[Scenario]:
    connection = await aio_pika.connect(amqp_url)
    broker = Broker(connection, unique_prefix, amqp_url)
    await broker.open()
    state = Scenario(broker, tmp_path, amqp_url, redis_url)
    try:
        await state.start()
        yield state
    finally:
        await state.flow.stop()
        with contextlib.suppress(Exception):
            await broker.cleanup()
        await connection.close()


async def test_trace_lists_the_payments_story_in_order_masked(
    scenario: Scenario,
    redis_client: aioredis.Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = scenario.dead
    assert scenario.broker.channel is not None
    payments = await scenario.broker.channel.get_exchange(dead.payments)

    await scenario.event("requested")
    await payments.publish(
        aio_pika.Message(payment(7, card_number=PAN), message_id="pay_7"), "payment.request"
    )
    await scenario.event("failed", reason=f"acquirer timeout after 3012 ms for card {PAN}")
    await dead.kill(1)  # the worker rejects it: RabbitMQ dead-letters it into the DLQ
    assert await scenario.cli("dlq", "park", "--once") == exit_codes.OK
    assert "parked 1" in capsys.readouterr().out
    assert await scenario.cli("dlq", "list", "--json") == exit_codes.OK
    rows = json.loads(capsys.readouterr().out)
    assert [row["payment_id"] for row in rows] == ["pay_7"]
    entry_id = rows[0]["entry_id"]
    code = await scenario.cli("dlq", "requeue", entry_id, "--note", NOTE, "--yes")
    assert code == exit_codes.OK
    capsys.readouterr()

    # The worker takes the requeued message and captures the payment; its event carries
    # the action's id, as the demo's stages copy it.
    work = await scenario.broker.channel.get_queue(dead.work)
    requeued = await work.get(timeout=10)
    await requeued.ack()
    action_id = requeued.headers[ACTION_ID_HEADER]
    await scenario.event("captured", headers={ACTION_ID_HEADER: action_id})
    store = PaymentEventStore.for_profile(redis_client, scenario.profile)

    async def recorded() -> bool:
        return [e.status for e in await store.events("pay_7")] == [
            "requested",
            "failed",
            "captured",
        ]

    for _ in range(200):
        if await recorded():
            break
        await asyncio.sleep(0.05)
    assert await recorded()

    with local_zone(monkeypatch, "America/New_York"):  # not the machine's zone
        assert await scenario.cli("trace", "pay_7") == exit_codes.OK
        zone = zone_name()
    assert zone in ("EST", "EDT")
    captured = capsys.readouterr()
    out = captured.out
    lines = out.splitlines()
    assert lines[0] == "payment pay_7"
    steps = [re.split(r"\s{2,}", line.strip())[1] for line in lines[1:7]]
    assert steps == [
        "requested",
        "failed",
        "dead-lettered",
        "parked",
        "requeue",
        "captured (replayed)",
    ], out
    failed, died, parked_, action = lines[2], lines[3], lines[4], lines[5]
    assert f"acquirer timeout after 3012 ms for card {MASKED}" in failed
    assert f"rejected in {dead.work}" in died
    assert f"in {dead.dlq} as entry {entry_id}" in parked_
    assert "by alice" in action and f"card {MASKED} checked" in action
    assert "requeued 1" in action and "then captured" in action
    assert all(line.split("  ")[1].endswith(f" {zone}") for line in lines[1:7]), out
    assert f"{entry_id} in {dead.dlq}: requeued" in out
    assert PAN not in out + captured.err

    assert await scenario.cli("trace", "pay_7", "--json") == exit_codes.OK
    out = capsys.readouterr().out
    data = json.loads(out)
    assert [(s["kind"], s["what"]) for s in data["steps"]] == [
        ("event", "requested"),
        ("event", "failed"),
        ("dead_letter", "dead-lettered"),
        ("parked", "parked"),
        ("action", "requeue"),
        ("event", "captured"),
    ]
    assert data["steps"][4]["operator"] == "alice" and data["steps"][4]["after"] == ["captured"]
    assert data["steps"][5]["replayed"] is True and data["steps"][2]["exact"] is False
    assert data["entries"] == [
        {
            "dlq": dead.dlq,
            "entry_id": entry_id,
            "state": "requeued",
            "parked_at": data["entries"][0]["parked_at"],
        }
    ]
    assert all(re.search(r"[+-]\d\d:\d\d$", s["at"]) for s in data["steps"])
    assert PAN not in out
    # Dead-lettered and acted on: kept for the retention window, not the recent one.
    assert await redis_client.ttl(store.key("pay_7")) > scenario.profile.payment_events_recent_s


async def test_trace_of_an_unknown_payment_says_so_and_fails(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert await scenario.cli("trace", "pay_unknown") == exit_codes.FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no payment pay_unknown known" in captured.err
    assert "no flow event recorded" in captured.err and scenario.dead.dlq in captured.err
    assert await scenario.cli("trace", "  ") == exit_codes.USAGE
    assert "give a payment id" in capsys.readouterr().err

    down = tmp_path / "down.toml"
    down.write_text(
        scenario.config.read_text().replace(scenario.profile.redis_url, "redis://127.0.0.1:1/0")
    )
    code = await asyncio.to_thread(main, ["trace", "pay_7", "--config", str(down)])
    assert code == exit_codes.UNAVAILABLE
    assert "cannot reach Redis" in capsys.readouterr().err


def test_config_show_lists_the_payment_record_keys_and_refuses_bad_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = '[profiles.t]\namqp_url = "amqp://h/"\nredis_url = "redis://h/0"\n'
    good = tmp_path / "good.toml"
    good.write_text(base + "payment_events = false\npayment_events_recent_min = 5\n")
    assert main(["config", "show", "--config", str(good)]) == exit_codes.OK
    out = capsys.readouterr().out.splitlines()
    assert "payment_events = false" in out and "payment_events_recent_min = 5" in out
    assert main(["config", "show", "--config", str(tmp_path / "none.toml")]) == exit_codes.USAGE
    capsys.readouterr()
    assert main(["config", "show"]) == exit_codes.OK  # the built-in profile: the defaults
    out = capsys.readouterr().out.splitlines()
    assert "payment_events = true" in out and "payment_events_recent_min = 15" in out
    for bad in ('payment_events = "yes"', "payment_events_recent_min = 0"):
        path = tmp_path / "bad.toml"
        path.write_text(base + bad + "\n")
        assert main(["config", "show", "--config", str(path)]) == exit_codes.USAGE
        assert bad.split(" =")[0] in capsys.readouterr().err
