"""The argparse types: the one time grammar, delays, amounts, states, numbers."""

from __future__ import annotations

import argparse
import datetime
import time

import pytest

from app.cli import arg_types
from services.time_range import parse_moment, parse_time_point
from services.workbench.model import EntryState


@pytest.mark.parametrize(
    "text", ["2024-05-17T12:00Z", "2024-05-17T14:00+02:00", "09:05", "2024-05-17"]
)
def test_moments_are_the_time_grammar_in_milliseconds(text: str) -> None:
    assert arg_types.moment_ms(text) == int(parse_time_point(text) * 1000)


@pytest.mark.parametrize(("text", "seconds"), [("2h30m", 9000), ("30m", 1800), ("1 h", 3600)])
def test_a_duration_is_that_long_ago(text: str, seconds: int) -> None:
    expected = (time.time() - seconds) * 1000
    assert abs(arg_types.moment_ms(text) - expected) < 2000
    assert abs(arg_types.moment_ms(text) / 1000 - parse_moment(text)) < 2


@pytest.mark.parametrize("text", ["yesterday-ish", "1h30", "12/05/2024"])
def test_bad_moments_say_what_is_accepted(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"not a time: .*duration ago.*ISO 8601"):
        arg_types.moment_ms(text)


@pytest.mark.parametrize(
    ("text", "seconds"), [("1", 1), ("90", 90), ("30s", 30), ("5m", 300), ("1m30s", 90)]
)
def test_delays_are_bare_seconds_or_durations(text: str, seconds: int) -> None:
    assert arg_types.delay(text) == seconds


def test_bad_delays() -> None:
    for text in ("soon", "inf", "nan", "30m5h"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a delay"):
            arg_types.delay(text)
    for text in ("0", "0.5", "1.5s"):
        with pytest.raises(argparse.ArgumentTypeError, match="whole number of seconds"):
            arg_types.delay(text)


def test_clock_amount_states_and_numbers() -> None:
    assert arg_types.clock_time("9:05") == datetime.time(9, 5)
    with pytest.raises(argparse.ArgumentTypeError, match="not a time of day"):
        arg_types.clock_time("25:00")
    assert arg_types.amount("12.10") == 12.1
    with pytest.raises(argparse.ArgumentTypeError, match="not an amount"):
        arg_types.amount("twelve")
    assert arg_types.states("parked, Claimed") == [EntryState.PARKED, EntryState.CLAIMED]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown state 'gone'"):
        arg_types.states("parked,gone")
    assert arg_types.positive(float)("2.5") == 2.5
    for text in ("0", "-1", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="greater than 0"):
            arg_types.positive(float)(text)
    assert arg_types.fraction("5%") == 0.05
