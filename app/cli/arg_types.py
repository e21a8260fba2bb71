"""Argparse ``type=`` functions: each turns one option's text into a value or says what is accepted.

Times and durations follow the one grammar of :mod:`services.time_range`.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable
from decimal import Decimal

from services.time_range import duration_seconds, parse_clock, parse_moment
from services.workbench.model import EntryState


def moment_ms(text: str) -> int:
    """A moment (``2h30m`` ago, ISO 8601, ``HH:MM`` today) in epoch milliseconds."""
    try:
        return int(parse_moment(text) * 1000)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def clock_time(text: str) -> datetime.time:
    """A wall-clock time of today: HH:MM or HH:MM:SS (local time)."""
    try:
        return parse_clock(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def delay(text: str) -> int:
    """Whole seconds to wait: ``90``, ``30s``, ``5m``, ``1m30s``."""
    try:
        seconds = duration_seconds(text, bare_seconds=True)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a delay: {text!r} (seconds, or 30s, 5m, 1m30s)"
        ) from None
    if seconds < 1 or seconds != int(seconds):
        raise argparse.ArgumentTypeError(f"a delay is a whole number of seconds >= 1: {text!r}")
    return int(seconds)


def amount(text: str) -> float:
    """A payment amount, read exactly (``12.10``)."""
    try:
        return float(Decimal(text))
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None


def states(text: str) -> list[EntryState]:
    """Entry states, comma-separated (``parked,claimed``)."""
    found = []
    for part in text.split(","):
        name = part.strip().lower()
        try:
            found.append(EntryState(name))
        except ValueError:
            names = ", ".join(s.value for s in EntryState)
            raise argparse.ArgumentTypeError(f"unknown state {name!r} (one of {names})") from None
    return found


def positive(kind: type[float] | type[int]) -> Callable[[str], float]:
    """A number of ``kind`` greater than 0."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
        return value

    return parse


def fraction(text: str) -> float:
    """A failure rate: 0.05 or 5%."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (use 0.05 or 5%)") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (or 0% and 100%): {text!r}")
    return value
