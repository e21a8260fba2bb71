"""Fixtures for the widget tests: themed QApplication, widgets built and shown offscreen."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from widgets.common.theme import apply_theme


@pytest.fixture(scope="session", autouse=True)
def themed_app(qapp: QApplication) -> QApplication:
    """The session's QApplication with the console's dark theme."""
    apply_theme(qapp)
    return qapp
