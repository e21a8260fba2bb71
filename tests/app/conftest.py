"""App tests run their coroutines on qasync's Qt event loop, as the console does."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import aio_pika
import pytest
from PySide6.QtWidgets import QApplication

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
