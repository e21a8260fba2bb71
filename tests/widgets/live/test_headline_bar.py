"""HeadlineBar: formatting, "—" for unknown values, highlight thresholds."""

from __future__ import annotations

import math

import pytest
from PySide6.QtGui import QColor, QPalette

from tests.helpers.frames import make_headline
from widgets.common import colors
from widgets.common.colors import Level
from widgets.live.headline_bar import HeadlineBar, HeadlineThresholds


@pytest.fixture
def bar(qtbot):
    widget = HeadlineBar()
    qtbot.addWidget(widget)
    widget.resize(1200, 90)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown(bar, key):
    return bar.tile(key).value_text()


def value_colour(bar, key):
    label = bar.tile(key).value_label
    return label.palette().color(QPalette.ColorRole.WindowText).name()


def test_before_data_every_counter_shows_a_dash(bar):
    for key in HeadlineBar.KEYS:
        assert shown(bar, key) == "—"
        assert bar.tile(key).level is Level.NORMAL


def test_counters_are_formatted(bar):
    bar.show_headline(
        make_headline(
            events_per_s=1234.4,
            failure_rate_pct=2.5,
            dlq_depth=12345,
            latency_p99_ms=87.4,
            tap_dropped=0,
            total_events=1_000_000,
        )
    )
    assert shown(bar, "events") == "1,234"
    assert shown(bar, "failure_rate") == "2.50"
    assert shown(bar, "dlq_depth") == "12,345"
    assert shown(bar, "latency_p99") == "87"
    assert shown(bar, "tap_dropped") == "0"
    assert "1,000,000" in bar.tile("events").detail_label.text()


@pytest.mark.parametrize(
    ("events", "text"), [(0.0, "0.0"), (3.44, "3.4"), (12.6, "13"), (math.nan, "—")]
)
def test_small_rates_keep_a_decimal(bar, events, text):
    bar.show_headline(make_headline(events_per_s=events))
    assert shown(bar, "events") == text


def test_unknown_values_show_a_dash(bar):
    bar.show_headline(make_headline(failure_rate_pct=None, dlq_depth=None, latency_p99_ms=None))
    assert shown(bar, "failure_rate") == "—"
    assert shown(bar, "dlq_depth") == "—"
    assert shown(bar, "latency_p99") == "—"
    assert bar.tile("dlq_depth").level is Level.NORMAL


@pytest.mark.parametrize(
    ("rate", "level"),
    [(0.0, Level.NORMAL), (4.99, Level.NORMAL), (5.0, Level.NORMAL), (5.01, Level.ALERT)],
)
def test_failure_rate_turns_red_above_five_percent(bar, rate, level):
    bar.show_headline(make_headline(failure_rate_pct=rate))
    assert bar.tile("failure_rate").level is level


@pytest.mark.parametrize(("depth", "level"), [(0, Level.NORMAL), (1, Level.WARN)])
def test_a_non_empty_dlq_is_amber(bar, depth, level):
    bar.show_headline(make_headline(dlq_depth=depth))
    assert bar.tile("dlq_depth").level is level


@pytest.mark.parametrize(("dropped", "level"), [(0, Level.NORMAL), (7, Level.WARN)])
def test_tap_drops_are_amber(bar, dropped, level):
    bar.show_headline(make_headline(tap_dropped=dropped))
    assert bar.tile("tap_dropped").level is level
    assert shown(bar, "tap_dropped") == str(dropped)


def test_highlight_colours_reach_the_screen(bar):
    bar.show_headline(make_headline(failure_rate_pct=12.0, dlq_depth=3, tap_dropped=0))
    assert value_colour(bar, "failure_rate") == QColor(colors.RED).name()
    assert value_colour(bar, "dlq_depth") == QColor(colors.AMBER).name()
    assert value_colour(bar, "tap_dropped") == QColor(colors.TEXT).name()

    bar.show_headline(make_headline(failure_rate_pct=1.0, dlq_depth=0))
    assert value_colour(bar, "failure_rate") == QColor(colors.TEXT).name()
    assert value_colour(bar, "dlq_depth") == QColor(colors.TEXT).name()


def test_thresholds_can_be_tuned(qtbot):
    bar = HeadlineBar(HeadlineThresholds(latency_p99_warn_ms=500, latency_p99_alert_ms=2000))
    qtbot.addWidget(bar)
    bar.show_headline(make_headline(latency_p99_ms=800))
    assert bar.tile("latency_p99").level is Level.WARN
    bar.show_headline(make_headline(latency_p99_ms=2500))
    assert bar.tile("latency_p99").level is Level.ALERT
    assert shown(bar, "latency_p99") == "2,500"


def test_compact_hides_the_context_line(bar):
    bar.set_compact(True)
    assert not bar.tile("events").detail_label.isVisible()
    bar.set_compact(False)
    assert bar.tile("events").detail_label.isVisible()


def test_each_windowed_tile_states_its_window(bar):
    bar.show_headline(
        make_headline(events_per_s=12.0, failure_rate_pct=3.0, latency_p99_ms=40.0, window_s=10)
    )
    for key in ("events", "failure_rate", "latency_p99"):
        assert "last 10 s" in bar.tile(key).detail_label.text(), key
    assert "of all events" not in bar.tile("failure_rate").detail_label.text()
    assert "status events" in bar.tile("failure_rate").toolTip()


def test_replayed_payments_are_said_to_be_left_out_of_the_latency(bar):
    bar.show_headline(make_headline(latency_p99_ms=40.0, replayed_events=1234))
    assert "1,234 replayed left out" in bar.tile("latency_p99").detail_label.text()
    assert "Replayed payments" in bar.tile("latency_p99").toolTip()


def test_dead_letter_tile_says_what_it_counts_and_parked_is_its_own_tile(bar):
    bar.show_headline(make_headline(dlq_depth=0))
    assert bar.tile("dlq_depth").caption_label.text() == "IN DEAD-LETTER QUEUES"
    assert "not yet parked" in bar.tile("dlq_depth").detail_label.text()
    assert shown(bar, "parked") == "—"
    bar.show_parked(2000)
    assert shown(bar, "parked") == "2,000"
    assert bar.tile("parked").caption_label.text() == "PARKED"
    bar.show_parked(None, "workbench list not read")
    assert shown(bar, "parked") == "—"
    assert bar.tile("parked").detail_label.text() == "workbench list not read"
