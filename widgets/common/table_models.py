"""Plumbing shared by the console's list-backed tables and their filter proxies.

``ListTableModel`` shows a list of rows in named columns with titles (subclasses
say what a cell shows in ``_cell_data``); ``RowFilterProxy`` sorts by
:data:`SortRole` and re-filters when a filter attribute changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

SortRole: Final = Qt.ItemDataRole.UserRole + 1
"""The value a :class:`RowFilterProxy` sorts a cell by."""

_HAS_FILTER_CHANGE = hasattr(QSortFilterProxyModel, "endFilterChange") and hasattr(
    QSortFilterProxyModel, "Direction"
)

RowT = TypeVar("RowT")


class ListTableModel(QAbstractTableModel, Generic[RowT]):
    """A flat table: one row per item of ``_rows``, one column per name in ``columns``."""

    def __init__(
        self, columns: Sequence[str], titles: Mapping[str, str], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.columns = tuple(columns)
        self._titles = titles
        self._rows: list[RowT] = []

    def _cell_data(self, row: RowT, column: str, role: int) -> Any:
        """What ``row`` shows in ``column`` for ``role`` (None: nothing)."""
        return None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.columns)
        ):
            return self._titles[self.columns[section]]
        return None

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self._cell_data(self._rows[index.row()], self.columns[index.column()], role)


class RowFilterProxy(QSortFilterProxyModel):
    """Sorts by :data:`SortRole`; subclasses keep their filter in attributes set by
    :meth:`_set_filter` and read them in ``filterAcceptsRow``."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SortRole)
        self.setDynamicSortFilter(True)

    def _set_filter(self, name: str, value: object) -> None:
        """Set the filter attribute ``name`` to ``value``, re-filtering if it changed."""
        if getattr(self, name) != value:
            self._begin_filter_change()
            setattr(self, name, value)
            self._end_filter_change()

    # begin/endFilterChange are Qt 6.10+; invalidateFilter is deprecated from 6.13.
    def _begin_filter_change(self) -> None:
        if _HAS_FILTER_CHANGE:
            self.beginFilterChange()

    def _end_filter_change(self) -> None:
        if _HAS_FILTER_CHANGE:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - Qt < 6.10
            self.invalidateRowsFilter()
