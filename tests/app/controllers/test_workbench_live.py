"""The console's workbench against the real broker and Redis: park, show, requeue once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis
from PySide6.QtWidgets import QApplication, QLabel, QPlainTextEdit, QTextEdit

from app.console import ConsoleSession
from app.ui_state import UiState
from services.config import Profile, load_profile
from services.workbench.model import EntryState
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.waiting import eventually
from widgets.workbench.action_dialogs import ConfirmActionDialog
from widgets.workbench.action_summary import ActionSummaryDialog

pytestmark = pytest.mark.integration

CARD = "4111111111111111"


@pytest.fixture
async def flow(amqp_url: str, unique_prefix: str) -> AsyncIterator[dict[str, str]]:
    """A work queue that dead-letters through an exchange into a DLQ, with 3 dead letters."""
    names = {
        "work": f"{unique_prefix}work",
        "dlx": f"{unique_prefix}dlx",
        "dlq": f"{unique_prefix}dlq",
    }
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    dlx = await channel.declare_exchange(names["dlx"], aio_pika.ExchangeType.FANOUT)
    dlq = await channel.declare_queue(names["dlq"])
    await dlq.bind(dlx)
    work = await channel.declare_queue(
        names["work"], arguments={"x-dead-letter-exchange": names["dlx"]}
    )
    for i in range(3):
        body = (
            f'{{"payment_id": "pay_{i}", "merchant": "Acme", "amount": "1{i}.00",'
            f' "currency": "EUR", "card": {{"number": "{CARD}", "cvv": "123"}}}}'
        ).encode()
        await channel.default_exchange.publish(
            aio_pika.Message(body, content_type="application/json"), routing_key=names["work"]
        )
    for _ in range(3):
        message = await work.get(timeout=5)
        assert message is not None
        await message.reject(requeue=False)
    yield names
    for queue in ("work", "dlq"):
        await channel.queue_delete(names[queue])
    await channel.exchange_delete(names["dlx"])
    await connection.close()


def profile_for(names: dict[str, str], amqp_url: str, redis_url: str, prefix: str) -> Profile:
    return dataclasses.replace(
        load_profile(env={}),
        name="workbench-test",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=(),
        watch_queues=(),
        dead_letter_queues=(names["dlq"],),
        redis_prefix=prefix.rstrip("."),
        cancel_exchange=None,
    )


async def test_dead_letters_are_parked_shown_masked_and_requeued_exactly_once(
    amqp_url: str, redis_url: str, unique_prefix: str, flow: dict[str, str], tmp_path: Path
) -> None:
    profile = profile_for(flow, amqp_url, redis_url, unique_prefix)
    session = ConsoleSession(profile, UiState(tmp_path / "s.ini"))
    runner = asyncio.ensure_future(session.run())
    redis = aioredis.Redis.from_url(redis_url)
    try:
        workbench = session.workbench
        assert workbench is not None
        await eventually(lambda: len(workbench.index) == 3, 30, "three parked entries in the table")
        banner = session.window.workbench.banner
        await eventually(lambda: not banner.isHidden(), 10, "the durability banner")
        assert "not durable" in banner.text()  # this Redis keeps nothing on disk

        entry_id = workbench.index.row(0).entry_id
        await workbench.on_entry_activated(entry_id)
        detail = session.window.workbench.detail
        shown_text = " ".join(
            [w.toPlainText() for w in detail.findChildren(QPlainTextEdit)]
            + [w.toPlainText() for w in detail.findChildren(QTextEdit)]
            + [w.text() for w in detail.findChildren(QLabel)]
        )
        assert "pay_" in shown_text and "411111******1111" in shown_text
        assert CARD not in shown_text and '"123"' not in shown_text

        acting = asyncio.ensure_future(
            workbench.act("requeue", ActionTarget.for_entries([entry_id]))
        )
        await eventually(
            lambda: isinstance(QApplication.activeModalWidget(), ConfirmActionDialog),
            10,
            "the confirmation dialog",
        )
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ConfirmActionDialog)
        assert "Requeue" in dialog.summary_text() and flow["work"] in dialog.summary_text()
        dialog.accept()
        report = await asyncio.wait_for(acting, 30)
        assert report is not None and report.succeeded == 1

        summaries = [w for w in session.window.findChildren(ActionSummaryDialog)]
        assert summaries, "a summary says what happened"
        for summary in summaries:
            summary.close()

        # A second requeue of the same entry has nothing to do, and says so.
        again = asyncio.ensure_future(
            workbench.act("requeue", ActionTarget.for_entries([entry_id]))
        )
        await eventually(
            lambda: isinstance(QApplication.activeModalWidget(), ConfirmActionDialog), 10, "dialog"
        )
        second = QApplication.activeModalWidget()
        assert isinstance(second, ConfirmActionDialog)
        assert "skipped" in second.summary_text() or not second.ok_button.isEnabled()
        second.accept()  # does nothing while there is nothing to requeue
        second.reject()
        assert await asyncio.wait_for(again, 30) is None

        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        work = await channel.declare_queue(flow["work"], passive=True)
        assert work.declaration_result.message_count == 1  # exactly once
        await connection.close()

        store = ParkingStore(redis, profile.redis_prefix)
        entry = await store.get(flow["dlq"], entry_id)
        assert entry is not None and entry.state is EntryState.REQUEUED
        await eventually(
            lambda: (
                workbench.index.row(workbench.index.find(entry_id)).state is EntryState.REQUEUED
            ),
            10,
            "the table to show the new state",
        )
    finally:
        session.window.close()
        await asyncio.wait_for(runner, 30)
        await ParkingStore(redis, profile.redis_prefix).delete_all(flow["dlq"])
        await redis.aclose()
