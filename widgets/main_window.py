"""The console's main window: time window, pause and history controls, headline, alert
banner, the pages (live flow, failed payments, audit trail, alerts), status bar."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeyEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from services.alerts.model import Alert, AlertEvent, AlertMark
from services.flow.types import FlowFrame, Headline
from services.links.status import LinkState, LinkStatus
from widgets.alerts.banner import AlertBanner
from widgets.alerts.notifier import DesktopNotifier
from widgets.alerts.panel import AlertsPanel
from widgets.common.fitted_label import FittedLabel
from widgets.common.icons import pause_icon, play_icon
from widgets.common.problems_view import ProblemsView
from widgets.live.connection_indicator import ConnectionIndicator
from widgets.live.flow_plots import FlowPlots
from widgets.live.go_to_time_dialog import GoToTimeDialog
from widgets.live.headline_bar import HeadlineBar
from widgets.workbench.audit_panel import AuditPanel
from widgets.workbench.page import WorkbenchPage

APP_TITLE = "PayOps Console"
#: The time windows on offer: (seconds, label); Ctrl+1.. select them in this order.
WINDOW_CHOICES: tuple[tuple[int, str], ...] = (
    (60, "1 min"),
    (300, "5 min"),
    (900, "15 min"),
    (3600, "1 h"),
)
DEFAULT_WINDOW_S = 300
DEFAULT_RETENTION_S = 24 * 3600  # until set_history_retention says otherwise
SERVICES = ("RabbitMQ", "Redis")
PAGE_TITLES = ("Live flow", "Failed payments", "Audit trail", "Alerts")  # Alt+1..Alt+4
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

    History (◀ ▶ Live in the toolbar, see ``FlowPlots``): ``history_requested``
    asks for a range of the flow history, answered with ``show_history_frame``
    (and ``history_loading`` / ``history_unavailable``); ``history_mode_changed``
    says when the plots leave or rejoin the live flow.

    Alerts: ``show_alerts`` feeds the banner (under the counters) and the
    Alerts page, ``show_alert_log`` the page's log, ``show_alert_marks`` the
    shading on the plots; ``alerts_refresh_requested`` asks for all three again.
    ``snapshot_requested`` is the one "export an incident snapshot" intent:
    File › Export snapshot… (Ctrl+E) and the banner's and the Alerts page's
    "Export incident…" buttons all emit it. ``notifier`` posts desktop
    notifications; clicking one raises the window on the Alerts page.
    """

    window_selected = Signal(int)
    pause_toggled = Signal(bool)
    profile_selected = Signal(str)
    closed = Signal()
    snapshot_requested = Signal()
    alerts_refresh_requested = Signal()
    history_requested = Signal(float, float)
    history_mode_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self._paused = False
        self._latest: FlowFrame | None = None
        self._profile = ""

        self.headline_bar = HeadlineBar()
        self.alert_banner = AlertBanner()
        self.flow_plots = FlowPlots()
        self.workbench = WorkbenchPage()
        self.audit_panel = AuditPanel()
        self.alerts_panel = AlertsPanel()
        self.notifier = DesktopNotifier(self, tooltip=APP_TITLE)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("PageTabs")
        self.tabs.setDocumentMode(True)
        pages = (self.flow_plots, self.workbench, self.audit_panel, self.alerts_panel)
        for index, (page, title) in enumerate(zip(pages, PAGE_TITLES, strict=True)):
            self.tabs.addTab(page, title)
            self.tabs.setTabToolTip(index, f"{title} (Alt+{index + 1})")
        central = QWidget()
        central.setObjectName("CentralWidget")
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.headline_bar)
        column.addWidget(self.alert_banner)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self._build_actions()
        self._field_proof_keys = self._window_keys()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect_signals()
        self._history_retention_s = DEFAULT_RETENTION_S
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
        for index, title in enumerate(PAGE_TITLES):
            action = QAction(title, self)
            action.setShortcut(QKeySequence(f"Alt+{index + 1}"))
            action.setToolTip(f"Show the {title} page (Alt+{index + 1})")
            action.setData(index)
            self.page_actions.append(action)

        self.export_snapshot_action = QAction("Export snapshot…", self)
        self.export_snapshot_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_snapshot_action.setToolTip(
            "Write an incident snapshot (flow, alerts, parked messages) for the post-mortem"
            " (Ctrl+E)"
        )
        self.go_to_time_action = QAction("Go to time…", self)
        self.go_to_time_action.setShortcut(QKeySequence("Ctrl+G"))
        self.go_to_time_action.setToolTip(
            "Show the flow around a moment of the stored history (Ctrl+G)"
        )
        self.clear_problems_action = QAction("Clear problems", self)
        # View › Show details: the window's own action (Ctrl+D from any field), in step
        # with the page's pane; the page's shortcut gives way to it
        page = self.workbench
        self.show_details_action = QAction("Show details", self)
        self.show_details_action.setCheckable(True)
        self.show_details_action.setShortcut(page.detail_action.shortcut())
        self.show_details_action.setToolTip(page.detail_action.toolTip())
        page.detail_action.setShortcut(QKeySequence())
        self.show_details_action.toggled.connect(page.detail_action.setChecked)
        page.detail_shown.connect(self.show_details_action.setChecked)
        self.show_details_action.setChecked(page.detail_open)
        self.quit_action = QAction("Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.addActions(
            [
                *self.window_actions.values(),
                *self.page_actions,
                self.pause_action,
                self.export_snapshot_action,
                self.go_to_time_action,
                self.show_details_action,
                self.quit_action,
            ]
        )

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.profile_menu = file_menu.addMenu("&Profile")
        self.profile_group = QActionGroup(self)
        self.profile_group.setExclusive(True)
        file_menu.addSeparator()
        file_menu.addAction(self.export_snapshot_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions(self.page_actions)
        view_menu.addSeparator()
        window_menu = view_menu.addMenu("Time &window")
        window_menu.addActions(list(self.window_actions.values()))
        view_menu.addAction(self.pause_action)
        view_menu.addAction(self.go_to_time_action)
        view_menu.addSeparator()
        view_menu.addAction(self.show_details_action)
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
        self.toolbar.addSeparator()
        self.toolbar.addWidget(self.flow_plots.history_controls)
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
        self.recorder_label = FittedLabel()
        self.recorder_label.setObjectName("RecorderLabel")
        self.recorder_label.hide()
        bar.addPermanentWidget(self.recorder_label)
        self.indicators: dict[str, ConnectionIndicator] = {
            service: ConnectionIndicator(service) for service in SERVICES
        }
        for indicator in self.indicators.values():
            bar.addPermanentWidget(indicator)
        self.set_profile("", "")

    def _window_keys(self) -> frozenset[str]:
        """The window's shortcuts that must work from a text field too (not Space: it types)."""
        actions = [
            *self.window_actions.values(),
            *self.page_actions,
            self.export_snapshot_action,
            self.go_to_time_action,
            self.quit_action,
        ]
        return frozenset(
            a.shortcut().toString(QKeySequence.SequenceFormat.PortableText) for a in actions
        )

    def _connect_signals(self) -> None:
        """All of the window's own wiring, in one place."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self.on_focus_changed)
        self.window_group.triggered.connect(self.on_window_action_triggered)
        self.pause_action.toggled.connect(self.on_pause_action_toggled)
        self.quit_action.triggered.connect(self.close)
        self.clear_problems_action.triggered.connect(self.problems_view.clear)
        self.profile_group.triggered.connect(self.on_profile_action_triggered)
        for action in self.page_actions:
            action.triggered.connect(self.on_page_action_triggered)
        self.export_snapshot_action.triggered.connect(self.snapshot_requested)
        self.go_to_time_action.triggered.connect(self.open_go_to_time)
        self.alert_banner.show_alerts_requested.connect(self.show_alerts_page)
        self.alert_banner.export_incident_requested.connect(self.snapshot_requested)
        self.alerts_panel.export_incident_requested.connect(self.snapshot_requested)
        self.alerts_panel.refresh_requested.connect(self.alerts_refresh_requested)
        self.alerts_panel.time_activated.connect(self.on_alert_time_activated)
        self.notifier.message_clicked.connect(self.on_notification_clicked)
        self.flow_plots.history_requested.connect(self.history_requested)
        self.flow_plots.history_mode_changed.connect(self.on_history_mode_changed)

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
    def live(self) -> bool:
        """Whether the plots follow the live flow (not history)."""
        return self.flow_plots.live

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

    def show_parked(self, count: int | None, detail: str = "") -> None:
        """The failed payments parked in the workbench (None: unknown, ``detail`` says why)."""
        self.headline_bar.show_parked(count, detail)

    @Slot(object)
    def show_link_status(self, status: LinkStatus) -> None:
        """Show a connection status on the indicator of ``status.service``."""
        indicator = self.indicators.get(status.service)
        if indicator is None:
            self.show_problem(f"status of an unknown service {status.service!r}")
            return
        indicator.show_status(status)
        if status.service == "RabbitMQ":  # the flow the counters and the alert rules read
            why = None
            if status.state is not LinkState.CONNECTED:
                where = f" at {status.target}" if status.target else ""
                why = f"RabbitMQ{where} {status.state.value}"
            self.headline_bar.set_flow_unavailable(why)
            self.alerts_panel.set_flow_unavailable(why)

    @Slot(object)
    def show_recorder_state(self, text: str, detail: str) -> None:
        """Who writes the flow history: ``text`` in the status bar, ``detail`` as its tooltip."""
        head = text.split(":", 1)[0]  # "unavailable: Redis: connection refused to …"
        self.recorder_label.set_texts(f"History: {text}", f"History: {head}", tooltip=detail)
        self.recorder_label.setVisible(bool(text))

    def show_alerts(self, alerts: Sequence[Alert]) -> None:
        """Show the alerts firing now: the banner, the Alerts page and its tab title."""
        self.alert_banner.show_alerts(alerts)
        self.alerts_panel.show_active(alerts)
        index = self.tabs.indexOf(self.alerts_panel)
        count = len(alerts)
        self.tabs.setTabText(index, f"Alerts ({count})" if count else "Alerts")

    @Slot(object)
    def show_alert_log(self, rows: Sequence[AlertEvent]) -> None:
        """Show the recorded firings and resolutions on the Alerts page."""
        self.alerts_panel.show_log(rows)

    @Slot(object)
    def show_alert_marks(self, marks: Sequence[AlertMark]) -> None:
        """Shade the alerts' spans on the plots (replacing the marks shown)."""
        self.flow_plots.set_alert_marks(marks)

    @Slot(object)
    def show_history_frame(self, frame: FlowFrame) -> None:
        """Plot a frame read back from the flow history (the answer to ``history_requested``)."""
        self.flow_plots.show_history_frame(frame)

    @Slot(bool)
    def history_loading(self, loading: bool) -> None:
        """Show that a history read is under way, or no longer."""
        self.flow_plots.history_loading(loading)

    @Slot(str)
    def history_unavailable(self, text: str) -> None:
        """Say why the history cannot be shown (e.g. Redis is down)."""
        self.flow_plots.history_unavailable(text)

    @Slot()
    def show_alerts_page(self) -> None:
        """Switch to the Alerts page."""
        self.tabs.setCurrentWidget(self.alerts_panel)

    @Slot()
    def on_notification_clicked(self) -> None:
        """A desktop notification was clicked: bring the window up on the Alerts page."""
        if self.isMinimized():
            self.showNormal()
        self.raise_()
        self.activateWindow()
        self.show_alerts_page()

    def set_history_retention(self, seconds: int) -> None:
        """How far back the stored history goes (bounds Go to time)."""
        self._history_retention_s = seconds

    @Slot()
    def open_go_to_time(self) -> GoToTimeDialog:
        """Ask for a moment and show the flow around it."""
        dialog = GoToTimeDialog(self._history_retention_s, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.on_alert_time_activated(dialog.moment()))
        dialog.open()
        return dialog

    @Slot(float)
    def on_alert_time_activated(self, t: float) -> None:
        """Show the flow around an alert event (history, unless it is recent)."""
        self.tabs.setCurrentWidget(self.flow_plots)
        self.flow_plots.show_history_at(t)

    @Slot(bool)
    def on_history_mode_changed(self, history: bool) -> None:
        """History is frozen anyway: PAUSED shows again when the plots are live."""
        self._paused_badge_action.setVisible(self._paused and not history)
        self._update_title()
        self.history_mode_changed.emit(history)

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
        self.flow_plots.set_window_seconds(seconds)

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
        """The operator picked a time window (in history: the same end, asked for again)."""
        seconds = int(action.data())
        self.window_selected.emit(seconds)
        self.flow_plots.set_window_seconds(seconds)

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
        self._paused_badge_action.setVisible(paused and self.flow_plots.live)
        self.flow_plots.set_paused(paused)
        if not paused and self._latest is not None and self._latest is not self.flow_plots.frame:
            self.flow_plots.show_frame(self._latest)
        self._update_title()
        self.pause_toggled.emit(paused)

    # -- shortcuts from text fields ---------------------------------------------------------

    @Slot(QWidget, QWidget)
    def on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        """Watch the widget that has the focus now (see ``eventFilter``)."""
        if new is not None and self.isAncestorOf(new):
            new.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keep the window's shortcuts (Ctrl+E, Ctrl+G, Ctrl+Q, Ctrl+1.., Alt+1..) working
        while a text field has the focus.

        Before a shortcut fires, Qt asks the focus widget whether it wants the key
        (a ShortcutOverride event); a line edit under the X11 keyboard scheme takes
        Ctrl+E as "end of line" and the shortcut never fires. The override is
        refused here for the window's own keys, so the shortcut wins.
        """
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            keys = QKeySequence(event.keyCombination()).toString(
                QKeySequence.SequenceFormat.PortableText
            )
            if keys in self._field_proof_keys:
                event.ignore()
                return True
        return super().eventFilter(watched, event)

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
        if not self.flow_plots.live:
            title += " (history)"
        elif self._paused:
            title += " (paused)"
        self.setWindowTitle(title)
