"""The load's progress does not paint the window in the load's own step: the progress
bar is painted with the rest, in Qt's own paint event (QProgressBar.setValue repainted
at once, and with it the whole table marked for repainting by the refresh)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject

from services.workbench.index import EntryIndex
from tests.helpers.screens import show
from tests.helpers.summaries import realistic_summaries
from widgets.workbench.browser import FailedPaymentsView


class PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.paints = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def test_the_progress_of_a_load_paints_nothing_in_the_loads_step(qtbot):
    index = EntryIndex()
    index.add(realistic_summaries(400, seed=4))
    view = show(qtbot, FailedPaymentsView(index))
    view.resize(1280, 800)
    view.set_loading(len(index), 100_000)
    qtbot.wait(50)
    counter = PaintCounter()
    view.table.viewport().installEventFilter(counter)
    view.loading_bar.installEventFilter(counter)
    for loaded in (20_000, 50_000, 90_000):  # the bar moves by many pixels each time
        view.table.viewport().update()  # as a refresh leaves it: to be repainted
        view.set_loading(loaded, 100_000)
        assert counter.paints == 0, "painted in the load's step"
        qtbot.waitUntil(lambda: counter.paints > 0)  # in Qt's own paint event
        assert view.loading_bar.value() == loaded
        counter.paints = 0
