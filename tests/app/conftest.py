"""App tests run their coroutines on qasync's Qt event loop, as the console does."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from app.console import ConsoleSession
from app.ui_state import UiState
from services.config import Profile
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


class Consoles:
    """Consoles started on profiles as `payops console` starts one; ``close`` closes them all."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.sessions: list[ConsoleSession] = []
        self.running: list[tuple[ConsoleSession, asyncio.Future[None]]] = []

    def start(self, profile: Profile) -> ConsoleSession:
        session = ConsoleSession(
            profile, UiState(self.state_dir / f"state{len(self.sessions)}.ini")
        )
        self.sessions.append(session)
        self.running.append((session, asyncio.ensure_future(session.run())))
        return session

    async def close(self, timeout_s: float = 30) -> None:
        """Close every window and wait for each console to finish (again: nothing to do)."""
        running, self.running = self.running, []
        for session, runner in running:
            session.window.close()
            await asyncio.wait_for(runner, timeout_s)


@pytest.fixture
async def consoles(tmp_path: Path) -> AsyncIterator[Consoles]:
    """Start consoles with ``consoles.start(profile)``; they are closed after the test."""
    kit = Consoles(tmp_path)
    yield kit
    await kit.close()
