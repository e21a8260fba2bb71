"""The console's workbench by cause against the real broker and Redis: dead letters whose
payments failed on the flow are parked with the flow's cause, grouped by it, a cause the
flow tells after parking reaches the table, and a payment id entered in the search box
opens the payment's timeline."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from services.config import Profile
from services.flow.payment_events import PaymentEvent, PaymentEventStore
from tests.helpers.consoles import Consoles
from tests.helpers.live_console import drop_keys
from tests.helpers.waiting import eventually
from widgets.workbench.table_model import COLUMN_NAMES

pytestmark = pytest.mark.integration

TIMEOUT = "acquirer timeout after # ms on acq-#"


def _causes(workbench) -> dict[str | None, tuple[str, str]]:
    index = workbench.index
    return {
        row.payment_id: (row.cause, row.cause_source)
        for row in (index.row(i) for i in range(len(index)))
    }


async def test_the_console_shows_the_flows_causes_groups_by_them_and_opens_a_timeline(
    redis_url: str, flow: dict[str, str], workbench_profile: Profile, consoles: Consoles
) -> None:
    profile = workbench_profile
    redis = aioredis.Redis.from_url(redis_url)
    events = PaymentEventStore.for_profile(redis, profile)
    now = int(time.time() * 1000)
    try:
        # The flow saw pay_0 and pay_1 fail (recorded by a console or payops collect).
        await events.append(
            [
                PaymentEvent("pay_0", now - 3_000, "requested", key="r0"),
                PaymentEvent(
                    "pay_0",
                    now - 2_000,
                    "failed",
                    "acquirer timeout after 3012 ms on acq-7",
                    key="f0",
                ),
                PaymentEvent(
                    "pay_1",
                    now - 1_500,
                    "failed",
                    "acquirer timeout after 2999 ms on acq-2",
                    key="f1",
                ),
                PaymentEvent("pay_9", now - 1_000, "failed", "schema validation failed", key="f9"),
            ],
            lasting_statuses=profile.failure_statuses,
        )
        session = consoles.start(profile)
        session.window.resize(1600, 1000)
        workbench = session.workbench
        assert workbench is not None
        await eventually(lambda: len(workbench.index) == 3, 30, "three parked entries")
        causes = _causes(workbench)
        assert causes["pay_0"] == ("acquirer timeout after 3012 ms on acq-7", "flow")
        assert causes["pay_1"] == ("acquirer timeout after 2999 ms on acq-2", "flow")
        assert causes["pay_2"] == ("rejected", "dead_letter")

        # The flow tells pay_2's cause after it was parked: the parker looks again and
        # the row in the table shows it (an op=cause change).
        await events.append(
            [
                PaymentEvent(
                    "pay_2",
                    int(time.time() * 1000),
                    "failed",
                    "acquirer timeout after 3100 ms on acq-3",
                    key="f2",
                )
            ],
            lasting_statuses=profile.failure_statuses,
        )
        await eventually(
            lambda: _causes(workbench)["pay_2"][1] == "flow", 45, "pay_2's flow cause in the table"
        )

        page = session.window.workbench
        view = page.table_view
        window = session.window
        window.tabs.setCurrentWidget(page)
        view.refresh()
        panel = view.group_panel
        assert panel.by == "failure_group"
        counts = {
            item.data(0, Qt.ItemDataRole.UserRole): item.text(1) for item in panel.group_items()
        }
        assert counts == {TIMEOUT: "3"}
        cause = COLUMN_NAMES.index("cause")
        shown = {view.model.index(r, cause).data() for r in range(view.model.rowCount())}
        assert "acquirer timeout after 3012 ms on acq-7" in shown

        item = panel.group_items()[0]
        QTest.mouseClick(
            panel.list.viewport(),
            Qt.MouseButton.LeftButton,
            pos=panel.list.visualItemRect(item).center(),
        )
        assert view.query.failure_groups == {TIMEOUT} and view.model.rowCount() == 3

        # A payment id typed into the search box: its entry, its Timeline tab in front.
        search = view.search_box
        QTest.keyClicks(search, "pay_0")
        QTest.keyClick(search, Qt.Key.Key_Return)
        detail = page.detail
        await eventually(
            lambda: detail.entry is not None and detail.entry.summary.payment_id == "pay_0",
            15,
            "pay_0's entry in the detail pane",
        )
        await eventually(lambda: detail.timeline.step_count >= 4, 15, "pay_0's timeline")
        assert detail.tabs.currentWidget() is detail.timeline
        assert page.detail_open
        whats = [row[1] for row in detail.timeline.rows()]
        assert whats[:2] == ["requested", "failed"]
        assert "dead-lettered" in whats and whats[-1] == "parked"
        assert detail.timeline.rows()[1][3] == "acquirer timeout after 3012 ms on acq-7"
        index = detail.tabs.indexOf(detail.timeline)
        assert detail.tabs.tabText(index) == f"Timeline ({len(whats)})"

        # A payment that failed on the flow but was never dead-lettered: its story alone.
        search.clear()
        QTest.keyClicks(search, "pay_9")
        QTest.keyClick(search, Qt.Key.Key_Return)
        await eventually(
            lambda: detail.stack.currentWidget() is detail.payment_page, 15, "pay_9's page"
        )
        assert [row[1] for row in detail.payment_timeline.rows()] == ["failed"]
    finally:
        await consoles.close()  # before its keys go
        await drop_keys(profile)
        await redis.aclose()
