"""The Audit trail page while Redis cannot be read: it says so, not "No actions recorded yet".

With Redis unreachable the Failed payments page said why, but the Audit trail page read
"No actions recorded yet", which at 3 a.m. reads as "nobody has acted".
"""

from __future__ import annotations

import dataclasses

import pytest

from services.config import Profile
from tests.helpers.consoles import Consoles
from tests.helpers.tcp_proxy import TcpProxy
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


async def test_the_audit_page_says_the_trail_cannot_be_read_then_recovers(
    redis_url: str,
    flow: dict[str, str],
    workbench_profile: Profile,
    consoles: Consoles,
) -> None:
    proxy = TcpProxy(6379)  # not started: a Redis that does not answer (a closed port)
    where = f"127.0.0.1:{proxy.port}"
    through_proxy = redis_url.replace(":6379", f":{proxy.port}")
    session = consoles.start(dataclasses.replace(workbench_profile, redis_url=through_proxy))
    try:
        window = session.window
        window.resize(1600, 1000)
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
    finally:
        await proxy.stop()
