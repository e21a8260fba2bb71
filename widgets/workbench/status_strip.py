"""The failed-payments browser's count line: shown of total entries, how many are
selected, the "N new entries — show" button and the full load's progress."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QWidget


class StatusStrip(QFrame):
    """``12,345 of 1,000,000 entries (loading …)``, ``N selected`` and a progress bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StatusStrip")
        self.count_label = QLabel()
        self.count_label.setObjectName("CountLabel")
        self.selected_label = QLabel()
        self.selected_label.setObjectName("SelectedLabel")
        self.loading_label = QLabel()
        self.loading_label.setObjectName("LoadingLabel")
        self.loading_bar = QProgressBar()
        self.loading_bar.setObjectName("LoadingBar")
        self.loading_bar.setTextVisible(False)
        self.loading_bar.setFixedWidth(160)
        self.loading_bar.setFixedHeight(6)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 4, 10, 4)
        row.setSpacing(10)
        row.addWidget(self.count_label)
        row.addWidget(self.selected_label)
        self._new_entries_at = row.count()
        row.addStretch(1)
        row.addWidget(self.loading_label)
        row.addWidget(self.loading_bar, 0, Qt.AlignmentFlag.AlignVCenter)
        self.loading_label.hide()
        self.loading_bar.hide()

    def add_new_entries_button(self, button: QWidget) -> None:
        """Lay out the table's "N new entries — show" button after the counts."""
        layout = self.layout()
        assert isinstance(layout, QHBoxLayout)
        layout.insertWidget(self._new_entries_at, button, 0, Qt.AlignmentFlag.AlignVCenter)

    def show_loading(self, loading: tuple[int, int] | None) -> None:
        """(loaded, total) while the full load runs; None hides the progress."""
        if loading is None:
            self.loading_label.hide()
            self.loading_bar.hide()
            return
        loaded, total = loading
        self.loading_label.setText(f"Loading {100 * loaded / total:.0f} %")
        # QProgressBar.setValue repaints at once when the bar moves a pixel or so, and a
        # repaint at once paints everything pending in the window (the table too: a
        # load's step took a whole repaint): the bar is painted with the rest instead.
        bar = self.loading_bar
        bar.setUpdatesEnabled(False)
        try:
            bar.setRange(0, total)
            bar.setValue(loaded)
        finally:
            bar.setUpdatesEnabled(True)
        bar.update()
        self.loading_label.show()
        self.loading_bar.show()

    def show_counts(
        self,
        shown: int,
        total: int,
        selected: int,
        unavailable: bool,
        loading: tuple[int, int] | None,
    ) -> None:
        """The count line: ``shown`` of ``total``, the load's progress, ``selected``."""
        text = f"{shown:,} of {total:,} entries"
        if unavailable:
            text += " (cannot be read now)"
        elif loading is not None:
            loaded, expected = loading
            text += f" (loading {loaded:,} / {expected:,}…)"
        self.count_label.setText(text)
        self.selected_label.setText(f"{selected:,} selected" if selected else "")
