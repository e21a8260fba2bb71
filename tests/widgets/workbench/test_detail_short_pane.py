"""The detail pane in a short window: the header's facts keep their height.

In a 1280×800 window an acted-on entry's header (facts, outcome line, buttons) is
about 290 px; the tabs' height-for-width made the layout share the pane out evenly,
so the facts were squeezed to 5 px each and drawn over each other.
"""

from __future__ import annotations

import dataclasses
import itertools

from services.outcomes.model import EntryOutcome, Outcome
from services.workbench.model import EntryState
from tests.helpers.detail_entries import make_entry
from widgets.workbench.detail import EntryDetailPane


def test_the_facts_are_not_squeezed_in_a_short_pane(qtbot) -> None:
    pane = EntryDetailPane()
    qtbot.addWidget(pane)
    entry = make_entry(state=EntryState.REQUEUED, operator="alice", action="requeue")
    outcome = EntryOutcome(
        Outcome.SUCCEEDED, detail="captured at 01:10:20 UTC by the flow", job="01a243c08507"
    )
    pane.show_entry(dataclasses.replace(entry, outcome=outcome))
    pane.resize(380, 470)  # the pane's size in a 1280×800 window
    pane.show()
    qtbot.waitExposed(pane)
    qtbot.wait(50)

    labels = [pane.facts[key] for key in pane.facts if pane.facts[key].isVisible()]
    assert len(labels) >= 5
    for label in labels:
        assert label.height() >= label.sizeHint().height(), label.text()
    tops = sorted(label.mapTo(pane, label.rect().topLeft()).y() for label in labels)
    rows = sorted(set(tops))
    gaps = [b - a for a, b in itertools.pairwise(rows)]
    assert min(gaps) >= labels[0].sizeHint().height(), f"facts overlap: rows at {rows}"
    header_bottom = pane.header_frame.geometry().bottom()
    assert pane.tabs.geometry().top() > header_bottom, "the tabs are drawn over the header"
