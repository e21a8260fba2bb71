"""The Audit trail page while Redis cannot be read: it says so, not "No actions recorded yet".

With Redis unreachable the Failed payments page said why, but the Audit trail page read
"No actions recorded yet", which at 3 a.m. reads as "nobody has acted".
"""

from __future__ import annotations

import pytest

from services.config import Profile
from tests.helpers.consoles import Consoles
from tests.helpers.redis_down import console_with_redis_down
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


async def test_the_audit_page_says_the_trail_cannot_be_read_then_recovers(
    redis_url: str,
    flow: dict[str, str],
    workbench_profile: Profile,
    consoles: Consoles,
) -> None:
    # Redis behind a proxy not yet started: a Redis that does not answer (a closed port)
    async with console_with_redis_down(consoles, workbench_profile, redis_url) as down:
        session, proxy, where = down
        window = session.window
        panel = window.audit_panel
        window.tabs.setCurrentWidget(panel)
        await eventually(
            lambda: "cannot be read" in panel.empty_label.text(), 30, "the page to say so"
        )
        assert where in panel.empty_label.text()
        assert panel.stack.currentWidget() is panel.empty_label
        assert panel.empty_label.isVisible()
        assert panel.count_label.text() == "cannot be read"

        await proxy.start()  # Redis is back: nothing recorded yet, and it says that
        await eventually(
            lambda: panel.empty_label.text() == "No actions recorded yet", 40, "readable again"
        )
        assert panel.count_label.text() == "0 records"
