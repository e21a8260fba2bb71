"""The detail pane's tabs in a narrow pane: the scroll arrows are drawn and reach every tab.

In a 1280 px window the pane is about 380 px wide and its tab bar ends at "Audi";
the bar's scroll buttons were there but blank (the stylesheet's QToolButton padding
left their 16 px no room for the arrow), so the Audit and Timeline tabs looked absent.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton

from tests.helpers.detail_entries import make_entry
from widgets.workbench.detail import EntryDetailPane


def distinct_colours(button: QToolButton) -> int:
    image = button.grab().toImage()
    return len({image.pixel(x, y) for x in range(image.width()) for y in range(image.height())})


def test_the_tab_scroll_arrows_are_drawn_and_lead_to_the_timeline_tab(qtbot) -> None:
    pane = EntryDetailPane()
    qtbot.addWidget(pane)
    pane.show_entry(make_entry())
    pane.resize(380, 700)
    pane.show()
    qtbot.waitExposed(pane)
    bar = pane.tabs.tabBar()
    arrows = {b.arrowType(): b for b in bar.findChildren(QToolButton)}
    right = arrows[Qt.ArrowType.RightArrow]
    assert right.isVisible(), "the tabs fit: the test needs a pane too narrow for them"
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
    assert pane.tabs.currentIndex() == timeline
