"""The headline's parked count comes from the workbench's list, in the real console."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.console import ConsoleSession
from app.ui_state import UiState
from tests.app.controllers.test_workbench_live import flow, profile_for
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration

__all__ = ["flow"]  # the fixture: three dead letters in a DLQ


async def test_the_headline_counts_the_parked_payments(
    amqp_url: str, redis_url: str, unique_prefix: str, flow: dict[str, str], tmp_path: Path
) -> None:
    profile = profile_for(flow, amqp_url, redis_url, unique_prefix)
    session = ConsoleSession(profile, UiState(tmp_path / "s.ini"))
    session.window.resize(1366, 768)
    runner = asyncio.ensure_future(session.run())
    try:
        tile = session.window.headline_bar.tile("parked")
        await eventually(lambda: tile.value_text() == "3", 30, "three parked in the headline")
        assert tile.detail_label.text() == "awaiting an operator"
        dlq_tile = session.window.headline_bar.tile("dlq_depth")
        assert dlq_tile.caption_label.text() == "IN DEAD-LETTER QUEUES"
        session.window.grab().save("/tmp/shots9e/console_parked.png")
    finally:
        session.window.close()
        await asyncio.wait_for(runner, 15)
