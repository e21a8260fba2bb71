"""ConnectionIndicator: text, colour and tooltip for each LinkState, retry countdown."""

from __future__ import annotations

import pytest

from services.links.status import LinkState, LinkStatus
from widgets.common import colors
from widgets.live.connection_indicator import ConnectionIndicator

URL = "amqp://payops@mq.internal:5672/payments"


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def indicator(qtbot, clock):
    widget = ConnectionIndicator("RabbitMQ", clock=clock)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def status(clock, state, **kwargs):
    return LinkStatus("RabbitMQ", state, target=URL, since=clock.now, **kwargs)


def test_it_starts_as_connecting(indicator):
    assert indicator.text() == "RabbitMQ connecting…"
    assert indicator.dot.colour == colors.AMBER


@pytest.mark.parametrize(
    ("state", "colour"),
    [
        (LinkState.CONNECTED, colors.GREEN),
        (LinkState.CONNECTING, colors.AMBER),
        (LinkState.RECONNECTING, colors.AMBER),
        (LinkState.FAILED, colors.RED),
    ],
)
def test_every_state_has_its_colour_and_a_tooltip_with_the_target(indicator, clock, state, colour):
    indicator.show_status(status(clock, state, detail="some detail"))
    assert indicator.dot.colour == colour
    assert indicator.text().startswith("RabbitMQ ")
    assert state.value in indicator.text()
    assert URL in indicator.toolTip()
    assert state.value in indicator.toolTip()


def test_connected(indicator, clock):
    indicator.show_status(status(clock, LinkState.CONNECTED))
    assert indicator.text() == "RabbitMQ connected"
    assert "retrying" not in indicator.toolTip()


def test_reconnecting_counts_down_to_the_next_attempt(indicator, clock):
    indicator.show_status(
        status(clock, LinkState.RECONNECTING, detail="Connection refused", retry_in_s=4.0)
    )
    assert indicator.text() == "RabbitMQ reconnecting · retrying in 4 s"
    assert "Connection refused" in indicator.toolTip()
    assert "retrying in 4 s" in indicator.toolTip()

    clock.now += 1.2
    indicator.on_countdown()
    assert indicator.text() == "RabbitMQ reconnecting · retrying in 3 s"

    clock.now += 10
    indicator.on_countdown()
    assert indicator.text() == "RabbitMQ reconnecting · retrying now…"


def test_connecting_with_a_retry(indicator, clock):
    indicator.show_status(status(clock, LinkState.CONNECTING, retry_in_s=2.0))
    assert indicator.text() == "RabbitMQ connecting · retrying in 2 s"


def test_the_countdown_ticks_by_itself(indicator, clock, qtbot):
    indicator.show_status(status(clock, LinkState.RECONNECTING, retry_in_s=5.0))
    clock.now += 2.5
    qtbot.waitUntil(lambda: indicator.text().endswith("retrying in 3 s"), timeout=2000)


def test_failed_shows_the_reason_shortened_and_the_whole_of_it_in_the_tooltip(indicator, clock):
    reason = (
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN."
        " For details see the broker logfile."
    )
    indicator.show_status(status(clock, LinkState.FAILED, detail=reason))
    assert indicator.text().startswith("RabbitMQ failed: ACCESS_REFUSED - Login was")
    assert indicator.text().endswith("…")
    assert len(indicator.text()) < 70
    assert reason in indicator.toolTip()
    assert URL in indicator.toolTip()


def test_failed_without_a_reason(indicator, clock):
    indicator.show_status(status(clock, LinkState.FAILED))
    assert indicator.text() == "RabbitMQ failed"


def test_tooltip_text_is_escaped(indicator, clock):
    indicator.show_status(status(clock, LinkState.FAILED, detail="queue <payments> gone"))
    assert "&lt;payments&gt;" in indicator.toolTip()
