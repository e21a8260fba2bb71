"""Pixels of a grabbed widget, for tests that judge a picture."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def pixels(image: QImage) -> np.ndarray:
    """The image as an (h, w) array of 0xAARRGGBB values."""
    rgb = image.convertToFormat(QImage.Format.Format_ARGB32)
    height, width, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    raw = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, : width * 4].copy().view(np.uint32).reshape(height, width)
