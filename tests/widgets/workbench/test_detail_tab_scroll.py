"""The detail pane's tabs in a narrow pane: every tab in view at a 1280 px window's width,
and where even that is not enough (a larger font) the scroll arrows are drawn and reach
every tab.

In a 1280 px window the pane is about 380 px wide: its tab bar ended at "Timel" (the
counts, "Headers (7)", "x-death (2)", took the room); before that the bar's scroll
buttons were there but blank (the stylesheet's QToolButton padding left their 16 px no
room for the arrow), so the Audit and Timeline tabs looked absent.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton, QWidget

from tests.helpers.detail_entries import make_entry
from widgets.workbench.detail import EntryDetailPane
from widgets.workbench.detail_tabs import DetailTabs


def distinct_colours(button: QToolButton) -> int:
    image = button.grab().toImage()
    return len({image.pixel(x, y) for x in range(image.width()) for y in range(image.height())})


def shown_pane(qtbot, width: int) -> EntryDetailPane:
    pane = EntryDetailPane()
    qtbot.addWidget(pane)
    pane.show_entry(make_entry())  # "Headers (7)", "x-death (2)"
    pane.resize(width, 700)
    pane.show()
    qtbot.waitExposed(pane)
    return pane


def test_at_a_1280_px_windows_width_every_tab_is_in_view_its_count_in_the_tooltip(
    qtbot,
) -> None:
    pane = shown_pane(qtbot, 380)
    bar = pane.tabs.tabBar()
    titles = [bar.tabText(i) for i in range(bar.count())]
    assert titles == ["Body", "Properties", "Headers", "x-death", "Audit", "Timeline"]
    assert bar.tabToolTip(2) == "Headers (7)" and bar.tabToolTip(3) == "x-death (2)"
    assert bar.tabToolTip(0) == ""  # nothing to tell
    arrows = [b for b in bar.findChildren(QToolButton) if b.isVisible()]
    assert not arrows, "the bar scrolls: a tab is out of view"
    for index in range(bar.count()):
        assert bar.rect().contains(bar.tabRect(index)), titles[index]
        qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
        assert pane.tabs.currentIndex() == index

    pane.resize(620, 700)  # room again: the counts come back
    qtbot.waitUntil(lambda: bar.tabText(2) == "Headers (7)")
    assert bar.tabText(3) == "x-death (2)" and bar.tabToolTip(2) == ""


def test_the_tab_scroll_arrows_are_drawn_and_lead_to_the_timeline_tab(qtbot) -> None:
    # The pane is never narrower than its buttons' row, where the compact titles fit; the
    # tabs alone, narrower still, are what a larger font would make of the pane.
    tabs = DetailTabs()
    qtbot.addWidget(tabs)
    for title in ("Body", "Properties", "Headers", "x-death", "Audit", "Timeline"):
        tabs.addTab(QWidget(), title)
    tabs.set_title(2, "Headers", 7)
    tabs.resize(250, 300)
    tabs.show()
    qtbot.waitExposed(tabs)
    bar = tabs.tabBar()
    arrows = {b.arrowType(): b for b in bar.findChildren(QToolButton)}
    right = arrows[Qt.ArrowType.RightArrow]
    assert right.isVisible(), "the tabs fit: the test needs a bar too narrow for them"
    timeline = next(i for i in range(bar.count()) if bar.tabText(i).startswith("Timeline"))
    assert not bar.rect().contains(bar.tabRect(timeline)), "the Timeline tab is out of view"

    for button in arrows.values():
        # a blank button is one colour; an arrow adds its own (and anti-aliased edges)
        assert distinct_colours(button) >= 3, f"{button.arrowType()} draws no arrow"

    for _ in range(bar.count()):
        if bar.rect().contains(bar.tabRect(timeline)):
            break
        qtbot.mouseClick(right, Qt.MouseButton.LeftButton)
    assert bar.rect().contains(bar.tabRect(timeline)), "the right arrow does not reach it"
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(timeline).center())
    assert tabs.currentIndex() == timeline
