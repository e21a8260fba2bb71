"""The console's start-up and shutdown: QApplication, qasync loop, window, controllers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from qasync import asyncSlot

from app.controllers.live import LiveController
from app.controllers.snapshot import SnapshotController
from app.controllers.workbench import WorkbenchController
from app.event_loop import console_event_loop
from app.gc_policy import freeze_start_up
from app.ui_state import UiState, state_dir
from services.config import (
    ENV_PROFILE,
    ConfigError,
    LoadedConfig,
    Profile,
    build_profile,
    find_config_file,
    pick_profile_name,
    read_config,
)
from services.stopping import bounded
from widgets.common.theme import apply_theme
from widgets.main_window import MainWindow

log = logging.getLogger(__name__)

SHUTDOWN_STEP_TIMEOUT_S = 20.0
"""The most one controller's stop may take on close (each bounds its own steps well
below this); after it the console closes without waiting for it."""


def resolve_profile(
    config: str | None, requested: str | None, state: UiState
) -> tuple[Profile, LoadedConfig]:
    """The profile to open: --profile, $PAYOPS_PROFILE, the last one used, the file's default."""
    loaded = read_config(find_config_file(config, os.environ))
    requested = requested or os.environ.get(ENV_PROFILE)
    if not requested and state.last_profile in loaded.profiles:
        requested = state.last_profile
    name = pick_profile_name(loaded, requested)
    return build_profile(loaded, name, os.environ), loaded


def close_on_signals(window: MainWindow) -> None:
    """Ctrl+C or SIGTERM in the terminal closes the window the orderly way.

    Qt leaves SIGINT to Python, whose handler runs between bytecodes: the
    frame timer's ticks give it a chance several times a second.
    """

    def close(signum: int, _frame: object) -> None:
        log.info("%s: closing the console", signal.Signals(signum).name)
        QTimer.singleShot(0, window.close)

    signal.signal(signal.SIGINT, close)
    signal.signal(signal.SIGTERM, close)


class DemoSimulator:
    """The demo's simulator, run as a child process for as long as the console is open."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log_path = state_dir() / "demo-simulator.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as sink:
            self._process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink
            )
        log.info("demo simulator started (pid %s, log %s)", self._process.pid, log_path)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class ConsoleSession:
    """One open console: the window, its controllers, and their orderly shutdown."""

    def __init__(
        self,
        profile: Profile,
        state: UiState,
        loaded: LoadedConfig | None = None,
        *,
        hold_consume: bool = False,
        read_only: bool = False,
        workbench: bool = True,
    ) -> None:
        self.state = state
        self.profile = profile
        self.loaded = loaded
        self.read_only = read_only
        self.window = MainWindow()
        self.live = LiveController(
            self.window, profile, window_seconds=state.window_seconds, hold_consume=hold_consume
        )
        self.workbench = (
            WorkbenchController(self.window, profile, read_only=read_only) if workbench else None
        )
        self._wire_parked()
        self.snapshots = self._snapshot_controller()
        self.closed = asyncio.Event()
        self._connect_signals()
        self._show_profile()
        self.window.select_window(self.live.window_seconds)
        if state.layout is not None:
            self.window.restore_layout(state.layout)
        self.window.workbench.apply_view_settings(state.workbench_view)

    def _wire_parked(self) -> None:
        """The headline's parked count comes from the workbench's list."""
        self.live.parked = self.workbench.parked_count if self.workbench is not None else None

    def _snapshot_controller(self) -> SnapshotController:
        live = self.live
        return SnapshotController(
            self.window, live.profile, live.flow.redis, live.alerts.incident_range
        )

    def _show_profile(self) -> None:
        profile = self.profile
        detail = (
            f"{profile.source}\nRabbitMQ {profile.amqp_display_url}\n"
            f"Redis {profile.redis_display_url}"
        )
        self.window.set_profile(profile.name, detail)
        names = sorted(self.loaded.profiles) if self.loaded else [profile.name]
        self.window.set_profiles(names, profile.name)

    def _connect_signals(self) -> None:
        self.window.window_selected.connect(self.on_window_selected)
        self.window.profile_selected.connect(self.on_profile_selected)
        self.window.closed.connect(self.on_window_closed)

    def on_window_selected(self, seconds: int) -> None:
        self.live.on_window_selected(seconds)

    @asyncSlot(str)
    async def on_profile_selected(self, name: str) -> None:
        """Switch the whole console to another profile of the same config file."""
        if self.loaded is None:
            return
        try:
            profile = build_profile(self.loaded, name, os.environ)
        except ConfigError as exc:
            self.window.show_problem(str(exc))
            self._show_profile()  # re-check the profile still in use
            return
        await self.switch_profile(profile)

    async def switch_profile(self, profile: Profile) -> None:
        """Stop watching the current profile and start on ``profile``."""
        window_seconds = self.live.window_seconds
        await self.snapshots.stop()
        self.snapshots.deleteLater()
        await self.live.stop()
        self.live.deleteLater()
        if self.workbench is not None:
            await self.workbench.stop()
            self.workbench.deleteLater()
            self.workbench = WorkbenchController(self.window, profile, read_only=self.read_only)
        self.profile = profile
        self.live = LiveController(self.window, profile, window_seconds=window_seconds)
        self._wire_parked()
        self.snapshots = self._snapshot_controller()
        self._show_profile()
        self.state.last_profile = profile.name
        await self.live.start()
        if self.workbench is not None:
            await self.workbench.start()

    def on_window_closed(self) -> None:
        """Remember the layout and let ``run`` shut down."""
        self.state.layout = self.window.save_layout()
        self.state.workbench_view = self.window.workbench.view_settings()
        self.state.window_seconds = self.live.window_seconds
        self.state.last_profile = self.profile.name
        self.state.sync()
        self.closed.set()

    async def run(self) -> None:
        """Show the window and run until it is closed."""
        self.window.show()
        await self.live.start()
        if self.workbench is not None:
            await self.workbench.start()
        try:
            await self.closed.wait()
        finally:
            await self.shut_down()

    async def shut_down(self) -> None:
        """Stop every controller, the workbench and the live view side by side; bounded."""
        started = time.monotonic()
        await bounded(self.snapshots.stop(), "stopping the snapshot export")
        steps = [bounded(self.live.stop(), "stopping the live view", SHUTDOWN_STEP_TIMEOUT_S)]
        if self.workbench is not None:
            stop = self.workbench.stop()
            steps.append(bounded(stop, "stopping the workbench", SHUTDOWN_STEP_TIMEOUT_S))
        await asyncio.gather(*steps)
        log.info("console stopped in %.2f s", time.monotonic() - started)


def run_console(
    config: str | None,
    profile_name: str | None,
    demo_simulator: list[str] | None,
    *,
    read_only: bool = False,
) -> int:
    """Open the console and run the Qt + asyncio loop until the window closes."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("PayOps Console")
    app.setOrganizationName("PayOps")
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    state = UiState()
    profile, loaded = resolve_profile(config, profile_name, state)
    simulator = DemoSimulator(demo_simulator) if demo_simulator else None

    async def main() -> None:
        session = ConsoleSession(profile, state, loaded, read_only=read_only)
        close_on_signals(session.window)
        freeze_start_up()  # the windows built: full collections no longer walk them
        if simulator:
            simulator.start()
        await session.run()

    try:
        with asyncio.Runner(loop_factory=console_event_loop) as runner:
            runner.run(main())
    finally:
        if simulator:
            simulator.stop()
    return 0
