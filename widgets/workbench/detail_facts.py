"""The detail header's facts: the cause on a line of its own (wrapped, never cut; where it
came from in its tooltip), then caption/value pairs (reason, origin queue, attempts, …)
laid out in two columns where every value fits whole, one under the other in a narrow
pane."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel

from widgets.common.elided_label import ElidedLabel

FACTS: Final = (
    ("reason", "Reason"),
    ("origin_queue", "Origin queue"),
    ("attempts", "Attempts"),
    ("dead_lettered_at", "Dead-lettered"),
    ("dlq", "Parked from"),
    ("routing_key", "Routing key"),
)
"""The header's facts, in reading order (two columns side by side, or one)."""


def text_width(label: ElidedLabel) -> int:
    """What ``label`` needs to show its whole text (its margins and the style's indent)."""
    margins = label.contentsMargins()
    return (
        label.fontMetrics().horizontalAdvance(label.full_text())
        + margins.left()
        + margins.right()
        + 2 * max(label.margin(), 0)
        + 2
    )


class FactsGrid(QGridLayout):
    """``labels[key]``: each fact's value (elided only where even one column is too narrow,
    selectable); ``cause`` in ``cause_row``: the cause, laid out over the grid;
    :meth:`fit` picks two columns or one for the width there is."""

    def __init__(self) -> None:
        super().__init__()
        self.setHorizontalSpacing(10)
        self.setVerticalSpacing(3)
        self.labels: dict[str, ElidedLabel] = {}
        self._pairs: list[tuple[QLabel, ElidedLabel]] = []
        self.cause_caption = QLabel("Cause")
        self.cause_caption.setObjectName("FactCaption")
        self.cause = QLabel()
        self.cause.setObjectName("FactValue")
        self.cause.setWordWrap(True)
        self.cause.setTextFormat(Qt.TextFormat.PlainText)
        self.cause.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Over the grid, not in it: a long cause would widen the grid's first columns.
        self.cause_row = QHBoxLayout()
        self.cause_row.setSpacing(10)
        self.cause_row.addWidget(self.cause_caption, 0, Qt.AlignmentFlag.AlignTop)
        self.cause_row.addWidget(self.cause, 1)
        for key, caption in FACTS:
            caption_label = QLabel(caption)
            caption_label.setObjectName("FactCaption")
            value = ElidedLabel()
            value.setObjectName("FactValue")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.labels[key] = value
            self._pairs.append((caption_label, value))
        self.columns = 0
        self._place(2)

    def fit(self, width: int) -> None:
        """Two fact columns when ``width`` holds every value in full, else one."""
        spacing = self.horizontalSpacing()
        needed = 0
        values_width = []
        for col in range(2):
            pairs = self._pairs[col::2]
            captions = max(c.sizeHint().width() for c, _ in pairs)
            values = max(text_width(v) for _, v in pairs)
            values_width.append(values)
            needed += captions + spacing + values
        columns = 2 if needed + spacing <= width else 1
        self._place(columns)
        for col, values in enumerate(values_width):  # two: each value column its text's width
            self.setColumnMinimumWidth(col * 2 + 1, values if columns == 2 else 0)

    def _place(self, columns: int) -> None:
        if columns == self.columns:
            return
        self.columns = columns
        for caption, value in self._pairs:
            self.removeWidget(caption)
            self.removeWidget(value)
        for index, (caption, value) in enumerate(self._pairs):
            row, col = divmod(index, columns)
            self.addWidget(caption, row, col * 2)
            self.addWidget(value, row, col * 2 + 1)
        for col in range(4):
            self.setColumnStretch(col, 1 if col % 2 and col < columns * 2 else 0)
