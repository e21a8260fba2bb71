"""Why a parked payment failed: its cause, where the cause came from, and its failure group.

The cause of an entry is taken, in order, from

1. ``flow``: the payment's latest failure event seen on the flow (its
   ``fields.reason``), recorded per payment by a console or ``payops collect``.
   The workbench does not read that record itself (the flow is a sibling layer):
   the app hands the parker a :data:`FailureLookup`;
2. ``message``: the message's own error information, the headers and body paths
   the profile names (``fields.cause_headers``, ``fields.cause_paths``) and then
   the headers frameworks write (:data:`FRAMEWORK_HEADERS`: Spring AMQP,
   MassTransit, NServiceBus);
3. ``dead_letter``: else the dead-letter reason RabbitMQ gives.

A *failure group* is the cause normalised (:func:`failure_group`): numbers,
amounts, ids, hex strings, uuids and timestamps become ``#``, so "timeout after
3012 ms on acq-7" and "timeout after 2999 ms on acq-2" are one group,
"timeout after # ms on acq-#". Causes are masked like free text (card numbers,
CVV-like values) before they are kept.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal, get_args

from services.json_paths import JsonGetter, compile_path
from services.masking.json import mask_sensitive_text

CauseSource = Literal["flow", "message", "dead_letter"]
CAUSE_SOURCES: Final[tuple[CauseSource, ...]] = get_args(CauseSource)

FRAMEWORK_HEADERS: Final = (
    "x-exception-message",  # Spring AMQP's RepublishMessageRecoverer
    "MT-Fault-Message",  # MassTransit
    "NServiceBus.ExceptionInfo.Message",  # NServiceBus
)
"""Headers frameworks write the failure's message into, tried after the profile's."""

STACKTRACE_HEADER: Final = "x-exception-stacktrace"
"""Spring AMQP's stack trace: its first line (``Exception: message``) when the message
header is missing."""

MAX_CAUSE_CHARS: Final = 300
"""A longer cause is cut (with an ellipsis)."""
MAX_GROUP_CHARS: Final = 160
"""A longer failure group is cut."""

UNKNOWN_CAUSE: Final = "unknown"
"""The cause of an entry with no failure information at all."""


@dataclass(frozen=True, slots=True)
class Cause:
    """An entry's cause (masked), where it came from, and its failure group."""

    text: str
    source: CauseSource
    group: str

    @classmethod
    def of(cls, text: str, source: CauseSource) -> Cause:
        """The cause ``text`` (masked and cut here) from ``source``, with its group."""
        if len(text) <= _CACHED_TEXT_CHARS:  # dead letters repeat their reasons
            shown, group = _shown_and_group(text)
        else:
            shown, group = _shown_and_group.__wrapped__(text)
        return cls(shown, source, group)


_CACHED_TEXT_CHARS: Final = 256


@lru_cache(maxsize=1024)
def _shown_and_group(text: str) -> tuple[str, str]:
    """A cause's text as shown (:func:`clean_cause`) and its :func:`failure_group`."""
    shown = clean_cause(text) or UNKNOWN_CAUSE
    return shown, failure_group(shown)


@dataclass(frozen=True, slots=True)
class FlowFailure:
    """A payment's latest failure event on the flow: its reason and time (epoch ms)."""

    reason: str
    at_ms: int


FailureLookup = Callable[[Sequence[str]], Awaitable[Mapping[str, FlowFailure]]]
"""``await lookup(payment_ids)``: the latest failure on the flow of those payments that
have one (with a reason), in one round trip. The app builds it on the flow's record."""


# --------------------------------------------------------------------------- text


_SPACES = re.compile(r"\s+")


def clean_cause(text: str) -> str:
    """A cause as kept: one line, masked like free text, at most :data:`MAX_CAUSE_CHARS`."""
    flat = _SPACES.sub(" ", text).strip()
    if len(flat) > 4 * MAX_CAUSE_CHARS:
        flat = flat[: 4 * MAX_CAUSE_CHARS]  # masking is linear, but keep it bounded
    masked = mask_sensitive_text(flat)
    if len(masked) > MAX_CAUSE_CHARS:
        masked = masked[: MAX_CAUSE_CHARS - 1].rstrip() + "…"
    return masked


_UUID = re.compile(r"\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b")
_WORD = re.compile(r"[^\W_]+")
"""Letters and digits: the pieces ids are made of (``pay_17d55`` is ``pay`` and ``17d55``)."""
_HEX_ONLY = re.compile(r"[0-9a-fA-F]{8,}")
_RUNS = re.compile(r"#(?:\s?[-+.,:/*]?\s?#)+")
"""Numbers next to numbers (a timestamp, ``12.50``, ``#-#-#``) are one ``#``."""
_MASK_STARS = re.compile(r"#?\*+#?")


def _word(match: re.Match[str]) -> str:
    word = match.group(0)
    if any(c.isdigit() for c in word) or _HEX_ONLY.fullmatch(word):
        return "#"
    return word


def failure_group(cause: str) -> str:
    """The failure group of a cause: what is left when the parts that vary are taken out.

    Every run of letters and digits holding a digit (``3012``, ``acq7``, ``17d55``,
    ``2026``), every hex string of 8 or more and every uuid becomes ``#``; a
    run of ``#`` joined by separators (``12.50``, a date and time, a masked
    card number) becomes one ``#``; spaces are collapsed and the text cut to
    :data:`MAX_GROUP_CHARS`. Letters keep their case.
    """
    text = _UUID.sub("#", cause)
    text = _WORD.sub(_word, text)
    text = _MASK_STARS.sub("#", text)
    text = _RUNS.sub("#", text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > MAX_GROUP_CHARS:
        text = text[: MAX_GROUP_CHARS - 1].rstrip() + "…"
    return text or UNKNOWN_CAUSE


# --------------------------------------------------------------------------- the message


@lru_cache(maxsize=32)
def _path_getters(paths: tuple[str, ...]) -> tuple[JsonGetter, ...]:
    return tuple(compile_path(path) for path in paths)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str) and value.strip():
        return value
    return None


def _first_line(stacktrace: str) -> str:
    for line in stacktrace.splitlines():
        if line.strip():
            return line.strip()
    return ""


def message_cause(
    headers: Mapping[str, Any],
    body: Any,
    headers_first: Sequence[str] = (),
    paths: Sequence[str] = (),
) -> str | None:
    """The failure message a message carries itself (unmasked), or None.

    Tried in order: the headers ``headers_first`` names, the body paths
    ``paths`` names (``body`` is the parsed JSON, or None), the framework
    headers (:data:`FRAMEWORK_HEADERS`), and the first line of Spring's stack
    trace header.
    """
    for name in headers_first:
        found = _text(headers.get(name))
        if found:
            return found
    if paths and body is not None:
        for getter in _path_getters(tuple(paths)):
            try:
                found = _text(getter(body))
            except Exception:  # a path helper tripping over odd data must not lose the entry
                found = None
            if found:
                return found
    for name in FRAMEWORK_HEADERS:
        found = _text(headers.get(name))
        if found:
            return found
    trace = _text(headers.get(STACKTRACE_HEADER))
    if trace:
        return _first_line(trace) or None
    return None


def resolve(
    headers: Mapping[str, Any],
    body: Any,
    dead_letter_reason: str,
    *,
    headers_first: Sequence[str] = (),
    paths: Sequence[str] = (),
    flow: FlowFailure | None = None,
) -> Cause:
    """The cause of one entry, from the flow, the message or the dead-letter reason
    (see the module docstring)."""
    if flow is not None and flow.reason.strip():
        return Cause.of(flow.reason, "flow")
    own = message_cause(headers, body, headers_first, paths)
    if own:
        return Cause.of(own, "message")
    return dead_letter_cause(dead_letter_reason)


def dead_letter_cause(reason: str) -> Cause:
    """The cause of an entry that says nothing else: its dead-letter reason (also for
    entries parked before causes were kept)."""
    return Cause.of(reason or UNKNOWN_CAUSE, "dead_letter")


def source_of(value: object) -> CauseSource:
    """A stored cause source (``dead_letter`` when unknown)."""
    for source in CAUSE_SOURCES:
        if value == source:
            return source
    return "dead_letter"


__all__ = [
    "CAUSE_SOURCES",
    "FRAMEWORK_HEADERS",
    "Cause",
    "CauseSource",
    "FailureLookup",
    "FlowFailure",
    "clean_cause",
    "dead_letter_cause",
    "failure_group",
    "message_cause",
    "resolve",
    "source_of",
]
