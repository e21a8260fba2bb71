"""Regenerate the README screenshots from the real console on the demo flow.

``make screenshots`` (offscreen): starts the demo simulator with an incident,
opens the console on the demo profile, lets the flow run, and saves PNGs
under ``docs/screenshots/``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qasync
from PySide6.QtWidgets import QApplication

from app.console import ConsoleSession, DemoSimulator
from app.ui_state import UiState
from services.config import load_profile
from services.demo_topology import declare_demo_topology_at
from widgets.theme import apply_theme

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


async def live_console(seconds: float, state_path: Path) -> None:
    """Run the console on the demo flow for ``seconds`` and save the window."""
    profile = load_profile(env={})
    await declare_demo_topology_at(profile.amqp_url)
    simulator = DemoSimulator(
        [
            sys.executable,
            "-m",
            "app",
            "simulate",
            "--rate",
            "40",
            "--incident",
            "--incident-after",
            str(seconds * 0.45),
            "--incident-duration",
            str(seconds * 0.3),
        ]
    )
    session = ConsoleSession(profile, UiState(state_path))
    session.window.resize(1280, 800)
    simulator.start()
    runner = asyncio.ensure_future(session.run())
    try:
        await asyncio.sleep(seconds)
        window_s = 60 if seconds <= 90 else 300
        session.window.select_window(window_s)
        session.live.on_window_selected(window_s)
        await asyncio.sleep(1.0)
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "live-console.png"
        session.window.grab().save(str(path))
        print(f"saved {path}")
        window = session.window
        window.tabs.setCurrentWidget(window.workbench)
        view = window.workbench.table_view
        view.refresh()
        await asyncio.sleep(0.5)
        view.table.selectRow(0)
        await asyncio.sleep(1.5)
        path = OUT / "workbench.png"
        window.grab().save(str(path))
        print(f"saved {path}")
    finally:
        simulator.stop()
        session.window.close()
        await runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=90.0)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    state = Path(os.environ.get("TMPDIR", "/tmp")) / "payops-screenshots.ini"
    qasync.run(live_console(args.seconds, state))


if __name__ == "__main__":
    main()
