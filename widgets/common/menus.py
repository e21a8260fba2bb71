"""Small helpers for menus."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMenu


def popup_menu(menu: QMenu, where: QPoint) -> QMenu:
    """Show a context menu without blocking (it deletes itself once closed)."""
    menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    menu.popup(where)
    return menu
