"""The snapshot dialog's quick ranges, and how it writes times: spans, zone names, file names.

Times are local (the zone the operator reads and types in); epoch seconds go in.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from PySide6.QtCore import QDateTime

from services.time_range import zone_name

INCIDENT: Final = "Incident"
"""The label of the quick-range button that selects the incident's window."""
QUICK_RANGES: Final[tuple[tuple[str, int], ...]] = (
    ("Last 15 min", 15 * 60),
    ("Last hour", 3600),
    ("Last 6 h", 6 * 3600),
    ("Last 24 h", 24 * 3600),
)
"""The quick ranges on offer, ending now: (label, seconds); clamped to the history kept."""
DATE_TIME_FORMAT: Final = "yyyy-MM-dd HH:mm:ss"
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def aware_epoch(value: datetime, name: str) -> float:
    """``value`` in epoch seconds; ``ValueError`` (naming it ``name``) when it has no zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.timestamp()


def local_time(epoch_s: int) -> QDateTime:
    """``epoch_s`` as a local date-time (the zone the operator reads and types in)."""
    return QDateTime.fromSecsSinceEpoch(epoch_s)


def format_span(seconds: int) -> str:
    """A duration by its non-zero units: ``45 s``, ``1 h 30 min``, ``24 h``, ``2 d 3 h``."""
    seconds = max(int(seconds), 0)
    parts: list[str] = []
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for unit, size in units if seconds >= 2 * 86400 else units[1:]:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts) or "0 s"


def zone_text(epoch_s: int) -> str:
    """The local zone's name at ``epoch_s`` (``CET``, ``CEST``, ``IST``), as every time is
    shown (:func:`services.time_range.zone_name`)."""
    return zone_name(datetime.fromtimestamp(epoch_s))


def snapshot_file_name(profile_name: str, from_s: int, to_s: int) -> str:
    """``payops-snapshot-<profile>-<YYYYmmdd-HHMM>-<HHMM>.zip``, in local time."""
    profile = _FILE_UNSAFE.sub("-", profile_name.strip()).strip("-.") or "profile"
    start = local_time(from_s).toString("yyyyMMdd-HHmm")
    end = local_time(to_s).toString("HHmm")
    return f"payops-snapshot-{profile}-{start}-{end}.zip"
