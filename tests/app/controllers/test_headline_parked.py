"""The headline's parked count comes from the workbench's list, in the real console."""

from __future__ import annotations

import pytest

from services.config import Profile
from tests.helpers.consoles import Consoles
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


async def test_the_headline_counts_the_parked_payments(
    workbench_profile: Profile, consoles: Consoles
) -> None:
    session = consoles.start(workbench_profile)  # three dead letters wait in its DLQ
    session.window.resize(1366, 768)
    tile = session.window.headline_bar.tile("parked")
    await eventually(lambda: tile.value_text() == "3", 30, "three parked in the headline")
    assert tile.detail_label.text() == "awaiting an operator"
    dlq_tile = session.window.headline_bar.tile("dlq_depth")
    assert dlq_tile.caption_label.text() == "IN DEAD-LETTER QUEUES"
    session.window.grab().save("/tmp/console_parked.png")
