"""The audit trail: every action on parked entries, newest first, filterable.

``AuditTableModel`` holds plain :class:`~services.workbench.model.AuditRecord`
values (no per-row widgets); ``AuditPanel`` puts a filter box and an action
combo over it. The entry detail pane reuses the model for one entry's trail.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services import time_range
from services.masking.json import mask_sensitive_text
from services.workbench.actions.names import Action
from services.workbench.model import AuditRecord
from widgets.common import colors
from widgets.common.record_tables import configure_table
from widgets.common.table_models import ListTableModel, RowFilterProxy, SortRole
from widgets.workbench.jobs_table import JobsTable

AUDIT_COLUMNS: Final = (
    "time",
    "operator",
    "host",
    "action",
    "entries",
    "target",
    "result",
    "detail",
)
COLUMN_TITLES: Final = {
    "time": "Time",
    "operator": "Operator",
    "host": "Host",
    "action": "Action",
    "entries": "Entries",
    "target": "Target",
    "result": "Result",
    "detail": "Detail",
}
RecordRole: Final = Qt.ItemDataRole.UserRole
"""The row's :class:`AuditRecord`."""
ALL_ACTIONS = "All actions"
_FIELD_PREFIXES: Final = {
    "operator": "operator",
    "op": "operator",
    "user": "operator",
    "action": "action",
    "entry": "entries",
    "id": "entries",
    "host": "host",
    "result": "result",
    "target": "target",
}
_MAX_TOOLTIP_IDS = 25
_MAX_DETAIL_CHARS = 300


def format_local_time(ts_ms: int) -> str:
    """Epoch milliseconds as local time with its zone, ``2024-05-03 14:03:12 CEST``
    (``—`` for 0): the rule of ``services.time_range.format_local_time``."""
    if ts_ms <= 0:
        return "—"
    return time_range.format_local_time(ts_ms / 1000)


_COUNT = re.compile(r"([a-z][a-z ]*?)\s+(\d[\d,]*)")
_BAD_COUNTS: Final = ("failed", "in doubt")
_PARTIAL_COUNTS: Final = ("skipped", "not attempted")
_BAD_STATUS: Final = ("failed", "error", "unroutable", "nacked", "refused", "in doubt")
_PARTIAL_STATUS: Final = ("skipped", "stopped", "interrupted", "lost")
_OK_STATUS: Final = ("ok", "done", "delivered", "republished", "succeeded")


def result_tone(result: str) -> str | None:
    """How an action went, from its audit result: ``ok``, ``partial``, ``bad`` or None.

    Results count outcomes (``requeued 12, skipped 0, failed 0``, ``released 3,
    in doubt 0``) or name one (``delivered: done``, ``started``). Counted
    results go by the counts, so ``failed 0`` is not a failure; a named
    outcome goes by its word.
    """
    lowered = result.lower()
    counts = {name.strip(): int(n.replace(",", "")) for name, n in _COUNT.findall(lowered)}
    if counts:
        if any(counts.get(name, 0) for name in _BAD_COUNTS):
            return "bad"
        if any(counts.get(name, 0) for name in _PARTIAL_COUNTS) or "stopped" in lowered:
            return "partial"
        return "ok" if any(counts.values()) else None
    for tone, words in (("bad", _BAD_STATUS), ("partial", _PARTIAL_STATUS), ("ok", _OK_STATUS)):
        if any(re.search(rf"\b{word}\b", lowered) for word in words):
            return tone
    return None


def result_color(result: str) -> str | None:
    """The colour of an action result: green went through, amber partly, red not at all."""
    tone = result_tone(result)
    return {"ok": colors.GREEN, "partial": colors.AMBER, "bad": colors.RED}.get(tone or "")


@dataclass(frozen=True, slots=True)
class _Row:
    record: AuditRecord
    cells: dict[str, str]
    haystack: str
    order: tuple[int, int, int]


def _stream_seq(stream_id: str | None) -> tuple[int, int]:
    if not stream_id:
        return (0, 0)
    ms, _, seq = stream_id.partition("-")
    try:
        return (int(ms), int(seq or 0))
    except ValueError:
        return (0, 0)


def _entries_text(ids: Sequence[str]) -> str:
    if not ids:
        return "—"
    if len(ids) == 1:
        return ids[0]
    return f"{len(ids):,} entries"


def _make_row(record: AuditRecord) -> _Row:
    detail = mask_sensitive_text(record.detail)
    cells = {
        "time": format_local_time(record.ts),
        "operator": record.operator or "—",
        "host": record.host or "—",
        "action": record.action,
        "entries": _entries_text(record.entry_ids),
        "target": mask_sensitive_text(record.target),
        "result": record.result,
        "detail": " ".join(detail.split())[:_MAX_DETAIL_CHARS],
    }
    haystack = "\n".join(
        (
            record.operator,
            record.host,
            record.action,
            " ".join(record.entry_ids),
            cells["target"],
            record.result,
            detail,
            record.action_id,
        )
    ).lower()
    seq = _stream_seq(record.stream_id)
    return _Row(record, cells, haystack, (record.ts, seq[0], seq[1]))


class AuditTableModel(ListTableModel[_Row]):
    """Audit records, newest first, as a table of ``columns`` (see :data:`AUDIT_COLUMNS`).

    Records read back from Redis are told apart by their ``stream_id``: a
    record already shown is not added twice.
    """

    def __init__(
        self,
        parent: QObject | None = None,
        columns: Sequence[str] = AUDIT_COLUMNS,
        max_records: int = 100_000,
    ) -> None:
        unknown = [c for c in columns if c not in COLUMN_TITLES]
        if unknown:
            raise ValueError(f"unknown audit columns: {', '.join(unknown)}")
        super().__init__(columns, COLUMN_TITLES, parent)
        self.max_records = max_records
        self._ids: set[str] = set()

    # -- data --------------------------------------------------------------------------

    def set_records(self, records: Iterable[AuditRecord]) -> None:
        """Replace every record."""
        rows = [_make_row(r) for r in records]
        rows.sort(key=lambda row: row.order, reverse=True)
        self.beginResetModel()
        self._rows = rows[: self.max_records]
        self._ids = {r.record.stream_id for r in self._rows if r.record.stream_id}
        self.endResetModel()

    def append_records(self, records: Iterable[AuditRecord]) -> int:
        """Add new records (live); returns how many were new."""
        fresh: list[_Row] = []
        for record in records:
            if record.stream_id and record.stream_id in self._ids:
                continue
            if record.stream_id:
                self._ids.add(record.stream_id)
            fresh.append(_make_row(record))
        if not fresh:
            return 0
        fresh.sort(key=lambda row: row.order, reverse=True)
        if not self._rows or fresh[-1].order >= self._rows[0].order:
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
            self._rows[0:0] = fresh
            self.endInsertRows()
        else:  # something older than what is shown: re-sort everything
            self.layoutAboutToBeChanged.emit()
            self._rows.extend(fresh)
            self._rows.sort(key=lambda row: row.order, reverse=True)
            self.layoutChanged.emit()
        if len(self._rows) > self.max_records:
            first = self.max_records
            self.beginRemoveRows(QModelIndex(), first, len(self._rows) - 1)
            for row in self._rows[first:]:
                self._ids.discard(row.record.stream_id or "")
            del self._rows[first:]
            self.endRemoveRows()
        return len(fresh)

    def clear(self) -> None:
        self.set_records(())

    def record(self, row: int) -> AuditRecord:
        """The record shown in ``row``."""
        return self._rows[row].record

    def records(self) -> list[AuditRecord]:
        """Every record, newest first."""
        return [row.record for row in self._rows]

    def actions(self) -> list[str]:
        """The distinct actions in the records."""
        return sorted({row.record.action for row in self._rows if row.record.action})

    def haystack(self, row: int) -> str:
        return self._rows[row].haystack

    # -- Qt model ----------------------------------------------------------------------

    def _cell_data(self, row: _Row, column: str, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cells[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == "result":
                colour = result_color(row.record.result)
                return QColor(colour) if colour else None
            if column in ("time", "host"):
                return QColor(colors.TEXT_MUTED)
            return None
        if role == RecordRole:
            return row.record
        if role == SortRole:
            if column == "time":
                ts, _, seq = row.order
                return ts * 1000 + min(seq, 999)  # a number: Qt cannot order Python tuples
            if column == "entries":
                return len(row.record.entry_ids)
            return row.cells[column].lower()
        return None

    def _tooltip(self, row: _Row, column: str) -> str | None:
        record = row.record
        if column == "entries" and len(record.entry_ids) > 1:
            shown = record.entry_ids[:_MAX_TOOLTIP_IDS]
            more = len(record.entry_ids) - len(shown)
            lines = "<br>".join(html.escape(i) for i in shown)
            tail = f"<br>… and {more:,} more" if more else ""
            return f"<qt><b>{len(record.entry_ids):,} entries</b><br>{lines}{tail}</qt>"
        if column == "detail" and record.detail:
            text = mask_sensitive_text(record.detail)
            if len(text) > 2000:
                text = text[:2000] + " …"
            return f"<qt>{html.escape(text)}</qt>"
        if column == "time":
            action_id = f"<br>action id {html.escape(record.action_id)}" if record.action_id else ""
            return f"<qt>{format_local_time(record.ts)}{action_id}</qt>"
        text = row.cells[column]
        if column == "result":  # the whole result, even where the column cuts it
            return text or None
        return text if len(text) > 24 else None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A parsed filter: ``field:value`` terms and free-text terms, all must match."""

    fields: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AuditQuery:
        fields: list[tuple[str, str]] = []
        words: list[str] = []
        for token in text.split():
            name, sep, value = token.partition(":")
            column = _FIELD_PREFIXES.get(name.lower()) if sep else None
            if column and value:
                fields.append((column, value.lower()))
            elif token:
                words.append(token.lower())
        return cls(tuple(fields), tuple(words))

    def matches(self, record: AuditRecord, haystack: str) -> bool:
        for column, value in self.fields:
            if column == "entries":
                if not any(value in entry_id.lower() for entry_id in record.entry_ids):
                    return False
            elif value not in str(getattr(record, column)).lower():
                return False
        return all(word in haystack for word in self.words)


class AuditFilterProxy(RowFilterProxy):
    """Filters an :class:`AuditTableModel` by query text and action."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._query = AuditQuery()
        self._action: str | None = None

    def set_query(self, text: str) -> None:
        self._set_filter("_query", AuditQuery.parse(text))

    def set_action(self, action: str | None) -> None:
        self._set_filter("_action", action or None)

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        model = self.sourceModel()
        if not isinstance(model, AuditTableModel):
            return True
        record = model.record(source_row)
        if self._action is not None and record.action != self._action:
            return False
        return self._query.matches(record, model.haystack(source_row))


class AuditPanel(QWidget):
    """Every action on parked entries: time, operator, host, action, entries, target, result.

    ``show_records`` replaces what is shown, ``append_records`` adds records
    as they arrive. The filter box takes free text and ``operator:``,
    ``action:``, ``entry:``, ``host:``, ``result:``, ``target:`` terms (all
    must match); the combo narrows to one action. Double-clicking a record of
    one entry emits ``entry_activated`` with its id.
    """

    entry_activated = Signal(str)
    COLUMN_WIDTHS: ClassVar[dict[str, int]] = {
        "time": 175,  # "2024-05-03 12:54:00 CEST"
        "operator": 90,
        "host": 100,
        "action": 70,
        "entries": 165,
        "target": 140,
        "result": 250,  # "requeued 1,234, skipped 12, failed 3" whole
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AuditPanel")
        self._unavailable: str | None = None  # why the trail cannot be read, while it cannot
        self.model = AuditTableModel(self)
        self.proxy = AuditFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("AuditFilter")
        self.filter_edit.setPlaceholderText(
            "Filter: operator:alice  action:retry  entry:0190…  or any text"
        )
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip(
            "<qt>All terms must match. <b>operator:</b>, <b>action:</b>, <b>entry:</b>,"
            " <b>host:</b>, <b>result:</b> and <b>target:</b> look at one column;"
            " other words anywhere (ids, detail, action id).</qt>"
        )
        self.action_combo = QComboBox()
        self.action_combo.setObjectName("AuditActionFilter")
        self.action_combo.setMinimumContentsLength(10)
        self.count_label = QLabel()
        self.count_label.setObjectName("AuditCount")

        self.table = QTableView()
        self.table.setObjectName("AuditTable")
        self.table.setModel(self.proxy)
        configure_table(self.table)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        header = self.table.horizontalHeader()
        for name, width in self.COLUMN_WIDTHS.items():
            header.resizeSection(self.model.columns.index(name), width)
        header.setStretchLastSection(True)

        self.empty_label = QLabel()
        self.empty_label.setObjectName("AuditEmpty")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty_label)

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.setSpacing(6)
        controls.addWidget(self.filter_edit, 1)
        controls.addWidget(self.action_combo)
        controls.addWidget(self.count_label)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 8, 8, 8)
        column.setSpacing(6)
        column.addLayout(controls)
        column.addWidget(self.stack, 1)
        self.jobs_caption = QLabel("Jobs: what became of each bulk action's payments")
        self.jobs_caption.setObjectName("FieldCaption")
        self.jobs_table = JobsTable()  # show_jobs: the app reads them from Redis
        column.addWidget(self.jobs_caption)
        column.addWidget(self.jobs_table)

        self._refresh_actions()
        self._connect_signals()
        self._update_count()

    def _connect_signals(self) -> None:
        self.filter_edit.textChanged.connect(self.on_filter_text_changed)
        self.action_combo.currentIndexChanged.connect(self.on_action_changed)
        self.table.doubleClicked.connect(self.on_table_double_clicked)
        self.model.modelReset.connect(self._update_count)
        self.model.rowsInserted.connect(self._update_count)
        self.model.rowsRemoved.connect(self._update_count)
        self.model.layoutChanged.connect(self._update_count)

    # -- slots ---------------------------------------------------------------------------

    @Slot(object)
    def show_records(self, records: Sequence[AuditRecord]) -> None:
        """Show these records (any order; shown newest first)."""
        self.model.set_records(records)
        self._refresh_actions()

    @Slot(object)
    def set_unavailable(self, why: str | None) -> None:
        """The audit trail cannot be read now (``why``: host:port and the error), or None
        once it can: the page says so rather than "No actions recorded yet"."""
        self._unavailable = why
        self._update_count()

    @Slot(object)
    def append_records(self, records: Sequence[AuditRecord]) -> None:
        """Add records as they are appended to the audit stream."""
        if self.model.append_records(records):
            self._refresh_actions()

    @Slot(str)
    def set_filter_text(self, text: str) -> None:
        """Filter as if typed into the box."""
        self.filter_edit.setText(text)

    @Slot(str)
    def on_filter_text_changed(self, text: str) -> None:
        self.proxy.set_query(text)
        self._update_count()

    @Slot(int)
    def on_action_changed(self, index: int) -> None:
        data = self.action_combo.itemData(index)
        self.proxy.set_action(data if isinstance(data, str) and data else None)
        self._update_count()

    @Slot(QModelIndex)
    def on_table_double_clicked(self, index: QModelIndex) -> None:
        record = index.data(RecordRole)
        if isinstance(record, AuditRecord) and len(record.entry_ids) == 1:
            self.entry_activated.emit(record.entry_ids[0])

    # -- state ---------------------------------------------------------------------------

    def shown_records(self) -> list[AuditRecord]:
        """The records that pass the filter, in the order shown."""
        out = []
        for row in range(self.proxy.rowCount()):
            record = self.proxy.index(row, 0).data(RecordRole)
            if isinstance(record, AuditRecord):
                out.append(record)
        return out

    def _refresh_actions(self) -> None:
        current = self.action_combo.currentData()
        actions = sorted({str(action) for action in Action} | set(self.model.actions()))
        wanted = ["", *actions]
        existing = [self.action_combo.itemData(i) for i in range(self.action_combo.count())]
        if existing == wanted:
            return
        self.action_combo.blockSignals(True)
        self.action_combo.clear()
        self.action_combo.addItem(ALL_ACTIONS, "")
        for action in actions:
            self.action_combo.addItem(action.capitalize(), action)
        index = self.action_combo.findData(current if isinstance(current, str) else "")
        self.action_combo.setCurrentIndex(max(index, 0))
        self.action_combo.blockSignals(False)

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        if total == 0 and self._unavailable is not None:
            self.count_label.setText("cannot be read")
            self.empty_label.setText(
                f"The audit trail cannot be read: {self._unavailable}. Retrying every few seconds."
            )
        elif total == 0:
            self.count_label.setText("0 records")
            self.empty_label.setText("No actions recorded yet")
        elif shown == total:
            self.count_label.setText(f"{total:,} record{'s' if total != 1 else ''}")
        else:
            self.count_label.setText(f"{shown:,} of {total:,} records")
            self.empty_label.setText("No records match the filter")
        if total and self._unavailable is not None:
            self.count_label.setText(f"{self.count_label.text()} · not updated: cannot be read")
        self.stack.setCurrentWidget(self.table if shown else self.empty_label)
