"""The one grammar of time expressions, for ``payops dlq``, ``payops snapshot`` and the console.

Durations are one or more ``<number><unit>`` parts, units ``w d h m s`` from
the largest down, each once (``90m``, ``2h30m``, ``1d``, ``1.5h``, ``2h 30m``).
Points in time are ISO 8601 date-times (``2024-05-17T14:00``,
``2024-05-17 14:00:00+02:00``, ``...Z``; local time when no offset is given),
bare dates (local midnight), or a bare ``HH:MM`` / ``HH:MM:SS`` meaning that
time today, local. A moment (``--since``/``--until`` of ``payops dlq``,
``--from``/``--to`` of ``payops snapshot``) is either, a duration meaning that
long ago. Every problem is a ``ValueError`` whose message says what was wrong
and what is accepted.
"""

from __future__ import annotations

import datetime
import functools
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

_UNITS: Final = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_ORDER: Final = "wdhms"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])", re.IGNORECASE)
_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[wdhms]\s*)+", re.IGNORECASE)
_SECONDS = re.compile(r"\s*\d+(?:\.\d+)?\s*")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")

DURATION_HELP: Final = "e.g. 45s, 90m, 2h30m, 1d"
TIME_HELP: Final = (
    "ISO 8601 like 2024-05-17T14:00 (local) or 2024-05-17T12:00Z, or HH:MM[:SS] meaning today"
)
MOMENT_HELP: Final = f"a duration ago like 30m or 2h30m, {TIME_HELP}"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Whole epoch seconds ``from_s <= t < to_s``."""

    from_s: int
    to_s: int

    @property
    def seconds(self) -> int:
        return self.to_s - self.from_s


def duration_seconds(text: str, *, bare_seconds: bool = False) -> float:
    """The exact seconds of a duration (``2h30m``, ``1.5h``, ``0s``).

    With ``bare_seconds`` a plain number (``90``, ``2.5``) is seconds too.
    """
    if bare_seconds and _SECONDS.fullmatch(text):
        return float(text)
    parts = _DURATION_PART.findall(text) if _DURATION.fullmatch(text) else []
    ranks = [_UNIT_ORDER.index(unit.lower()) for _, unit in parts]
    if not parts or ranks != sorted(set(ranks)):
        raise ValueError(f"not a duration: {text!r} ({DURATION_HELP})")
    return float(sum(Decimal(number) * _UNITS[unit.lower()] for number, unit in parts))


def parse_duration(text: str) -> int:
    """Whole seconds in ``1h``, ``90m``, ``2h30m``, ``1d`` ...; at least one second."""
    seconds = round(duration_seconds(text))
    if seconds < 1:
        raise ValueError(f"a duration must be at least 1 second: {text!r}")
    return seconds


def parse_clock(text: str) -> datetime.time:
    """A time of day: ``HH:MM`` or ``HH:MM:SS`` (``9:05`` too)."""
    clock = _CLOCK.fullmatch(text.strip())
    if clock is not None:
        hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        if hour <= 23 and minute <= 59 and second <= 59:
            return datetime.time(hour, minute, second)
    raise ValueError(f"not a time of day: {text!r} (HH:MM or HH:MM:SS, 00:00 to 23:59:59)")


def parse_time_point(text: str, *, now: datetime.datetime | None = None) -> float:
    """Epoch seconds of an ISO 8601 date-time, a date, or ``HH:MM[:SS]`` today (local)."""
    return _time_point(text, now, TIME_HELP)


def parse_moment(text: str, *, now: datetime.datetime | None = None) -> float:
    """Epoch seconds of a duration ago (``1h``, ``2h30m``) or of a point in time."""
    if _DURATION.fullmatch(text):
        moment = now or datetime.datetime.now().astimezone()
        return moment.timestamp() - duration_seconds(text)
    return _time_point(text, now, MOMENT_HELP)


def _time_point(text: str, now: datetime.datetime | None, accepted: str) -> float:
    stripped = text.strip()
    if _CLOCK.fullmatch(stripped):
        today = (now or datetime.datetime.now()).astimezone().date()
        local = datetime.datetime.combine(today, parse_clock(stripped))
        return local.astimezone().timestamp()
    try:
        parsed = datetime.datetime.fromisoformat(stripped.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} ({accepted})") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # naive: local time
    return parsed.timestamp()


def resolve_range(
    *,
    since: str | None = None,
    from_text: str | None = None,
    to_text: str | None = None,
    now: float,
    default_since: str = "1h",
) -> TimeRange:
    """The range the options ask for, ending at ``now`` unless ``--to`` says otherwise.

    ``--since`` (a duration) and ``--from``/``--to`` (moments) exclude each
    other; ``--to`` needs ``--from``. ``from_s`` is rounded down and ``to_s``
    up to whole seconds; a range ending after ``now`` is cut at ``now`` (the
    seconds after it hold nothing yet). Raises ``ValueError`` for an empty range or one starting
    after ``now``.
    """
    now_dt = datetime.datetime.fromtimestamp(now).astimezone()
    end = math.floor(now)
    if since is not None and (from_text is not None or to_text is not None):
        raise ValueError("use either --since or --from/--to, not both")
    if to_text is not None and from_text is None:
        raise ValueError("--to needs --from")
    if from_text is None:
        seconds = parse_duration(since if since is not None else default_since)
        return TimeRange(end - seconds, end)
    start = parse_moment(from_text, now=now_dt)
    stop = parse_moment(to_text, now=now_dt) if to_text is not None else float(end)
    if start >= stop:
        raise ValueError(
            f"empty range: --from {format_local_time(start)}"
            f" is not before --to {format_local_time(stop)}"
        )
    if start >= now:
        raise ValueError(f"the range starts in the future ({format_local_time(start)})")
    return TimeRange(math.floor(start), min(math.ceil(stop), end))


def check_range(
    time_range: TimeRange, *, now: float, retention_s: int, max_s: int, grace_s: int = 60
) -> None:
    """Refuse (``ValueError``) an empty range, one longer than ``max_s``, or one
    reaching further back than the history's retention window."""
    if time_range.to_s <= time_range.from_s:
        raise ValueError(
            f"empty range: {format_local_time(time_range.from_s)} is not before"
            f" {format_local_time(time_range.to_s)}"
        )
    if time_range.seconds > max_s:
        raise ValueError(
            f"the range is {format_duration(time_range.seconds)} long;"
            f" a snapshot covers at most {format_duration(max_s)}"
        )
    oldest = math.floor(now) - retention_s
    if time_range.from_s < oldest - grace_s:
        raise ValueError(
            f"the range starts at {format_local_time(time_range.from_s)}, before the retention"
            f" window: the flow history is kept for {format_duration(retention_s)}"
            f" (since {format_local_time(oldest)}); choose a later --from or a shorter --since"
        )


def format_local_time(epoch_s: float, *, date: bool = True) -> str:
    """The one way a moment is shown to people: local time with its zone named.

    ``2024-05-17 14:05:31 CEST`` (``14:05:31 CEST`` without the date). A zone
    with no abbreviation (its name is an offset, like ``+03``, or empty) is
    shown as ``UTC+03:00``. Machine output (JSON) uses :func:`iso_local`.
    """
    moment = datetime.datetime.fromtimestamp(epoch_s).astimezone()
    shown = moment.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")
    return f"{shown} {zone_name(moment)}"


def zone_name(moment: datetime.datetime | None = None) -> str:
    """The local zone's abbreviation at ``moment`` (now when None): ``CET``, ``UTC``, or
    ``UTC+03:00`` when the zone has no abbreviation."""
    moment = (moment or datetime.datetime.now()).astimezone()
    name = moment.tzname() or ""
    if not name or name[0] in "+-" or name[0].isdigit():
        return _offset(moment)
    return name


def iso_local(epoch_ms: int | None) -> str | None:
    """``2024-05-17T14:05:31.123+02:00``: ISO 8601 in local time with its offset (None for None)."""
    if epoch_ms is None:
        return None
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000).astimezone()
    return moment.isoformat(timespec="milliseconds")


def format_utc(epoch_s: float) -> str:
    """``2024-05-17 12:00:00 UTC``: only where UTC is shown on purpose, beside the local
    time (the snapshot report's range and creation time, for readers in other zones).
    People are otherwise shown :func:`format_local_time`."""
    moment = datetime.datetime.fromtimestamp(epoch_s, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_utc(epoch_ms: int | None) -> str:
    """``2024-05-17T12:00:00.123Z`` (empty for None)."""
    if epoch_ms is None:
        return ""
    seconds, ms = divmod(epoch_ms, 1000)
    return f"{_iso_second(seconds)}.{ms:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(epoch_s: int) -> str:
    """``2024-05-17T12:00:00``: remembered, exports format the same seconds many times."""
    return datetime.datetime.fromtimestamp(epoch_s, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def format_duration(seconds: float) -> str:
    """``2 h 30 min``, ``45 s``, ``1 d 2 h``: the two largest units."""
    rest = max(0, round(seconds))
    parts: list[str] = []
    for name, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if rest >= size or (not parts and size == 1):
            count, rest = divmod(rest, size)
            parts.append(f"{count} {name}")
        elif parts:
            break
    return " ".join(parts[:2])


def _offset(moment: datetime.datetime) -> str:
    offset = moment.utcoffset() or datetime.timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"
