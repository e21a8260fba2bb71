"""The console's workbench against the real broker and Redis: park, show, requeue once."""

from __future__ import annotations

import asyncio
import dataclasses

import aio_pika
import pytest
import redis.asyncio as aioredis
from PySide6.QtWidgets import QApplication, QLabel, QPlainTextEdit, QTextEdit

from services.config import Profile
from services.workbench.model import EntryState
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.consoles import Consoles
from tests.helpers.waiting import eventually
from tests.helpers.workbench_console import confirm_dialog
from widgets.workbench.action_dialogs import ConfirmActionDialog
from widgets.workbench.action_summary import ActionSummaryDialog

pytestmark = pytest.mark.integration

CARD = "4111111111111111"


async def test_dead_letters_are_parked_shown_masked_and_requeued_exactly_once(
    amqp_url: str,
    redis_url: str,
    flow: dict[str, str],
    workbench_profile: Profile,
    consoles: Consoles,
) -> None:
    profile = workbench_profile
    session = consoles.start(profile)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        workbench = session.workbench
        assert workbench is not None
        await eventually(lambda: len(workbench.index) == 3, 30, "three parked entries in the table")
        banner = session.window.workbench.banner
        await eventually(lambda: not banner.isHidden(), 10, "the durability banner")
        assert "not durable" in banner.text()  # this Redis keeps nothing on disk
        assert "Parking anyway: the profile sets allow_volatile_store" in banner.text()
        session.window.workbench.grab().save("/tmp/wt8a-banner-allowed.png")

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
        dialog = await confirm_dialog(10, "the confirmation dialog")
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
        await redis.aclose()


async def test_parking_into_a_volatile_store_is_refused_and_said_in_banner_and_problems(
    amqp_url: str, flow: dict[str, str], workbench_profile: Profile, consoles: Consoles
) -> None:
    profile = dataclasses.replace(workbench_profile, allow_volatile_store=False)
    session = consoles.start(profile)
    problems = session.window.problems_view
    await eventually(
        lambda: any("parking refused" in p.text for p in problems.active()),
        30,
        "the refusal among the problems",
    )
    refusal = next(p.text for p in problems.active() if "parking refused" in p.text)
    assert "keeps nothing on disk" in refusal and "allow_volatile_store = true" in refusal
    banner = session.window.workbench.banner
    await eventually(lambda: not banner.isHidden(), 10, "the durability banner")
    assert "Parking is off" in banner.text()
    session.window.workbench.grab().save("/tmp/wt8a-banner-refused.png")
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    dlq = await channel.declare_queue(flow["dlq"], passive=True)
    assert dlq.declaration_result.message_count == 3  # nothing taken off the queue
    await connection.close()
    workbench = session.workbench
    assert workbench is not None and len(workbench.index) == 0
