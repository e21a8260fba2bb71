"""App tests run their coroutines on qasync's Qt event loop, as the console does."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import aio_pika
import pytest
from PySide6.QtWidgets import QApplication, QWidget

from app.console import ConsoleSession
from app.event_loop import console_event_loop
from services.config import Profile
from tests.helpers.consoles import Consoles
from tests.helpers.live_console import drop_keys
from widgets.common.theme import apply_theme


def _qt_event_loop() -> asyncio.AbstractEventLoop:
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    return console_event_loop()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test in this folder runs on the console's loop (qasync's QEventLoop)."""
    return {"qt": _qt_event_loop}


_KEPT_WINDOWS: list[QWidget] = []


@pytest.fixture(autouse=True)
def keep_windows_until_exit() -> Iterator[None]:
    """Keep every window a test leaves alive until the process exits, then free cycles.

    A closed console's window sits in reference cycles with its controllers. Freed by the
    cyclic collector, its widgets go in no particular order: a child button's wrapper can
    be freed before its window and delete the button under a parent being torn down, and
    a plot's scene deleted by Qt calls into pyqtgraph items half torn down (segfaults in
    ``QObject::~QObject`` and ``QGraphicsScene::clear``, one run of the session tests in
    four). Tests are not about freeing windows, so none is freed: each is hidden and kept;
    the collector then finds no window in what it frees.
    """
    yield
    for widget in QApplication.topLevelWidgets():
        widget.hide()
        _KEPT_WINDOWS.append(widget)
    gc.collect()


@pytest.fixture
async def consoles(tmp_path: Path) -> AsyncIterator[Consoles]:
    """Start consoles with ``consoles.start(profile)``; they are closed after the test."""
    kit = Consoles(tmp_path)
    yield kit
    await kit.close()


@pytest.fixture
async def exchange(amqp_url: str, unique_prefix: str) -> AsyncIterator[str]:
    """A topic exchange of the test's own for a console to tap; deleted afterwards."""
    name = f"{unique_prefix}events"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, auto_delete=False)
    yield name
    await channel.exchange_delete(name)
    await connection.close()


@pytest.fixture
async def session_factory(consoles: Consoles) -> AsyncIterator[Callable[[Profile], ConsoleSession]]:
    """Start consoles at 1280x800; afterwards close them, check the flow process is
    reaped, and drop their Redis keys."""

    def start(profile: Profile) -> ConsoleSession:
        session = consoles.start(profile)
        session.window.resize(1280, 800)
        return session

    yield start
    await consoles.close(15)
    # Closing the window stopped the live flow's process, and reaped it.
    assert multiprocessing.active_children() == []
    for session in consoles.sessions:
        await drop_keys(session.profile)
