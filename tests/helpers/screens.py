"""Widgets shown offscreen, and their screenshots, for tests that look at them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TypeVar

import numpy as np
from PySide6.QtCore import QPoint
from PySide6.QtGui import QContextMenuEvent, QImage
from PySide6.QtWidgets import QApplication, QWidget

from tests.helpers.images import pixels

W = TypeVar("W", bound=QWidget)


def show(qtbot, widget: W) -> W:
    """``widget`` shown and exposed (pytest-qt closes it after the test)."""
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def save_screenshot(widget: QWidget, tmp_path: Path, name: str) -> QImage:
    """Grab ``widget`` into ``tmp_path / name`` (copied to /tmp to look at); it shows something."""
    path = tmp_path / name
    assert widget.grab().save(str(path))
    shutil.copy(path, Path("/tmp") / name)
    image = QImage(str(path))
    assert np.unique(pixels(image)).size > 50
    return image


def right_click(widget: QWidget, point: QPoint) -> None:
    """Send ``widget`` the context-menu event a right click at ``point`` sends (QTest's
    mouse clicks send none)."""
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, point, widget.mapToGlobal(point))
    QApplication.sendEvent(widget, event)
