"""The headline counters across the top of the console, highlighted past thresholds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from services.flow.types import Headline
from widgets.common.colors import Level
from widgets.common.theme import repolish

NO_VALUE = "—"


@dataclass(frozen=True)
class HeadlineThresholds:
    """When a counter turns amber (warn) or red (alert): strictly above the value; None = never."""

    failure_rate_warn_pct: float | None = None
    failure_rate_alert_pct: float | None = 5.0
    dlq_depth_warn: float | None = 0
    dlq_depth_alert: float | None = None
    latency_p99_warn_ms: float | None = None
    latency_p99_alert_ms: float | None = None
    tap_dropped_warn: float | None = 0
    tap_dropped_alert: float | None = None
    parked_warn: float | None = None
    parked_alert: float | None = None


def level_for(value: float | None, warn: float | None, alert: float | None) -> Level:
    """The level of ``value`` against the thresholds (strictly above)."""
    if value is None or not math.isfinite(value):
        return Level.NORMAL
    if alert is not None and value > alert:
        return Level.ALERT
    if warn is not None and value > warn:
        return Level.WARN
    return Level.NORMAL


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def format_rate(value: float | None) -> str:
    """Events per second: one decimal below 10, whole numbers above."""
    value = _finite(value)
    if value is None:
        return NO_VALUE
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def format_percent(value: float | None) -> str:
    """A percentage with two decimals below 10 %, one above."""
    value = _finite(value)
    if value is None:
        return NO_VALUE
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def format_count(value: float | None) -> str:
    """A whole number with thousands separators."""
    value = _finite(value)
    return NO_VALUE if value is None else f"{round(value):,}"


def format_ms(value: float | None) -> str:
    """Milliseconds: one decimal below 10 ms, whole numbers above."""
    value = _finite(value)
    if value is None:
        return NO_VALUE
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


class HeadlineTile(QFrame):
    """One counter: a caption, a big value with its unit, and a line of context."""

    def __init__(self, key: str, caption: str, unit: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName("HeadlineTile")
        self.setProperty("level", Level.NORMAL.value)
        self._level = Level.NORMAL
        self.caption_label = QLabel(caption.upper())
        self.caption_label.setObjectName("HeadlineCaption")
        self.value_label = QLabel(NO_VALUE)
        self.value_label.setObjectName("HeadlineValue")
        value_font = QFont()
        value_font.setFeature(QFont.Tag("tnum"), 1)  # digits of equal width: no jitter
        self.value_label.setFont(value_font)
        self.unit_label = QLabel(unit)
        self.unit_label.setObjectName("HeadlineUnit")
        self.detail_label = QLabel("")
        self.detail_label.setObjectName("HeadlineDetail")

        value_row = QHBoxLayout()
        value_row.setContentsMargins(0, 0, 0, 0)
        value_row.setSpacing(4)
        value_row.addWidget(self.value_label, 0, Qt.AlignmentFlag.AlignBaseline)
        value_row.addWidget(self.unit_label, 0, Qt.AlignmentFlag.AlignBaseline)
        value_row.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(12, 6, 12, 6)
        column.setSpacing(0)
        column.addWidget(self.caption_label)
        column.addLayout(value_row)
        column.addWidget(self.detail_label)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_compact(self, compact: bool) -> None:
        """Drop the line of context to save height."""
        self.detail_label.setVisible(not compact)

    @property
    def level(self) -> Level:
        """How alarming the value is."""
        return self._level

    def value_text(self) -> str:
        """The value as shown."""
        return self.value_label.text()

    def show_value(self, text: str, level: Level, detail: str = "") -> None:
        """Show a formatted value; restyle only when the level changes."""
        if text != self.value_label.text():
            self.value_label.setText(text)
        if detail != self.detail_label.text():
            self.detail_label.setText(detail)
        if level is not self._level:
            self._level = level
            self.setProperty("level", level.value)
            for widget in (self, self.value_label, self.caption_label):
                repolish(widget)


class HeadlineBar(QFrame):
    """Events/s, failure rate, p99 latency, dead letters waiting, parked payments and tap
    drops as big counters.

    Rates, failure share and p99 cover the headline's window (``Headline.window_s``,
    said on each tile). The dead-letter tile counts the messages waiting in the
    dead-letter queues (the parker moves them into the workbench, so it is
    usually 0); the parked tile counts the failed payments parked in the
    workbench awaiting an operator (``show_parked``, from the workbench).
    Unknown values show "—". Failure rate above 5 % is red, messages waiting in a
    dead-letter queue and any tap drops are amber (see ``HeadlineThresholds``).
    """

    KEYS = ("events", "failure_rate", "latency_p99", "dlq_depth", "parked", "tap_dropped")
    FLOW_KEYS = ("events", "failure_rate", "latency_p99", "dlq_depth", "tap_dropped")
    """The tiles measured on the flow (RabbitMQ); ``parked`` is read from Redis."""

    def __init__(
        self, thresholds: HeadlineThresholds | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("HeadlineBar")
        self.thresholds = thresholds or HeadlineThresholds()
        specs = (
            ("events", "Events", "/s"),
            ("failure_rate", "Failure rate", "%"),
            ("latency_p99", "Latency p99", "ms"),
            ("dlq_depth", "In dead-letter queues", "msgs"),
            ("parked", "Parked", "payments"),
            ("tap_dropped", "Tap dropped", "msgs"),
        )
        self._tiles = {key: HeadlineTile(key, caption, unit) for key, caption, unit in specs}
        self._flow_unavailable: str | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 8, 8, 8)
        row.setSpacing(8)
        for tile in self._tiles.values():
            row.addWidget(tile, 1)
        th = self.thresholds
        self._tiles["failure_rate"].setToolTip(
            "Events with a failure status as a share of all status events over the"
            " last seconds (dead letters are not events), as the failure-rate alert"
            f" computes it over its own window; red above {th.failure_rate_alert_pct} %"
        )
        self._tiles["latency_p99"].setToolTip(
            "End-to-end latency (now minus the payment's created time) over the last"
            " seconds. Replayed payments (requeued or retried by an operator) are left"
            " out: their created time is the original one"
        )
        self._tiles["dlq_depth"].setToolTip(
            "Messages waiting in the dead-letter queues, not yet parked in the workbench"
        )
        self._tiles["parked"].setToolTip(
            "Failed payments parked in the workbench, waiting for an operator"
            " (requeue, retry or cancel)"
        )
        self._tiles["tap_dropped"].setToolTip(
            "Tap messages the broker dropped because the console fell behind;"
            " the plots under-count while this grows"
        )
        self.clear()

    @Slot(bool)
    def set_compact(self, compact: bool) -> None:
        """Show only caption and value (for short windows)."""
        for tile in self._tiles.values():
            tile.set_compact(compact)

    def tile(self, key: str) -> HeadlineTile:
        """One tile by key (see ``KEYS``)."""
        return self._tiles[key]

    @Slot()
    def clear(self) -> None:
        """Show "—" everywhere (before the first frame)."""
        for tile in self._tiles.values():
            tile.show_value(NO_VALUE, Level.NORMAL, "waiting for data")

    @Slot(object)
    def show_parked(self, count: int | None, detail: str = "") -> None:
        """The failed payments parked in the workbench; None when unknown (``detail`` says why)."""
        th = self.thresholds
        if count is None:
            self._tiles["parked"].show_value(NO_VALUE, Level.NORMAL, detail or "unknown")
            return
        self._tiles["parked"].show_value(
            format_count(count),
            level_for(count, th.parked_warn, th.parked_alert),
            detail or "awaiting an operator",
        )

    @Slot(object)
    def set_flow_unavailable(self, why: str | None) -> None:
        """The flow cannot be measured now (``why``: RabbitMQ is unreachable), or None once
        it can: while it cannot, the flow's tiles show "—" and say so, not a measured 0."""
        self._flow_unavailable = why
        if why is not None:
            self._show_unmeasured(why)

    def _show_unmeasured(self, why: str) -> None:
        for key in self.FLOW_KEYS:
            self._tiles[key].show_value(NO_VALUE, Level.NORMAL, f"not measured: {why}")

    @Slot(object)
    def show_headline(self, h: Headline) -> None:
        """Show one set of headline counters (not while the flow cannot be measured)."""
        if self._flow_unavailable is not None:
            self._show_unmeasured(self._flow_unavailable)
            return
        th = self.thresholds
        window = f"last {h.window_s} s"
        self._tiles["events"].show_value(
            format_rate(h.events_per_s),
            Level.NORMAL,
            f"{window} · {h.total_events:,} in total",
        )
        self._tiles["failure_rate"].show_value(
            format_percent(h.failure_rate_pct),
            level_for(h.failure_rate_pct, th.failure_rate_warn_pct, th.failure_rate_alert_pct),
            f"no events in the {window}" if h.failure_rate_pct is None else f"of events, {window}",
        )
        latency_detail = f"end to end, {window}"
        if h.replayed_events:
            latency_detail = f"{window} · {h.replayed_events:,} replayed left out"
        elif h.latency_p99_ms is None:
            latency_detail = f"no samples in the {window}"
        self._tiles["latency_p99"].show_value(
            format_ms(h.latency_p99_ms),
            level_for(h.latency_p99_ms, th.latency_p99_warn_ms, th.latency_p99_alert_ms),
            latency_detail,
        )
        self._tiles["dlq_depth"].show_value(
            format_count(h.dlq_depth),
            level_for(h.dlq_depth, th.dlq_depth_warn, th.dlq_depth_alert),
            "unknown" if h.dlq_depth is None else "waiting, not yet parked",
        )
        self._tiles["tap_dropped"].show_value(
            format_count(h.tap_dropped),
            level_for(h.tap_dropped, th.tap_dropped_warn, th.tap_dropped_alert),
            "console fell behind" if h.tap_dropped else "tap keeping up",
        )
