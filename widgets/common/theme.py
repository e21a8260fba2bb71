"""The console's dark theme: Fusion, a dark palette, ``resources/style.qss`` and plot defaults."""

from __future__ import annotations

from string import Template

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from resources import resource_path
from widgets.common import colors

ACCENT_DIM = "#1f4f8f"
_THEME_NAMES = (
    "WINDOW_BG",
    "SURFACE",
    "SURFACE_RAISED",
    "PLOT_BG",
    "BORDER",
    "GRID",
    "TEXT",
    "TEXT_MUTED",
    "TEXT_FAINT",
    "ACCENT",
    "GREEN",
    "AMBER",
    "RED",
)
_FONT_FAMILIES = ["Inter", "Segoe UI", "Cantarell", "Noto Sans", "DejaVu Sans", "sans-serif"]


def theme_values() -> dict[str, str]:
    """The names the stylesheet may use, with their colours."""
    values = {name: str(getattr(colors, name)) for name in _THEME_NAMES}
    values["ACCENT_DIM"] = ACCENT_DIM
    return values


def stylesheet() -> str:
    """``resources/style.qss`` with the theme's colours filled in."""
    template = Template(resource_path("style.qss").read_text(encoding="utf-8"))
    return template.substitute(theme_values())


def dark_palette() -> QPalette:
    """A dark palette for the parts a stylesheet does not reach (Fusion's drawing)."""
    palette = QPalette()
    role = QPalette.ColorRole
    for r, value in (
        (role.Window, colors.WINDOW_BG),
        (role.WindowText, colors.TEXT),
        (role.Base, colors.PLOT_BG),
        (role.AlternateBase, colors.SURFACE),
        (role.ToolTipBase, colors.SURFACE_RAISED),
        (role.ToolTipText, colors.TEXT),
        (role.PlaceholderText, colors.TEXT_FAINT),
        (role.Text, colors.TEXT),
        (role.Button, colors.SURFACE_RAISED),
        (role.ButtonText, colors.TEXT),
        (role.BrightText, colors.RED),
        (role.Link, colors.ACCENT),
        (role.Highlight, ACCENT_DIM),
        (role.HighlightedText, "#ffffff"),
        (role.Mid, colors.BORDER),
        (role.Dark, colors.WINDOW_BG),
        (role.Light, colors.SURFACE_RAISED),
    ):
        palette.setColor(r, QColor(value))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.Text, role.WindowText, role.ButtonText):
        palette.setColor(disabled, r, QColor(colors.TEXT_FAINT))
    return palette


def apply_theme(app: QApplication) -> None:
    """Give the whole application the dark theme."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    font = QFont(app.font())
    font.setFamilies(_FONT_FAMILIES)
    app.setFont(font)
    app.setStyleSheet(stylesheet())
    pg.setConfigOptions(antialias=True, background=colors.PLOT_BG, foreground=colors.TEXT_MUTED)
