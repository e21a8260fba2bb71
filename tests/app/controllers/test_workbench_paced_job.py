"""A paced job from the console, against the real broker and Redis, driven as a person
drives it: a failure group requeued from its context menu with a real click, a rate and
a canary typed into the confirmation's real fields, the job's progress dialog followed
live (sent, pace, canary, outcomes), Pause / Resume clicked; a canary whose payments
fail again pauses the job, and the dialog and the Audit page say why.

A fake worker consumes the work queue (recording when each payment arrives) and publishes
each arrived payment's status event onto the exchange the console taps, as the demo's
workers do; the arrivals' spacing shows the pace (no wall-clock asserts)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import orjson
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from services.config import TapBinding
from services.outcomes.model import Outcome
from services.workbench.actions.jobs import JobState
from tests.app.controllers.conftest import profile_for
from tests.helpers.consoles import Consoles
from tests.helpers.paced_job_kit import PacedFlow, paced_confirmation, start_confirmed, worker_on
from tests.helpers.screens import save_screenshot
from tests.helpers.waiting import eventually
from tests.helpers.workbench_console import click
from widgets.workbench.action_summary import ActionSummaryDialog

pytestmark = [
    pytest.mark.integration,
    pytest.mark.qt_log_ignore(
        "This plugin does not support raise", "This plugin does not support grabbing"
    ),  # the offscreen platform on showing a popup menu: not ours
]


async def _dead_letters(
    amqp_url: str, redis_url: str, prefix: str, count: int
) -> AsyncIterator[PacedFlow]:
    names = {"work": f"{prefix}work", "dlx": f"{prefix}dlx", "dlq": f"{prefix}dlq"}
    events = f"{prefix}events"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.declare_exchange(events, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    dlx = await channel.declare_exchange(names["dlx"], aio_pika.ExchangeType.FANOUT)
    dlq = await channel.declare_queue(names["dlq"])
    await dlq.bind(dlx)
    work = await channel.declare_queue(
        names["work"], arguments={"x-dead-letter-exchange": names["dlx"]}
    )
    for i in range(count):
        body = orjson.dumps({"payment_id": f"pay_{i:03d}", "merchant": "Acme", "amount": "9.00"})
        await channel.default_exchange.publish(
            aio_pika.Message(body, content_type="application/json"), routing_key=names["work"]
        )
    for _ in range(count):
        message = await work.get(timeout=5)
        assert message is not None
        await message.reject(requeue=False)
    profile = dataclasses.replace(
        profile_for(names, amqp_url, redis_url, prefix), tap_exchanges=(TapBinding(events),)
    )
    try:
        yield PacedFlow(profile, channel, work, events)
    finally:
        for queue in ("work", "dlq"):
            await channel.queue_delete(names[queue])
        await channel.exchange_delete(names["dlx"])
        await connection.close()


@pytest.fixture
async def thirty(amqp_url: str, redis_url: str, unique_prefix: str) -> AsyncIterator[PacedFlow]:
    async for flow in _dead_letters(amqp_url, redis_url, unique_prefix, 30):
        yield flow


@pytest.fixture
async def twelve(amqp_url: str, redis_url: str, unique_prefix: str) -> AsyncIterator[PacedFlow]:
    async for flow in _dead_letters(amqp_url, redis_url, unique_prefix, 12):
        yield flow


async def test_a_paced_job_with_a_canary_runs_at_its_rate_and_pauses_and_resumes_by_clicks(
    thirty: PacedFlow, consoles: Consoles
) -> None:
    async with worker_on(thirty, "captured") as worker:
        session = consoles.start(thirty.profile)
        dialog = await paced_confirmation(session, 30, "10/s", "5")
        assert dialog.pace() is not None and dialog.pace().rate == 10  # type: ignore[union-attr]
        progress, panel = await start_confirmed(session, dialog)
        await eventually(lambda: panel.status is not None, 10, "the job read")
        assert panel.pace_label.text().startswith("Pace 10/s · canary of 5")
        assert progress.cancel_button.text() == "Stop here"
        # The canary's five go, are captured, then the rest follows at 10 a second.
        await eventually(lambda: len(worker.arrivals) >= 14, 60, "the canary and more")
        assert panel.status is not None and panel.status.count(Outcome.SUCCEEDED) >= 5
        assert "canary of 5: judged" in panel.pace_label.text()
        click(panel.pause_button)
        await eventually(
            lambda: panel.status is not None and panel.status.state == "paused", 10, "paused"
        )
        assert not panel.pause_note.isVisible()  # paused by a person: no "by itself" note
        assert panel.resume_button.isEnabled() and not panel.pause_button.isEnabled()
        await asyncio.sleep(0.5)  # a payment in flight when the pause landed may still arrive
        paused_at = len(worker.arrivals)
        assert paused_at < 30
        await asyncio.sleep(2.0)  # 20 would arrive at 10/s
        assert len(worker.arrivals) == paused_at, "sent while paused"
        await eventually(
            lambda: panel.progress_label.text().startswith(f"Sent {paused_at} of 30"),
            2,
            f"the dialog saying {paused_at} sent",
        )
        click(panel.resume_button)

        window = session.window
        await eventually(lambda: bool(window.findChildren(ActionSummaryDialog)), 30, "the end")
        (summary,) = window.findChildren(ActionSummaryDialog)
        assert summary.report.succeeded == 30
        await eventually(lambda: len(worker.arrivals) == 30, 10, "all thirty")
        assert len({payment for _, payment in worker.arrivals}) == 30  # none twice
        # The pace: after the canary, one about every 0.1 s (the pause's gap left out).
        times = [t for t, _ in worker.arrivals]
        gaps = [b - a for a, b in itertools.pairwise(times[5:])]
        steady = [g for g in gaps if g < 1.0]
        assert len(steady) >= len(gaps) - 2  # the pause is the one long gap (and a resume)
        assert 0.06 <= statistics.median(steady) <= 0.2, steady
        span = times[paused_at - 1] - times[5]
        assert span >= 0.7 * (paused_at - 6) / 10, (span, paused_at)
        QTest.mouseClick(summary.close_button, Qt.MouseButton.LeftButton)
        jobs = window.audit_panel.jobs_table.jobs_model
        await eventually(
            lambda: jobs.rowCount() == 1 and jobs.job(0).state == "done", 15, "the job done"
        )


async def test_a_canary_that_fails_again_pauses_the_job_and_says_why(
    twelve: PacedFlow, consoles: Consoles, tmp_path: Path
) -> None:
    async with worker_on(twelve, "failed") as worker:
        session = consoles.start(twelve.profile)
        window = session.window
        dialog = await paced_confirmation(session, 12, "5/s", "3")
        progress, panel = await start_confirmed(session, dialog)
        await eventually(
            lambda: panel.status is not None and panel.status.state == "paused",
            60,
            "the job paused by its canary",
        )
        note = panel.pause_note.text()
        assert panel.pause_note.isVisible()
        assert note.startswith("Paused by itself: canary: 3 of 3 failed again (100 % > 20 %)")
        assert "canary of 3: failed again, job paused" in panel.pace_label.text()
        assert panel.status is not None and panel.status.count(Outcome.FAILED_AGAIN) == 3
        await asyncio.sleep(1.0)
        assert len(worker.arrivals) == 3  # the canary only
        assert panel.progress_label.text() == "Sent 3 of 12"
        assert progress.progress_bar.format() == "3 / 12"
        assert progress.eta_label.text() == "paused"
        save_screenshot(progress, tmp_path, "paced_job_paused_by_canary.png")
        assert progress.width() <= 1366 and progress.height() <= 768
        # The Audit page's jobs say it too (refreshed every 5 s).
        jobs = window.audit_panel.jobs_table.jobs_model
        state = jobs.columns.index("state")
        await eventually(
            lambda: jobs.rowCount() == 1 and "canary: 3 of 3" in jobs.index(0, state).data(),
            15,
            "the job's pause on the Audit page",
        )
        assert (
            jobs.index(0, state)
            .data()
            .startswith("paused by itself: canary: 3 of 3 failed again (100 % > 20 %)")
        )

        click(panel.cancel_button)
        await eventually(lambda: bool(window.findChildren(ActionSummaryDialog)), 30, "the end")
        (summary,) = window.findChildren(ActionSummaryDialog)
        assert summary.report.succeeded == 3
        assert summary.job_panel is not None
        await eventually(
            lambda: (
                summary.job_panel is not None
                and summary.job_panel.status is not None
                and summary.job_panel.status.state == "cancelled"
            ),
            10,
            "cancelled",
        )
        assert len(worker.arrivals) == 3
        QTest.mouseClick(summary.close_button, Qt.MouseButton.LeftButton)
        await eventually(lambda: jobs.job(0).state == "cancelled", 15, "cancelled, on Audit")


async def test_a_job_control_refused_says_so_without_stalling_the_console(
    twelve: PacedFlow, consoles: Consoles
) -> None:
    """Another console cancels the job; Pause clicked here is refused with a notice, and
    the console goes on (the notice ran a nested event loop: the console stalled)."""
    async with worker_on(twelve, "captured") as worker:
        session = consoles.start(twelve.profile)
        window = session.window
        dialog = await paced_confirmation(session, 12, "1/s", "1")
        progress, panel = await start_confirmed(session, dialog)
        await eventually(lambda: panel.status is not None, 10, "the job read")
        assert panel.status is not None and panel.pause_button.isEnabled()
        assert session.workbench is not None and session.workbench.actions is not None
        moved, _ = await session.workbench.actions.jobs.set_state(
            panel.status.job_id,
            JobState.CANCELLED,
            "cancelled by bob from another console",
            only_from=(JobState.RUNNING, JobState.PAUSED),
        )
        assert moved
        click(panel.pause_button)

        def notices() -> list[QMessageBox]:
            return [b for b in progress.findChildren(QMessageBox) if b.isVisible()]

        await eventually(lambda: bool(notices()), 10, "the refusal shown")
        (notice,) = notices()
        assert "is cancelled: it cannot be paused" in notice.text()
        # the console goes on behind the notice: the run ends and says so
        await eventually(lambda: bool(window.findChildren(ActionSummaryDialog)), 30, "the end")
        click(notice.button(QMessageBox.StandardButton.Ok))
        await eventually(lambda: not notices(), 5, "the notice closed")
        assert len(worker.arrivals) < 12
