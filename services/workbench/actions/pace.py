"""How a bulk requeue or retry sends: its :class:`Pace`, and the parsing of the operator's
choice that the CLI (``--rate``, ``--canary``, ``--max-failed-pct``) and the console's
confirmation dialog share, with the same words for what is wrong.

Plain values, no Redis and no Qt: the widgets take it as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

DEFAULT_MAX_FAILED_PCT: Final = 20.0
"""A paced job pauses by itself when more than this share of its payments failed again."""

_RATE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|min|minute))?\s*$")


@dataclass(frozen=True, slots=True)
class Pace:
    """How a job sends: ``rate`` entries a second (0: full speed), a ``canary`` of that many
    first (sent, then waited for until their outcomes are in), and the share of
    ``failed again`` outcomes above which it pauses by itself."""

    rate: float = 0.0
    canary: int = 0
    max_failed_pct: float = DEFAULT_MAX_FAILED_PCT

    @property
    def paced(self) -> bool:
        return self.rate > 0 or self.canary > 0

    def describe(self) -> str:
        """``50/s, canary 20, pauses above 20 % failed again`` (``full speed``)."""
        if not self.paced:
            return "full speed"
        parts = [format_rate(self.rate) if self.rate else "full speed"]
        if self.canary:
            parts.append(f"canary {self.canary:,}")
        parts.append(f"pauses above {self.max_failed_pct:g} % failed again")
        return ", ".join(parts)


def format_rate(rate: float) -> str:
    """``50/s``, ``0.5/s``."""
    return f"{rate:g}/s"


def parse_rate(text: str) -> float:
    """``50/s``, ``50``, ``600/min``: entries a second, more than 0 (ValueError says why not)."""
    found = _RATE.match(text)
    if found is None:
        raise ValueError(f"a rate is like 50/s or 600/min, not {text.strip()!r}")
    value = float(found.group(1))
    if found.group(2) and found.group(2).startswith("min"):
        value /= 60
    if value <= 0:
        raise ValueError(f"a rate must be more than 0: {text.strip()!r}")
    return value


def parse_percent(text: str) -> float:
    """``10``, ``10%``: a share from 0 to 100 (ValueError says why not)."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"a percentage is like 10 or 10%, not {text.strip()!r}") from None
    if not 0 <= value <= 100:
        raise ValueError(f"a percentage is from 0 to 100: {text.strip()!r}")
    return value


def pace_of(
    rate: float | None, canary: int, max_failed_pct: float = DEFAULT_MAX_FAILED_PCT
) -> Pace | None:
    """The pace asked for (None: full speed, the default that keeps the fast path)."""
    if canary < 0:
        raise ValueError(f"a canary is a number of payments, 1 or more: {canary}")
    if not 0 <= max_failed_pct <= 100:
        raise ValueError(f"a percentage is from 0 to 100: {max_failed_pct:g}")
    if not rate and not canary:
        return None
    return Pace(rate or 0.0, canary, max_failed_pct)


def pace_problem(pace: Pace | None, selected: int) -> str | None:
    """Why ``pace`` does not fit a job of ``selected`` entries (None when it does)."""
    if pace is None or not pace.canary or selected <= 0:
        return None
    if pace.canary >= selected:
        return (
            f"The canary ({pace.canary:,}) must be smaller than the {selected:,} payments"
            " to send: it is the first few, judged before the rest go"
        )
    return None


__all__ = [
    "DEFAULT_MAX_FAILED_PCT",
    "Pace",
    "format_rate",
    "pace_of",
    "pace_problem",
    "parse_percent",
    "parse_rate",
]
