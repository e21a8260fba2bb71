"""The console's colours: theme surfaces, alert levels, entry states, stable per-series colours."""

from __future__ import annotations

import enum
import math
from collections.abc import Collection

from services.links.status import LinkState
from services.outcomes.model import Outcome
from services.workbench.model import EntryState

# Surfaces and text (dark theme).
WINDOW_BG = "#111418"
SURFACE = "#171b21"
SURFACE_RAISED = "#1e232b"
PLOT_BG = "#13171c"
BORDER = "#2a313b"
GRID = "#3a4350"
TEXT = "#d8dee9"
# Every text colour reads at WCAG AA (4.5:1) on every surface above, the faintest included
# (tests/widgets/common/test_colors.py computes it).
TEXT_MUTED = "#a3acbb"
TEXT_FAINT = "#838d9c"
ACCENT = "#4c9aff"
ACCENT_DIM = "#1f4f8f"  # selections, the chosen toggle
FOCUS_RING = (
    "#9ec5ff"  # the keyboard focus (resources/style.qss): unlike ACCENT, not a default button
)

# Alert levels.
GREEN = "#3ecf8e"
AMBER = "#f5a524"
RED = "#f05454"


class Level(enum.Enum):
    """How alarming a value is; views colour it accordingly."""

    NORMAL = "normal"
    WARN = "warn"
    ALERT = "alert"


LEVEL_COLORS: dict[Level, str] = {Level.NORMAL: TEXT, Level.WARN: AMBER, Level.ALERT: RED}


def channels(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as its red, green and blue values."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return red, green, blue


def blend(colour: str, alpha: float, base: str) -> str:
    """``colour`` at ``alpha`` over ``base``, as an opaque ``#rrggbb``."""
    top, under = channels(colour), channels(base)
    mixed = (round(t * alpha + u * (1 - alpha)) for t, u in zip(top, under, strict=True))
    return "#" + "".join(f"{channel:02x}" for channel in mixed)


def _linear(channel: int) -> float:
    """An sRGB channel (0-255) as linear light (0-1)."""
    v = channel / 255
    return v / 12.92 if v <= 0.04045 else float(((v + 0.055) / 1.055) ** 2.4)


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of ``#rrggbb``."""
    red, green, blue = (_linear(c) for c in channels(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two colours, 1 to 21 (4.5 is AA for text)."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def lab(colour: str) -> tuple[float, float, float]:
    """``#rrggbb`` (sRGB) in CIE L*a*b* (D65)."""
    red, green, blue = (_linear(c) for c in channels(colour))
    x = (0.4124 * red + 0.3576 * green + 0.1805 * blue) / 0.95047
    y = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    z = (0.0193 * red + 0.1192 * green + 0.9505 * blue) / 1.08883

    def f(t: float) -> float:
        return float(t ** (1 / 3)) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def lab_distance(first: str, second: str) -> float:
    """CIE76 colour difference (about 2.3 is just noticeable; above 30 plainly another colour)."""
    return math.dist(lab(first), lab(second))


MIN_SERIES_DISTANCE = 33.0
"""Colours shown side by side (states, plot series) differ by at least this (CIE76)."""

# The alert banner's washes: opaque, so the strip looks the same on any parent.
ALERT_CRITICAL_BG = blend(RED, 0.16, WINDOW_BG)
ALERT_WARNING_BG = blend(AMBER, 0.13, WINDOW_BG)

LINK_STATE_COLORS: dict[LinkState, str] = {
    LinkState.CONNECTED: GREEN,
    LinkState.CONNECTING: AMBER,
    LinkState.RECONNECTING: AMBER,
    LinkState.FAILED: RED,
}
"""A connection's colour (the status bar's dots and texts)."""

STATE_COLORS: dict[EntryState, str] = {
    EntryState.PARKED: AMBER,
    EntryState.CLAIMED: ACCENT,
    EntryState.REQUEUED: GREEN,
    EntryState.RETRIED: "#17c3d6",
    EntryState.CANCELLED: TEXT_MUTED,
}
"""A parked entry's colour, wherever its state is shown: parked (waiting for someone)
amber, in progress blue, done green/teal, cancelled grey."""

OUTCOME_COLORS: dict[Outcome, str] = {
    Outcome.PENDING: ACCENT,
    Outcome.SUCCEEDED: GREEN,
    Outcome.DECLINED: AMBER,
    Outcome.FAILED_AGAIN: RED,
    Outcome.NO_OUTCOME: TEXT_MUTED,
    Outcome.CANCELLED: TEXT_MUTED,
}
"""A replayed entry's outcome, wherever it is shown: waiting blue, succeeded green,
declined amber, failed again red, no outcome and cancelled grey."""

PILL_FILL_ALPHA = 36 / 255
PILL_EDGE_ALPHA = 120 / 255
SELECTED_TEXT = "#ffffff"


def pill_colors(state: EntryState, base: str, *, selected: bool = False) -> tuple[str, str, str]:
    """A state pill's (text, fill, edge) on a row of colour ``base``, opaque.

    On a selected row the state colour is too dark against the selection, so the
    text turns white and the edge keeps the state's colour.
    """
    colour = STATE_COLORS.get(state, TEXT)
    text = SELECTED_TEXT if selected else colour
    return text, blend(colour, PILL_FILL_ALPHA, base), blend(colour, PILL_EDGE_ALPHA, base)


# Known payment statuses, matched as substrings of the (lower-cased) status or
# routing key, first match wins: failures are red, declines amber.
_STATUS_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("fail", RED),
    ("error", RED),
    ("declin", "#f0883e"),
    ("reject", "#f0883e"),
    ("expir", "#e3b341"),
    ("timeout", "#e3b341"),
    ("cancel", "#9aa4b2"),
    ("void", "#9aa4b2"),
    ("chargeback", "#e35dd0"),
    ("refund", "#ff9ecd"),
    ("settl", "#2bb3c0"),
    ("captur", "#e08cff"),
    ("authori", GREEN),
    ("request", "#7aa2f7"),
    ("creat", "#7aa2f7"),
    ("initiat", "#7aa2f7"),
    ("pending", "#7aa2f7"),
    ("review", "#c3e88d"),  # waiting for a risk check: not another blue beside "requested"
)

# Palettes for everything else, in the order colours are handed out (most distinct
# first). The cool one has no reds, so red keeps meaning "failure".
_COOL_PALETTE: tuple[str, ...] = (
    "#4c9aff",
    "#3ecf8e",
    "#e3b341",
    "#c792ea",
    "#2bb3c0",
    "#c9a26d",
    "#9ccc65",
    "#a5b4fc",
    "#8fbcbb",
    "#7ee0c3",
    "#64b5f6",
    "#d4d4aa",
)
_HOT_PALETTE: tuple[str, ...] = (RED, "#ff7eb6", "#f0883e", "#e35dd0")

LATENCY_COLORS: dict[int, str] = {50: "#64b5f6", 95: "#e3b341", 99: "#e35dd0"}
"""p50 blue, p95 gold, p99 magenta: three hues, not two oranges."""
DEAD_LETTER_COLOR = RED


def _first_free(palette: tuple[str, ...], taken: Collection[str]) -> str:
    """The first colour of ``palette`` that looks unlike every colour in ``taken``
    (then the first not in ``taken``, cycling when all are taken)."""
    for colour in palette:
        if all(lab_distance(colour, other) >= MIN_SERIES_DISTANCE for other in taken):
            return colour
    for colour in palette:
        if colour not in taken:
            return colour
    return palette[len(taken) % len(palette)]


def status_color(name: str, taken: Collection[str] = ()) -> str:
    """The colour of a payment status: fixed for known statuses (failures red).

    An unknown status gets the first colour not in ``taken``; the caller keeps
    it for as long as it shows the series.
    """
    lowered = name.lower()
    for keyword, colour in _STATUS_KEYWORDS:
        if keyword in lowered:
            return colour
    return _first_free(_COOL_PALETTE, taken)


def is_dead_letter_queue(name: str) -> bool:
    """Whether a queue's name says it holds dead letters."""
    lowered = name.lower()
    return any(tag in lowered for tag in ("dlq", "dead", ".dlx", "parking"))


def queue_color(name: str, taken: Collection[str] = ()) -> str:
    """A queue's colour: the first free hot one for dead-letter queues, cool for the rest."""
    palette = _HOT_PALETTE if is_dead_letter_queue(name) else _COOL_PALETTE
    return _first_free(palette, taken)
