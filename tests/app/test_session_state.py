"""What the console remembers between runs, and switching profiles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint

from app.console import ConsoleSession, resolve_profile
from app.ui_state import UiState
from tests.helpers.screens import right_click

TWO_PROFILES = """
default_profile = "blue"

[profiles.blue]
amqp_url = "amqp://guest:guest@127.0.0.1:1/"
redis_url = "redis://127.0.0.1:1/0"

[profiles.green]
amqp_url = "amqp://guest:guest@127.0.0.1:1/"
redis_url = "redis://127.0.0.1:1/0"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "payops.toml"
    path.write_text(TWO_PROFILES, encoding="utf-8")
    return path


async def test_layout_window_and_last_profile_survive_a_restart(
    config_file: Path, tmp_path: Path
) -> None:
    state_path = tmp_path / "console.ini"
    state = UiState(state_path)
    profile, loaded = resolve_profile(str(config_file), None, state)
    assert profile.name == "blue"  # the file's default the first time

    first = ConsoleSession(profile, state, loaded)
    runner = asyncio.ensure_future(first.run())
    await asyncio.sleep(0.2)
    first.window.window_actions[900].trigger()
    first.window.resize(760, 560)
    green, _ = resolve_profile(str(config_file), "green", state)
    await first.switch_profile(green)
    assert first.profile is green
    first.window.close()
    await asyncio.wait_for(runner, 10)

    again = UiState(state_path)
    assert again.window_seconds == 900
    assert again.last_profile == "green"
    profile, loaded = resolve_profile(str(config_file), None, again)
    assert profile.name == "green"  # the last one used wins over the file's default
    second = ConsoleSession(profile, again, loaded)
    assert second.window.window_seconds == 900
    assert second.window.size().width() == 760
    checked = [a.text() for a in second.window.profile_group.actions() if a.isChecked()]
    assert checked == ["green"]
    second.window.close()


async def test_profile_menu_switches_the_live_flow(config_file: Path, tmp_path: Path) -> None:
    state = UiState(tmp_path / "s.ini")
    profile, loaded = resolve_profile(str(config_file), "blue", state)
    session = ConsoleSession(profile, state, loaded)
    runner = asyncio.ensure_future(session.run())
    await asyncio.sleep(0.2)
    old_live = session.live
    green = next(a for a in session.window.profile_group.actions() if a.text() == "green")
    green.trigger()
    for _ in range(100):
        if session.profile.name == "green":
            break
        await asyncio.sleep(0.05)
    assert session.profile.name == "green"
    assert session.live is not old_live
    assert "green" in session.window.windowTitle()
    session.window.close()
    await asyncio.wait_for(runner, 10)


@pytest.mark.qt_log_ignore(
    "This plugin does not support raise", "This plugin does not support grabbing"
)  # the offscreen platform on showing a popup menu
async def test_workbench_columns_and_detail_pane_survive_a_restart(
    config_file: Path, tmp_path: Path
) -> None:
    ini = tmp_path / "console.ini"
    profile, loaded = resolve_profile(str(config_file), None, UiState(ini))
    first = ConsoleSession(profile, UiState(ini), loaded, workbench=False)
    window = first.window
    window.show()
    page = window.workbench
    header = page.table_view.table.horizontalHeader()
    right_click(header.viewport(), QPoint(header.sectionViewportPosition(1) + 10, 8))
    menu = page.table_view.table.header_menu
    assert menu is not None
    # "Outcome", or "Outcome (hidden: no room)" where the opened pane leaves no room for it
    next(a for a in menu.actions() if a.text().startswith("Outcome")).trigger()
    menu.close()
    page.detail_button.click()
    shown = page.table_view.table.shown_columns()
    assert "outcome" not in shown and not page.detail_open
    window.close()  # the session remembers on close
    assert first.closed.is_set()

    second = ConsoleSession(profile, UiState(ini), loaded, workbench=False)
    assert second.window.workbench.table_view.table.shown_columns() == shown
    assert not second.window.workbench.detail_open
    second.window.close()
