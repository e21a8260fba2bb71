"""The detail pane's tables of one message: properties, the headers tree, x-death."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem, QTreeWidgetItem

from services.masking.json import (
    HIDDEN,
    ID_PROPERTIES,
    is_cvv_key,
    mask_identifier,
    mask_sensitive_text,
)
from services.time_range import zone_name
from services.workbench.body_format import amqp_type_name, format_amqp_scalar, format_timestamp
from services.workbench.codec import DeathRecord, first_death
from services.workbench.death_history import earlier_deaths, total_deaths
from services.workbench.model import ParkedEntry
from services.workbench.shown import masked_escaped, shown_death
from widgets.workbench.audit_panel import format_local_time

MAX_TREE_CHILDREN: Final = 200
DELIVERY_MODES: Final = {1: "1 (transient)", 2: "2 (persistent)"}
_RIGHT: Final = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def short_time(
    ts_ms: int | None, now: datetime.datetime | None = None, *, seconds: bool = False
) -> str:
    """Local ``14:03 CET`` today, ``2024-05-03 14:03 CET`` otherwise, the zone named as
    everywhere (:func:`services.time_range.zone_name`); ``""`` when unknown."""
    if not ts_ms:
        return ""
    moment = datetime.datetime.fromtimestamp(ts_ms / 1000)
    today = (now or datetime.datetime.now()).date()
    clock = "%H:%M:%S" if seconds else "%H:%M"
    shown = moment.strftime(clock if moment.date() == today else f"%Y-%m-%d {clock}")
    return f"{shown} {zone_name(moment.astimezone())}"


def table_item(text: str, tooltip: bool = True) -> QTableWidgetItem:
    """A read-only cell; long texts get themselves as tooltip."""
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tooltip and len(text) > 30:
        item.setToolTip(text)
    return item


def plain_table(headers: Sequence[str]) -> QTableWidget:
    """A read-only table of rows with these column titles."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
    header = table.horizontalHeader()
    header.setHighlightSections(False)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    header.setStretchLastSection(True)
    return table


def property_rows(entry: ParkedEntry) -> list[tuple[str, str]]:
    """The Properties tab: the AMQP properties, where the message came from, the entry's ids."""
    record = entry.record
    rows: list[tuple[str, str]] = []
    for name, value in record.properties.items():
        if name == "delivery_mode" and isinstance(value, int):
            text = DELIVERY_MODES.get(value, str(value))
        elif name == "timestamp" and isinstance(value, datetime.datetime):
            text = format_timestamp(value)
        elif name in ID_PROPERTIES and isinstance(value, str):
            text = mask_identifier(value)  # message_id, correlation_id: ids, not cards
        else:
            text = format_amqp_scalar(value, name)
        rows.append((name, text))
    # masked; bytes that were not UTF-8 as \xNN (services.workbench.shown)
    rows.append(("exchange", masked_escaped(record.exchange) or "(default exchange)"))
    rows.append(("routing_key", masked_escaped(record.routing_key) or "—"))
    rows.append(("body size", f"{len(record.body):,} bytes"))
    rows.append(("parked at", format_local_time(entry.summary.parked_at_ms)))
    if entry.action_id:
        rows.append(("action id", entry.action_id))
    rows.append(("fingerprint", entry.fingerprint[:16] + "…" if entry.fingerprint else "—"))
    return rows


def fill_deaths(
    table: QTableWidget, deaths: Sequence[DeathRecord], earlier: Sequence[DeathRecord] = ()
) -> None:
    """The x-death tab's table: one row per (queue, reason), most recent first; then the
    records of cycles before earlier requeues (``payops-death-history``), marked ↺."""
    table.setRowCount(len(deaths) + len(earlier))
    for row, death in enumerate((*deaths, *earlier)):
        cells = _death_cells(death)
        if row >= len(deaths):
            cells = (f"↺ {cells[0]}", *cells[1:])
        for column, text in enumerate(cells):
            item = table_item(text)
            if column == 0:
                item.setTextAlignment(_RIGHT)
            table.setItem(row, column, item)
        if death.time is not None:
            time_item = table.item(row, 5)
            if time_item is not None:
                time_item.setToolTip(format_timestamp(death.time))
    table.resizeColumnsToContents()
    header = table.horizontalHeader()
    for column in (2, 3, 4):
        header.resizeSection(column, min(header.sectionSize(column) + 8, 170))


def deaths_note(entry: ParkedEntry) -> str:
    """The line over the x-death table: how many records, and where the message first died."""
    deaths = entry.deaths
    first = first_death(entry.record.headers)
    first = shown_death(first) if first is not None else None
    if deaths:
        note = f"{len(deaths)} record{'s' if len(deaths) != 1 else ''}, most recent first."
        if first is not None and first.queue:
            note += (
                f" First died in {first.queue}"
                f" ({first.reason or 'unknown reason'})"
                + (f" via {first.exchange}" if first.exchange else "")
                + "."
            )
    else:
        note = "No x-death header: the message carries no dead-letter history."
    before = earlier_deaths(entry.record.headers)
    if before:
        note += (
            f" {total_deaths(entry.record.headers):,} deaths in all: {before:,} before"
            " earlier requeues (payops-deaths), their records marked ↺."
        )
    return note


def _death_cells(death: DeathRecord) -> tuple[str, ...]:
    death = shown_death(death)  # masked; bytes that were not UTF-8 as \xNN
    time_ms = death.time_ms
    when = short_time(time_ms, seconds=True) if time_ms is not None else "—"
    return (
        f"{death.count:,}",
        death.reason or "—",
        death.queue or "—",
        death.exchange or "(default)",
        ", ".join(death.routing_keys) or "—",
        when,
    )


def count_items(item: QTreeWidgetItem) -> int:
    """How many items a tree item holds, itself included."""
    total = 1
    for index in range(item.childCount()):
        child = item.child(index)
        if child is not None:
            total += count_items(child)
    return total


def _header_item(name: str, value: Any, key: str | None) -> QTreeWidgetItem:
    type_name = amqp_type_name(value)
    hidden = key is not None and is_cvv_key(key)
    text = HIDDEN if hidden else format_amqp_scalar(value, key)
    item = QTreeWidgetItem([name, type_name, text])
    item.setToolTip(2, text if len(text) > 40 else "")
    if hidden:
        item.setToolTip(2, "Hidden: a card verification code is never shown")
        return item
    if isinstance(value, bytes | bytearray) and value:
        item.setToolTip(2, f"{len(value):,} bytes, shown as hex (card numbers starred out)")
    if isinstance(value, dict):
        item.addChildren(header_items(value))
    elif isinstance(value, list | tuple):
        children = [
            _header_item(f"[{i}]", v, None) for i, v in enumerate(value[:MAX_TREE_CHILDREN])
        ]
        if len(value) > MAX_TREE_CHILDREN:
            more = len(value) - MAX_TREE_CHILDREN
            children.append(QTreeWidgetItem([f"… {more:,} more", "", ""]))
        item.addChildren(children)
    return item


def header_items(table: Mapping[str, Any]) -> list[QTreeWidgetItem]:
    """The Headers tab's tree: name, AMQP type and value of each header (masked), nested."""
    items = []
    for index, (key, value) in enumerate(table.items()):
        if index >= MAX_TREE_CHILDREN:
            more = len(table) - MAX_TREE_CHILDREN
            items.append(QTreeWidgetItem([f"… {more:,} more", "", ""]))
            break
        name = mask_sensitive_text(str(key))
        items.append(_header_item(name, value, str(key)))
    return items
