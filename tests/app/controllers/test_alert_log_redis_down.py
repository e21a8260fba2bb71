"""The Alerts page's log while Redis cannot be read: it says so, not "No alerts recorded".

With Redis unreachable the log read "No alerts recorded in the last 24 h", which during
an outage reads as a quiet day.
"""

from __future__ import annotations

import pytest

from services.config import Profile
from tests.helpers.consoles import Consoles
from tests.helpers.redis_down import console_with_redis_down
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


async def test_the_alert_log_says_it_cannot_be_read_then_recovers(
    redis_url: str,
    flow: dict[str, str],
    workbench_profile: Profile,
    consoles: Consoles,
) -> None:
    # Redis behind a proxy not yet started: a Redis that does not answer (a closed port)
    async with console_with_redis_down(consoles, workbench_profile, redis_url) as down:
        session, proxy, where = down
        window = session.window
        panel = window.alerts_panel
        window.tabs.setCurrentWidget(panel)
        await eventually(lambda: "cannot be read" in panel.empty_text(), 30, "the log to say so")
        assert where in panel.empty_text()
        assert panel.log_empty.isVisible()
        assert panel.log_count.text() == "cannot be read"

        await proxy.start()  # Redis is back: nothing recorded, and it says that
        await eventually(
            lambda: panel.empty_text().startswith("No alerts recorded in"), 40, "readable again"
        )
        assert panel.log_count.text() == "0 events"
