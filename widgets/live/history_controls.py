"""The flow plots' history controls: ◀ ▶ Live, the range on screen and a busy bar."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from services.time_range import zone_name
from widgets.common.theme import repolish

_MAX_MESSAGE_CHARS = 90


def format_range(from_s: float, to_s: float, now: float) -> str:
    """ "13:05:00 – 14:05:00 CET" (local time and its zone), with dates when the range
    is not all today."""
    start, end, today = time.localtime(from_s), time.localtime(to_s), time.localtime(now)
    clock = "%H:%M:%S"
    zone = zone_name(datetime.datetime.fromtimestamp(to_s))
    if start[:3] == end[:3]:
        head = clock if start[:3] == today[:3] else f"%b %d {clock}"
        return f"{time.strftime(head, start)} – {time.strftime(clock, end)} {zone}"
    span = f"{time.strftime(f'%b %d {clock}', start)} – {time.strftime(f'%b %d {clock}', end)}"
    return f"{span} {zone}"


@dataclass(frozen=True, slots=True)
class HistoryRange:
    """The span of history on screen: ``from_s <= t < to_s`` (epoch seconds)."""

    from_s: float
    to_s: float


class ActionButton(QToolButton):
    """A tool button that mirrors an action without being one of its widgets.

    ``setDefaultAction`` would add the action to the button; a toolbar button
    is always on screen, so the action's shortcuts (PgUp, End…) would then work
    on every page. Mirrored, they work only while the plots are on screen.
    """

    def __init__(self, action: QAction, name: str) -> None:
        super().__init__()
        self._action = action
        self.setObjectName(name)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAutoRaise(True)
        self.clicked.connect(action.trigger)
        action.changed.connect(self.sync)
        self.sync()

    @Slot()
    def sync(self) -> None:
        """Take the action's text, tooltip, enabled state and visibility."""
        self.setText(self._action.text())
        self.setToolTip(self._action.toolTip())
        self.setEnabled(self._action.isEnabled())
        self.setVisible(self._action.isVisible())


class HistoryControls(QWidget):
    """The buttons, the range label and the busy bar for a toolbar, and the actions behind them.

    The actions belong to ``owner`` (the plots): Qt skips the shortcuts of a
    widget that is not on screen, so they work only while the plots are.
    """

    def __init__(self, owner: QWidget) -> None:
        super().__init__()
        self.back_action = QAction("◀", owner)
        self.back_action.setShortcuts([QKeySequence("Alt+Left"), QKeySequence(Qt.Key.Key_PageUp)])
        self.back_action.setToolTip("Back one window in the flow history (Alt+Left, PgUp)")
        self.forward_action = QAction("▶", owner)
        self.forward_action.setShortcuts(
            [QKeySequence("Alt+Right"), QKeySequence(Qt.Key.Key_PageDown)]
        )
        self.forward_action.setToolTip(
            "Forward one window; past now, back to live (Alt+Right, PgDown)"
        )
        self.live_action = QAction("Live", owner)
        self.live_action.setShortcut(QKeySequence(Qt.Key.Key_End))
        self.live_action.setToolTip("Back to the live flow (End)")
        owner.addActions([self.back_action, self.forward_action, self.live_action])

        self.setObjectName("HistoryControls")
        self.back_button = ActionButton(self.back_action, "HistoryBack")
        self.forward_button = ActionButton(self.forward_action, "HistoryForward")
        self.live_button = ActionButton(self.live_action, "HistoryLive")
        self.label = QLabel()
        self.label.setObjectName("HistoryRange")
        self.busy = QProgressBar()
        self.busy.setObjectName("HistoryBusy")
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedSize(28, 6)
        self.busy.setToolTip("Reading the flow history…")
        self.busy.hide()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        for button in (self.back_button, self.forward_button, self.live_button):
            row.addWidget(button)
        row.addSpacing(4)
        row.addWidget(self.label)
        row.addWidget(self.busy, 0, Qt.AlignmentFlag.AlignVCenter)

    def show_state(
        self, history: HistoryRange | None, *, loading: bool, problem: str, now: float
    ) -> str:
        """Show live or the range of ``history`` (with ``problem``, if any); returns the tooltip."""
        self.forward_action.setEnabled(history is not None)
        self.live_action.setEnabled(history is not None)
        self.live_action.setVisible(history is not None)  # the label says "Live" already
        label = self.label
        if history is None:
            mode, text = "live", "● Live"
            tip = "The plots follow the live flow; ◀ (Alt+Left, PgUp) looks back"
        else:
            span = format_range(history.from_s, history.to_s, now)
            if problem:
                mode = "unavailable"
                shown = problem
                if len(shown) > _MAX_MESSAGE_CHARS:
                    shown = shown[: _MAX_MESSAGE_CHARS - 1] + "…"
                text = f"History unavailable: {shown}"
            else:
                mode, text = "history", f"History {span}"
            tip = (
                f"Showing the flow history {span}"
                f"{' (' + problem + ')' if problem else ''};"
                " End returns to live"
            )
        if loading:
            tip += " (reading the flow history…)"
        label.setText(text)
        label.setToolTip(tip)
        if label.property("mode") != mode:
            label.setProperty("mode", mode)
            repolish(label)
        self.busy.setVisible(loading)
        return tip
