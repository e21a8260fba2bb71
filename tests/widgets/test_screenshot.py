"""Render the main window on a realistic 5-minute frame and check the picture is not blank.

Set PAYOPS_SCREENSHOT_DIR to keep the PNGs somewhere to look at them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from tests.helpers.frames import stage_demo_window
from tests.helpers.images import pixels
from widgets.main_window import MainWindow


@pytest.mark.parametrize("size", [(1280, 800), (900, 600)], ids=["1280x800", "900x600"])
def test_main_window_screenshot_is_not_blank(qtbot, tmp_path: Path, size):
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    frame = stage_demo_window(window)
    window.flow_plots.set_crosshair(float(frame.t[int(frame.seconds * 0.8)]))
    qtbot.wait(50)

    path = tmp_path / f"payops_main_window_{size[0]}x{size[1]}.png"
    assert window.grab().save(str(path))
    if keep := os.environ.get("PAYOPS_SCREENSHOT_DIR"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)

    image = QImage(str(path))
    assert (image.width(), image.height()) == size
    values = pixels(image)
    distinct, counts = np.unique(values, return_counts=True)
    assert distinct.size > 500  # curves, text, fills: a real picture
    assert counts.max() / values.size < 0.8  # no single colour covers most of it
    # every quarter of the window has something in it
    h, w = values.shape
    for rows in (slice(0, h // 2), slice(h // 2, h)):
        for cols in (slice(0, w // 2), slice(w // 2, w)):
            assert np.unique(values[rows, cols]).size > 50
