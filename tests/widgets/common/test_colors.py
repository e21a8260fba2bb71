"""The theme's colours: every text readable (WCAG AA), every side-by-side colour distinct."""

from __future__ import annotations

import itertools

import pytest

from services.workbench.model import EntryState
from widgets.common import colors

SURFACES = {
    name: getattr(colors, name) for name in ("WINDOW_BG", "SURFACE", "SURFACE_RAISED", "PLOT_BG")
}
TEXT_COLOURS = {
    name: getattr(colors, name)
    for name in (
        "TEXT",
        "TEXT_MUTED",
        "TEXT_FAINT",
        "ACCENT",
        "FOCUS_RING",
        "GREEN",
        "AMBER",
        "RED",
    )
}
NOT_TEXT = {"BORDER", "GRID", "ACCENT_DIM", "ALERT_CRITICAL_BG", "ALERT_WARNING_BG"}
"""Colours of lines, borders and fills: never a text colour."""
AA = 4.5
DEMO_STATUSES = ("requested", "review", "authorized", "captured", "declined", "failed")


def _module_colours() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(colors).items()
        if name.isupper() and isinstance(value, str) and value.startswith("#")
    }


def test_every_colour_of_the_module_is_classified() -> None:
    """A new colour must be named a surface, a text colour or a line/fill here, so the
    contrast test below cannot miss it."""
    known = set(SURFACES) | set(TEXT_COLOURS) | NOT_TEXT | {"DEAD_LETTER_COLOR", "SELECTED_TEXT"}
    assert set(_module_colours()) <= known


def test_wcag_contrast_of_known_values() -> None:
    assert colors.contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert colors.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert colors.contrast_ratio("#123456", "#123456") == pytest.approx(1.0)


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_every_text_colour_reads_at_aa_on_every_surface(surface: str) -> None:
    background = SURFACES[surface]
    texts = {
        **TEXT_COLOURS,
        **{f"state {s.value}": c for s, c in colors.STATE_COLORS.items()},
        **{f"level {lv.value}": c for lv, c in colors.LEVEL_COLORS.items()},
        **{f"link {ls.value}": c for ls, c in colors.LINK_STATE_COLORS.items()},
        **{f"p{p}": c for p, c in colors.LATENCY_COLORS.items()},  # the crosshair readout
        **{status: colors.status_color(status) for status in DEMO_STATUSES},  # legends
    }
    poor = {
        name: round(colors.contrast_ratio(colour, background), 2)
        for name, colour in texts.items()
        if colors.contrast_ratio(colour, background) < AA
    }
    assert not poor, f"below {AA}:1 on {surface} {background}: {poor}"


@pytest.mark.parametrize("selected", [False, True])
@pytest.mark.parametrize("row", ["PLOT_BG", "SURFACE"])
def test_state_pills_read_at_aa_on_plain_alternate_and_selected_rows(
    row: str, selected: bool
) -> None:
    base = colors.ACCENT_DIM if selected else getattr(colors, row)
    for state in EntryState:
        ink, fill, _edge = colors.pill_colors(state, base, selected=selected)
        assert colors.contrast_ratio(ink, fill) >= AA, (state, row, selected)


def test_selected_rows_read_at_aa() -> None:
    assert colors.contrast_ratio(colors.SELECTED_TEXT, colors.ACCENT_DIM) >= AA
    assert colors.contrast_ratio(colors.TEXT, colors.ACCENT_DIM) >= AA


def _too_close(named: dict[str, str]) -> list[tuple[str, str, float]]:
    return [
        (a, b, round(colors.lab_distance(ca, cb), 1))
        for (a, ca), (b, cb) in itertools.combinations(named.items(), 2)
        if colors.lab_distance(ca, cb) < colors.MIN_SERIES_DISTANCE
    ]


def test_lab_distance_of_known_values() -> None:
    assert colors.lab_distance("#000000", "#ffffff") == pytest.approx(100.0, abs=0.1)
    assert colors.lab("#ff0000") == pytest.approx((53.2, 80.1, 67.2), abs=0.3)


def test_entry_state_colours_are_perceptibly_distinct() -> None:
    assert not _too_close({s.value: c for s, c in colors.STATE_COLORS.items()})


def test_latency_percentiles_are_perceptibly_distinct() -> None:
    assert not _too_close({f"p{p}": c for p, c in colors.LATENCY_COLORS.items()})


def test_the_demo_flow_statuses_are_perceptibly_distinct() -> None:
    """One throughput plot shows them together: requested and review were two blues."""
    assert not _too_close({status: colors.status_color(status) for status in DEMO_STATUSES})


def test_an_unknown_status_gets_a_colour_unlike_those_shown() -> None:
    shown = {status: colors.status_color(status) for status in DEMO_STATUSES}
    extra = colors.status_color("on_hold", taken=set(shown.values()))
    assert not _too_close({**shown, "on_hold": extra})
