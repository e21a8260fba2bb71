"""Argparse ``type=`` functions: each turns one option's text into a value or says what is accepted.

Times and durations follow the one grammar of :mod:`services.time_range`.
"""

from __future__ import annotations

import argparse
import datetime
import math
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from services.time_range import duration_seconds, parse_clock, parse_moment
from services.workbench.actions.pika_link import MAX_DELAY_S
from services.workbench.model import EntryState

_N = TypeVar("_N", int, float)


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
    if seconds > MAX_DELAY_S:
        raise argparse.ArgumentTypeError(
            f"a delay is at most {MAX_DELAY_S // 86400} days ({MAX_DELAY_S:,} s): {text!r}"
        )
    return int(seconds)


def amount(text: str) -> float:
    """A payment amount, read exactly (``12.10``); not NaN or infinite."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"not an amount: {text!r} (a number like 12.10)")
    return float(value)


def count(text: str) -> int:
    """A whole number of rows or records, at least 1 (``--limit``)."""
    value = _number(int, text, "not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def note(text: str) -> str:
    """An operator's note for the audit trail: some text, not only spaces."""
    stripped = text.strip()
    if not stripped:
        raise argparse.ArgumentTypeError("the note is empty: say why, in a few words")
    return stripped


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
    """A finite number of ``kind`` greater than 0."""

    def parse(text: str) -> float:
        value = _number(kind, text, "not a number")
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number greater than 0: {text!r}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
        return value

    return parse


def not_negative(text: str) -> float:
    """A finite number of seconds, 0 or more."""
    value = _number(float, text, "not a number")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more: {text!r}")
    return value


def _number(kind: type[_N], text: str, problem: str) -> _N:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{problem}: {text!r}") from None


def fraction(text: str) -> float:
    """A failure rate: 0.05 or 5%."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (use 0.05 or 5%)") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (or 0% and 100%): {text!r}")
    return value
