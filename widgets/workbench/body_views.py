"""Qt pieces that show a message body: the fixed-width font, the JSON colours, the hex dump."""

from __future__ import annotations

import re
from typing import Any, Final

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)

from services.workbench.body_format import HEX_WIDTH, hex_line, hex_line_count
from widgets.common import colors


def monospace_font() -> QFont:
    """The system's fixed-width font (bodies, hex dumps)."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


HIGHLIGHT_MAX_CHARS: Final = 200_000
"""JSON longer than this is shown without colours (highlighting is per line, in Python)."""


def _char_format(colour: str, italic: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(colour))
    fmt.setFontItalic(italic)
    return fmt


class JsonHighlighter(QSyntaxHighlighter):
    """Colours for pretty-printed JSON: keys, strings, numbers, literals, masked values."""

    _TOKEN = re.compile(
        r'(?P<string>"(?:\\.|[^"\\])*")(?P<colon>\s*:)?'
        r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
        r"|(?P<literal>\b(?:true|false|null)\b)"
    )

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.key_format = _char_format("#8ab4f8")
        self.string_format = _char_format("#a5d6a7")
        self.number_format = _char_format("#e3b341")
        self.literal_format = _char_format("#c792ea")
        self.masked_format = _char_format(colors.TEXT_MUTED, italic=True)

    def highlightBlock(self, text: str) -> None:
        if any(ord(char) > 0xFFFF for char in text):
            return  # Qt counts UTF-16 units; such lines are left plain
        for match in self._TOKEN.finditer(text):
            if match.group("string") is not None:
                start, end = match.span("string")
                token = match.group("string")
                if match.group("colon"):
                    fmt = self.key_format
                elif "•••" in token or "**" in token:
                    fmt = self.masked_format
                else:
                    fmt = self.string_format
                self.setFormat(start, end - start, fmt)
            elif match.group("number") is not None:
                start, end = match.span("number")
                self.setFormat(start, end - start, self.number_format)
            else:
                start, end = match.span("literal")
                self.setFormat(start, end - start, self.literal_format)


class HexDumpModel(QAbstractListModel):
    """A hex dump, one line per row, made only for the rows on screen."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._data = b""

    def set_data(self, data: bytes) -> None:
        self.beginResetModel()
        self._data = data
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        if parent is not None and parent.isValid():
            return 0
        return hex_line_count(len(self._data))

    def data(
        self,
        index: QModelIndex | QPersistentModelIndex,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid():
            return None
        offset = index.row() * HEX_WIDTH
        if offset >= len(self._data):
            return None
        return hex_line(self._data, offset)

    def shown_bytes(self) -> bytes:
        """The bytes the dump shows (masked)."""
        return self._data

    def text(self) -> str:
        """The whole dump (for copying and tests)."""
        return "\n".join(hex_line(self._data, o) for o in range(0, len(self._data), HEX_WIDTH))
