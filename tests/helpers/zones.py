"""The local time zone of a test: ``TZ`` set and ``time.tzset()`` called, undone afterwards."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def local_zone(monkeypatch: pytest.MonkeyPatch, name: str) -> Iterator[None]:
    """Local time is ``name`` (``Europe/Berlin``) inside the block."""
    with monkeypatch.context() as patch:
        patch.setenv("TZ", name)
        time.tzset()
        try:
            yield
        finally:
            patch.undo()
            time.tzset()
