"""What the console remembers between runs: layout, time window, last profile, and the
failed-payments page's columns and detail pane."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import QByteArray, QSettings

ENV_STATE_DIR = "PAYOPS_STATE_DIR"


def state_dir() -> Path:
    """Where per-user state lives ($PAYOPS_STATE_DIR overrides the platform default)."""
    override = os.environ.get(ENV_STATE_DIR)
    return Path(override) if override else Path(platformdirs.user_state_dir("payops"))


class UiState:
    """A small INI file of console state, read and written through QSettings."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_dir() / "console.ini"
        self._settings = QSettings(str(self.path), QSettings.Format.IniFormat)

    @property
    def last_profile(self) -> str | None:
        value = self._settings.value("last_profile")
        return str(value) if value else None

    @last_profile.setter
    def last_profile(self, name: str) -> None:
        self._settings.setValue("last_profile", name)

    @property
    def window_seconds(self) -> int:
        value = self._settings.value("window_seconds", 300)
        try:
            return int(str(value))
        except ValueError:
            return 300

    @window_seconds.setter
    def window_seconds(self, seconds: int) -> None:
        self._settings.setValue("window_seconds", seconds)

    @property
    def layout(self) -> QByteArray | None:
        value = self._settings.value("layout")
        return value if isinstance(value, QByteArray) else None

    @layout.setter
    def layout(self, data: QByteArray) -> None:
        self._settings.setValue("layout", data)

    @property
    def workbench_view(self) -> dict[str, Any] | None:
        """The failed-payments page's columns (order, shown, widths) and detail pane."""
        value = self._settings.value("workbench_view")
        try:
            settings = json.loads(str(value)) if value else None
        except ValueError:
            return None  # a damaged file: the defaults, not a crash
        return settings if isinstance(settings, dict) else None

    @workbench_view.setter
    def workbench_view(self, settings: dict[str, Any]) -> None:
        self._settings.setValue("workbench_view", json.dumps(settings, sort_keys=True))

    def sync(self) -> None:
        """Write to disk now."""
        self._settings.sync()
