"""Render the failed-payments browser on 5,000 realistic rows and check the picture.

The PNG is kept in the test's tmp_path and copied to /tmp/payops_workbench_table.png
(and to $PAYOPS_SCREENSHOT_DIR when set) to look at.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from services.workbench.index import EntryIndex
from tests.helpers.images import pixels
from tests.helpers.summaries import realistic_summaries
from widgets.workbench.browser import FailedPaymentsView

LOOK_AT = Path("/tmp/payops_workbench_table.png")


def test_workbench_table_screenshot(qtbot, tmp_path: Path):
    index = EntryIndex()
    index.add(realistic_summaries(5000, seed=7, now_ms=int(time.time() * 1000)))
    view = FailedPaymentsView(index)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    qtbot.waitExposed(view)
    view.table.setFocus()
    view.table.selectRow(2)
    view.table.selectionModel().select(
        view.model.index(3, 0),
        view.table.selectionModel().SelectionFlag.Select
        | view.table.selectionModel().SelectionFlag.Rows,
    )
    qtbot.wait(50)

    path = tmp_path / "payops_workbench_table.png"
    assert view.grab().save(str(path))
    shutil.copy(path, LOOK_AT)
    if keep := os.environ.get("PAYOPS_SCREENSHOT_DIR"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)

    image = QImage(str(path))
    assert (image.width(), image.height()) == (1280, 800)
    values = pixels(image)
    distinct, counts = np.unique(values, return_counts=True)
    assert distinct.size > 300  # text, pills, bars: a real picture
    assert counts.max() / values.size < 0.8
    h, w = values.shape
    for rows in (slice(0, h // 2), slice(h // 2, h)):
        for cols in (slice(0, w // 2), slice(w // 2, w)):
            assert np.unique(values[rows, cols]).size > 30
    # every column fits at 1280 px: no horizontal scroll bar in the table
    assert not view.table.horizontalScrollBar().isVisible()
    assert view.count_label.text() == "5,000 of 5,000 entries"
    assert view.selected_label.text() == "2 selected"
