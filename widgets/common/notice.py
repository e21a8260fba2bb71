"""Message boxes shown from coroutines on the qasync loop."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def show_notice(
    parent: QWidget | None, icon: QMessageBox.Icon, title: str, text: str
) -> QMessageBox:
    """Show ``text`` in a window-modal box and return at once.

    ``QMessageBox.information`` and its kin run a nested event loop until the box is
    closed; called from a coroutine, that loop steps the other tasks while this one is
    still running, which asyncio refuses ("Cannot enter into task"), so the console
    stalls behind the box. ``open()`` shows it without a nested loop.
    """
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
