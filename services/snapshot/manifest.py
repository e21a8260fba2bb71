"""manifest.json: tool version, profile without credentials, range, counts and every file.

Broker and Redis URLs lose their user, password and secret-looking query
parameters; profile fields whose names sound secret are left out.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from services.alerts.rules import RULE_KINDS
from services.config import Profile, TapBinding
from services.links.urls import url_without_credentials
from services.snapshot.bundle import Member
from services.snapshot.model import SnapshotCounts
from services.time_range import format_local_time, iso_utc

FORMAT: Final = "payops-snapshot/1"
TOOL_NAME: Final = "payops-console"

_SECRET_FIELD = re.compile(r"password|secret|token|credential", re.IGNORECASE)


def tool_version() -> str:
    """The installed version of payops-console."""
    try:
        return importlib.metadata.version(TOOL_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def profile_for_manifest(profile: Profile) -> dict[str, Any]:
    """Every field of the profile, credentials removed, as plain JSON values.

    URLs lose their userinfo; a field whose name sounds secret is left out;
    ``alert_rules`` lists the rules in force (configured or default) with
    their kind.
    """
    data: dict[str, Any] = {}
    for f in dataclasses.fields(profile):
        if f.name == "alert_rules":
            continue
        if _SECRET_FIELD.search(f.name):
            continue
        data[f.name] = _manifest_value(getattr(profile, f.name))
    kinds = {cls: kind for kind, cls in RULE_KINDS.items()}
    data["alert_rules"] = [
        {"kind": kinds.get(type(rule), type(rule).__name__), **_manifest_value(rule)}
        for rule in profile.alerts
    ]
    data["alert_rules_configured"] = profile.alert_rules is not None
    return data


def _manifest_value(value: Any) -> Any:
    if isinstance(value, TapBinding):
        return str(value)  # as the config file writes it: "exchange" or "exchange:key"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _manifest_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_manifest_value(v) for v in value]
    if isinstance(value, str):
        return url_without_credentials(value) if "://" in value else value
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def manifest_json(
    profile: Profile,
    *,
    created_at: float,
    from_s: int,
    to_s: int,
    counts: SnapshotCounts,
    charts: Mapping[str, bytes],
    charts_note: str,
    files: Sequence[Member],
) -> bytes:
    """manifest.json of a bundle: ``files`` are the other members, in the zip's order."""
    created = datetime.datetime.fromtimestamp(created_at, tz=datetime.UTC)
    manifest = {
        "format": FORMAT,
        "tool": {"name": TOOL_NAME, "version": tool_version()},
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "profile": profile_for_manifest(profile),
        "time_range": {
            "from_utc": iso_utc(from_s * 1000),
            "to_utc": iso_utc(to_s * 1000),
            "from_local": format_local_time(from_s),
            "to_local": format_local_time(to_s),
            "from_epoch_s": from_s,
            "to_epoch_s": to_s,
            "seconds": to_s - from_s,
            "end_exclusive": True,
        },
        "counts": dataclasses.asdict(counts),
        "charts": sorted(charts) if charts else charts_note,
        "files": [
            {"name": m.name, "size": m.size, "sha256": m.sha256}
            | ({"rows": m.rows} if m.name.endswith((".csv", ".jsonl")) else {})
            for m in files
        ],
    }
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
