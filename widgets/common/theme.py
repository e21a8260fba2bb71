"""The console's dark theme: Fusion, a dark palette, ``resources/style.qss`` and plot defaults."""

from __future__ import annotations

from string import Template

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from resources import resource_path
from widgets.common import colors

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
    "ACCENT_DIM",
    "FOCUS_RING",
    "GREEN",
    "AMBER",
    "RED",
    "ALERT_CRITICAL_BG",
    "ALERT_WARNING_BG",
)
_FONT_FAMILIES = ["Inter", "Segoe UI", "Cantarell", "Noto Sans", "DejaVu Sans", "sans-serif"]


def theme_values() -> dict[str, str]:
    """The names the stylesheet may use, with their colours.

    ``NAME`` is a colour, ``NAME_RGB`` its channels, ``STATE_PARKED`` (and so
    on) the colour of an entry state, ``LINK_FAILED`` (and so on) of a connection.
    """
    values = {name: str(getattr(colors, name)) for name in _THEME_NAMES}
    values.update({f"STATE_{state.name}": c for state, c in colors.STATE_COLORS.items()})
    values.update({f"LINK_{state.name}": c for state, c in colors.LINK_STATE_COLORS.items()})
    for name, colour in list(values.items()):  # for rgba($NAME_RGB, alpha)
        values[f"{name}_RGB"] = ", ".join(str(c) for c in colors.channels(colour))
    return values


def stylesheet() -> str:
    """``resources/style.qss`` with the theme's colours filled in."""
    template = Template(resource_path("style.qss").read_text(encoding="utf-8"))
    return template.substitute(theme_values())


def repolish(widget: QWidget) -> None:
    """Apply the stylesheet again after a dynamic property or the object name changed."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)


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
        (role.Highlight, colors.ACCENT_DIM),
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
