"""App tests run their coroutines on qasync's Qt event loop, as the console does."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from tests.helpers.consoles import Consoles
from widgets.common.theme import apply_theme


def _qt_event_loop() -> asyncio.AbstractEventLoop:
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    return qasync.QEventLoop(app)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test in this folder runs on a QEventLoop."""
    return {"qt": _qt_event_loop}


@pytest.fixture(autouse=True)
def collect_qt_garbage() -> Iterator[None]:
    """After each test, free what it left in reference cycles: here, on the GUI thread.

    A closed console's window sits in reference cycles with its controllers. Left to the
    cyclic collector it is freed whenever a later test happens to allocate, from whatever
    thread that is (a pika publisher thread, a Qt timer event), and Qt crashes.
    """
    yield
    gc.collect()


@pytest.fixture
async def consoles(tmp_path: Path) -> AsyncIterator[Consoles]:
    """Start consoles with ``consoles.start(profile)``; they are closed after the test."""
    kit = Consoles(tmp_path)
    yield kit
    await kit.close()
