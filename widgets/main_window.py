"""The console's main window: time window and pause controls, headline, plots, status bar."""

from __future__ import annotations

import struct

from PySide6.QtCore import QByteArray, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QSizePolicy,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from services.flow_types import FlowFrame, Headline
from services.link_status import LinkStatus
from widgets.audit_panel import AuditPanel
from widgets.connection_indicator import ConnectionIndicator
from widgets.flow_plots import FlowPlots
from widgets.headline_bar import HeadlineBar
from widgets.icons import pause_icon, play_icon
from widgets.problems_view import ProblemsView
from widgets.workbench_page import WorkbenchPage

APP_TITLE = "PayOps Console"
#: The time windows on offer: (seconds, label); Ctrl+1.. select them in this order.
WINDOW_CHOICES: tuple[tuple[int, str], ...] = (
    (60, "1 min"),
    (300, "5 min"),
    (900, "15 min"),
    (3600, "1 h"),
)
DEFAULT_WINDOW_S = 300
SERVICES = ("RabbitMQ", "Redis")
COMPACT_BELOW_HEIGHT = 720  # shorter windows drop the counters' context line

_LAYOUT_MAGIC = b"POPS"
_LAYOUT_VERSION = 1
_LAYOUT_HEADER = struct.Struct(">4sHII")  # magic, version, len(geometry), len(state)


class MainWindow(QMainWindow):
    """The live console.

    Pausing freezes the plots only: ``show_frame`` keeps the headline counters
    live (an operator inspecting a frozen plot still sees the failure rate and
    DLQ depth move) and remembers the newest frame, which is drawn on resume.
    The crosshair works while paused.

    ``select_window`` and ``set_paused`` change the controls without a user
    gesture: ``select_window`` does not emit ``window_selected`` (the caller
    already knows), ``pause_toggled`` is emitted on every change of pause.
    """

    window_selected = Signal(int)
    pause_toggled = Signal(bool)
    profile_selected = Signal(str)
    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self._paused = False
        self._latest: FlowFrame | None = None
        self._profile = ""

        self.headline_bar = HeadlineBar()
        self.flow_plots = FlowPlots()
        self.workbench = WorkbenchPage()
        self.audit_panel = AuditPanel()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("PageTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.flow_plots, "Live flow")
        self.tabs.addTab(self.workbench, "Failed payments")
        self.tabs.addTab(self.audit_panel, "Audit trail")
        central = QWidget()
        central.setObjectName("CentralWidget")
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.headline_bar)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect_signals()
        self.select_window(DEFAULT_WINDOW_S)
        self._update_title()
        self.setMinimumSize(720, 480)
        self.resize(1280, 800)

    # -- construction -------------------------------------------------------------------

    def _build_actions(self) -> None:
        self.window_group = QActionGroup(self)
        self.window_group.setExclusive(True)
        self.window_actions: dict[int, QAction] = {}
        for index, (seconds, label) in enumerate(WINDOW_CHOICES, start=1):
            action = QAction(label, self)
            action.setCheckable(True)
            action.setData(seconds)
            action.setShortcut(QKeySequence(f"Ctrl+{index}"))
            action.setToolTip(f"Show the last {label} (Ctrl+{index})")
            self.window_group.addAction(action)
            self.window_actions[seconds] = action

        self.pause_action = QAction(pause_icon(), "Pause", self)
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.pause_action.setToolTip("Freeze the plots to inspect them (Space)")

        self.page_actions: list[QAction] = []
        for index, title in enumerate(("Live flow", "Failed payments", "Audit trail")):
            action = QAction(title, self)
            action.setShortcut(QKeySequence(f"Alt+{index + 1}"))
            action.setData(index)
            self.page_actions.append(action)

        self.clear_problems_action = QAction("Clear problems", self)
        self.quit_action = QAction("Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.addActions(
            [*self.window_actions.values(), *self.page_actions, self.pause_action, self.quit_action]
        )

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.profile_menu = file_menu.addMenu("&Profile")
        self.profile_group = QActionGroup(self)
        self.profile_group.setExclusive(True)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions(self.page_actions)
        view_menu.addSeparator()
        window_menu = view_menu.addMenu("Time &window")
        window_menu.addActions(list(self.window_actions.values()))
        view_menu.addAction(self.pause_action)
        view_menu.addSeparator()
        view_menu.addAction(self.clear_problems_action)

    def _build_toolbar(self) -> None:
        self.toolbar = QToolBar("Live view")
        self.toolbar.setObjectName("LiveToolbar")  # saveState needs a name
        self.toolbar.setMovable(False)
        self.toolbar.setFloatable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        caption = QLabel("Window")
        caption.setObjectName("ToolbarCaption")
        self.toolbar.addWidget(caption)
        for action in self.window_actions.values():
            self.toolbar.addAction(action)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.pause_action)
        pause_button = self.toolbar.widgetForAction(self.pause_action)
        if pause_button is not None:
            pause_button.setObjectName("PauseButton")
        self.paused_badge = QLabel("PAUSED")
        self.paused_badge.setObjectName("PausedBadge")
        self.paused_badge.setToolTip("The plots are frozen; the counters stay live")
        self._paused_badge_action = self.toolbar.addWidget(self.paused_badge)
        self._paused_badge_action.setVisible(False)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.toolbar.addWidget(spacer)
        for button in self.toolbar.findChildren(QToolButton):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self.problems_view = ProblemsView()
        bar.addWidget(self.problems_view, 1)
        self.profile_label = QLabel()
        self.profile_label.setObjectName("ProfileLabel")
        bar.addPermanentWidget(self.profile_label)
        self.indicators: dict[str, ConnectionIndicator] = {
            service: ConnectionIndicator(service) for service in SERVICES
        }
        for indicator in self.indicators.values():
            bar.addPermanentWidget(indicator)
        self.set_profile("", "")

    def _connect_signals(self) -> None:
        """All of the window's own wiring, in one place."""
        self.window_group.triggered.connect(self.on_window_action_triggered)
        self.pause_action.toggled.connect(self.on_pause_action_toggled)
        self.quit_action.triggered.connect(self.close)
        self.clear_problems_action.triggered.connect(self.problems_view.clear)
        self.profile_group.triggered.connect(self.on_profile_action_triggered)
        for action in self.page_actions:
            action.triggered.connect(self.on_page_action_triggered)

    # -- state ---------------------------------------------------------------------------

    @property
    def window_seconds(self) -> int:
        """The selected time window in seconds."""
        checked = self.window_group.checkedAction()
        return int(checked.data()) if checked is not None else DEFAULT_WINDOW_S

    @property
    def paused(self) -> bool:
        """Whether the plots are frozen."""
        return self._paused

    @property
    def rabbitmq_indicator(self) -> ConnectionIndicator:
        """The RabbitMQ connection indicator."""
        return self.indicators["RabbitMQ"]

    @property
    def redis_indicator(self) -> ConnectionIndicator:
        """The Redis connection indicator."""
        return self.indicators["Redis"]

    # -- slots ---------------------------------------------------------------------------

    @Slot(object)
    def show_frame(self, frame: FlowFrame) -> None:
        """Show a frame: the headline always, the plots unless paused."""
        self._latest = frame
        self.headline_bar.show_headline(frame.headline)
        if not self._paused:
            self.flow_plots.show_frame(frame)

    @Slot(object)
    def show_headline(self, headline: Headline) -> None:
        """Update the headline counters alone (between per-second plot updates)."""
        self.headline_bar.show_headline(headline)

    @Slot(object)
    def show_link_status(self, status: LinkStatus) -> None:
        """Show a connection status on the indicator of ``status.service``."""
        indicator = self.indicators.get(status.service)
        if indicator is None:
            self.show_problem(f"status of an unknown service {status.service!r}")
            return
        indicator.show_status(status)

    @Slot(str)
    def show_problem(self, text: str) -> None:
        """Report a problem in the status bar (e.g. "exchange 'x' not found")."""
        self.problems_view.show_problem(text)

    @Slot(str)
    def resolve_problem(self, text: str) -> None:
        """A problem reported with ``text`` has cleared (the exchange exists now)."""
        self.problems_view.resolve_problem(text)

    @Slot(str, str)
    def set_profile(self, name: str, detail: str) -> None:
        """Show which profile the console watches; ``detail`` goes in the tooltip."""
        self._profile = name
        shown = name or "no profile"
        self.profile_label.setText(f"Profile: <b>{shown}</b>")
        self.profile_label.setToolTip(detail or shown)
        self._update_title()

    def set_profiles(self, names: list[str], current: str) -> None:
        """List the config file's profiles in File > Profile, ``current`` checked."""
        self.profile_menu.clear()
        for action in self.profile_group.actions():
            self.profile_group.removeAction(action)
        for name in names:
            action = QAction(name, self)
            action.setCheckable(True)
            action.setChecked(name == current)
            action.setData(name)
            self.profile_group.addAction(action)
            self.profile_menu.addAction(action)
        self.profile_menu.setEnabled(len(names) > 1)

    @Slot(QAction)
    def on_profile_action_triggered(self, action: QAction) -> None:
        name = str(action.data())
        if name != self._profile:
            self.profile_selected.emit(name)

    @Slot()
    def on_page_action_triggered(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.tabs.setCurrentIndex(int(action.data()))

    @Slot(int)
    def select_window(self, seconds: int) -> None:
        """Check the time window of ``seconds`` (does not emit ``window_selected``)."""
        action = self.window_actions.get(seconds)
        if action is None:
            known = ", ".join(str(s) for s in self.window_actions)
            raise ValueError(f"no time window of {seconds} s (choose from {known})")
        action.setChecked(True)

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Pause or resume the plots."""
        self.pause_action.setChecked(paused)

    @Slot()
    def toggle_pause(self) -> None:
        """Pause when live, resume when paused."""
        self.pause_action.toggle()

    @Slot(QAction)
    def on_window_action_triggered(self, action: QAction) -> None:
        """The operator picked a time window."""
        self.window_selected.emit(int(action.data()))

    @Slot(bool)
    def on_pause_action_toggled(self, paused: bool) -> None:
        """Freeze or unfreeze the plots and show it."""
        if paused == self._paused:
            return
        self._paused = paused
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setIcon(play_icon() if paused else pause_icon())
        self.pause_action.setToolTip(
            "Follow the live flow again (Space)" if paused else "Freeze the plots (Space)"
        )
        self._paused_badge_action.setVisible(paused)
        self.flow_plots.set_paused(paused)
        if not paused and self._latest is not None and self._latest is not self.flow_plots.frame:
            self.flow_plots.show_frame(self._latest)
        self._update_title()
        self.pause_toggled.emit(paused)

    # -- layout persistence ---------------------------------------------------------------

    def save_layout(self) -> QByteArray:
        """Geometry and toolbar/dock state in one blob (for QSettings)."""
        geometry = self.saveGeometry().data()
        state = self.saveState(_LAYOUT_VERSION).data()
        header = _LAYOUT_HEADER.pack(_LAYOUT_MAGIC, _LAYOUT_VERSION, len(geometry), len(state))
        return QByteArray(header + geometry + state)

    def restore_layout(self, data: QByteArray | bytes | None) -> bool:
        """Restore what ``save_layout`` saved; False (and no change) when it is unusable."""
        if data is None:
            return False
        raw = data.data() if isinstance(data, QByteArray) else bytes(data)
        if len(raw) < _LAYOUT_HEADER.size:
            return False
        magic, version, geometry_len, state_len = _LAYOUT_HEADER.unpack_from(raw)
        body = raw[_LAYOUT_HEADER.size :]
        if (
            magic != _LAYOUT_MAGIC
            or version != _LAYOUT_VERSION
            or len(body) != geometry_len + state_len
        ):
            return False
        geometry = QByteArray(body[:geometry_len])
        state = QByteArray(body[geometry_len:])
        restored = self.restoreGeometry(geometry)
        return self.restoreState(state, _LAYOUT_VERSION) and restored

    # -- events --------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Close and tell the application (it saves the layout and shuts down)."""
        super().closeEvent(event)
        if event.isAccepted():
            self.closed.emit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Give the plots more room in short windows."""
        super().resizeEvent(event)
        self.headline_bar.set_compact(event.size().height() < COMPACT_BELOW_HEIGHT)

    def _update_title(self) -> None:
        parts = [APP_TITLE]
        if self._profile:
            parts.append(self._profile)
        title = " — ".join(parts)
        self.setWindowTitle(f"{title} (paused)" if self._paused else title)
