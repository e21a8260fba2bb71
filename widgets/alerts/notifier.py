"""Desktop notifications through the system tray, where the platform has one."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QPointF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPixmap, QPolygonF
from PySide6.QtWidgets import QSystemTrayIcon, QWidget

from widgets.common import colors

log = logging.getLogger(__name__)

_MESSAGE_MS = 10_000


def fallback_icon() -> QIcon:
    """A small warning triangle, for when the application has no window icon."""
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colors.AMBER))
    painter.drawPolygon(QPolygonF([QPointF(16, 3), QPointF(30, 28), QPointF(2, 28)]))
    painter.setBrush(QColor(colors.WINDOW_BG))
    painter.drawRect(15, 11, 3, 9)
    painter.drawRect(15, 22, 3, 3)
    painter.end()
    return QIcon(pixmap)


class DesktopNotifier(QObject):
    """Wraps a ``QSystemTrayIcon`` for "alert fired" notifications.

    The tray icon is created on the first notification (and shown from then
    on, since most platforms only deliver messages from a visible tray icon).
    Its icon is ``icon``, else the parent window's icon, else the
    application's window icon, else a warning triangle. ``notify`` returns
    False, and never raises, where there is no tray (the offscreen platform,
    many minimal desktops); the app can then rely on the banner alone.
    Clicking a message emits ``message_clicked``.
    """

    message_clicked = Signal()

    def __init__(
        self, parent: QObject | None = None, icon: QIcon | None = None, tooltip: str = ""
    ) -> None:
        super().__init__(parent)
        self._icon = icon
        self._tooltip = tooltip or "PayOps Console"
        self._tray: QSystemTrayIcon | None = None
        self.sent = 0

    @property
    def available(self) -> bool:
        """Whether the platform has a system tray to notify through."""
        try:
            return bool(QSystemTrayIcon.isSystemTrayAvailable())
        except Exception:  # pragma: no cover - a broken platform plugin
            return False

    @property
    def tray(self) -> QSystemTrayIcon | None:
        """The tray icon, once a notification created it."""
        return self._tray

    def set_icon(self, icon: QIcon) -> None:
        """Use ``icon`` for the tray from now on."""
        self._icon = icon
        if self._tray is not None:
            self._tray.setIcon(icon)

    @Slot(str, str, bool)
    def notify(self, title: str, text: str, critical: bool = False) -> bool:
        """Show a desktop notification; False when it could not be shown."""
        try:
            if not self.available:
                return False
            tray = self._ensure_tray()
            if not tray.supportsMessages():
                return False
            icon = (
                QSystemTrayIcon.MessageIcon.Critical
                if critical
                else QSystemTrayIcon.MessageIcon.Warning
            )
            tray.showMessage(title, text, icon, _MESSAGE_MS)
        except Exception:  # never let a notification take the console down
            log.exception("desktop notification failed")
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        """Remove the tray icon (on shutdown)."""
        if self._tray is not None:
            self._tray.hide()
            self._tray.deleteLater()
            self._tray = None

    def _ensure_tray(self) -> QSystemTrayIcon:
        if self._tray is None:
            tray = QSystemTrayIcon(self._pick_icon(), self)
            tray.setToolTip(self._tooltip)
            tray.messageClicked.connect(self.message_clicked)
            tray.show()
            self._tray = tray
        return self._tray

    def _pick_icon(self) -> QIcon:
        candidates = [self._icon]
        owner = self.parent()
        if isinstance(owner, QWidget):
            candidates.append(owner.windowIcon())
        candidates.append(QGuiApplication.windowIcon())
        for icon in candidates:
            if icon is not None and not icon.isNull():
                return icon
        return fallback_icon()
