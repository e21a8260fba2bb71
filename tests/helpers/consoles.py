"""Real consoles in a test: started on profiles on the test's Qt event loop, closed after."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.console import ConsoleSession
from app.ui_state import UiState
from services.config import Profile


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
