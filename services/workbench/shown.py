"""How a stored value that is not text, or text that is not UTF-8, is shown.

One convention for every view of parked data (the console's table and detail pane,
``payops dlq list/show``, the snapshot bundle): bytes that are not UTF-8 (as header keys
do, :func:`services.links.amqp_wire.key_of`) and control characters read as ``\\xNN``
escapes, and a value of another type where text belongs (a number for a merchant, a list
for a payment id) as ``<number 42>``, ``<array [...]>``: its JSON text, marked and masked
(a card number stored as a number stays masked, also where a view trusts a field to be
stored masked, as the merchant is).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from services.masking.json import mask_sensitive_text
from services.workbench.x_death import DeathRecord

_KINDS: dict[type, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
}


_CONTROLS: dict[int, str] = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
"""C0 and C1 control characters and DEL, each to its ``\\xNN``: an ESC from a message
must not reach an operator's terminal as an escape sequence, nor a newline cut a line."""


def _visible(text: str) -> str:
    """``text`` with its control characters as ``\\xNN`` (printable text as it is)."""
    return text if text.isprintable() else text.translate(_CONTROLS)


def escaped(text: str) -> str:
    """``text`` with the bytes that were not UTF-8 (surrogate escapes) and the control
    characters as ``\\xNN``."""
    return _visible(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def masked_escaped(text: str) -> str:
    """``text`` masked and :func:`escaped`, masked before (``\\xNN`` glues letters to the
    digits that follow: ``\\xff4111...`` is no longer a card number to the masking) and
    after (the escape's digits next to others)."""
    return mask_sensitive_text(escaped(mask_sensitive_text(text)))


def shown_death(death: DeathRecord) -> DeathRecord:
    """``death`` with its texts (queue, reason, exchange, routing keys) as shown:
    :func:`masked_escaped` (``dlq show`` and the detail pane's x-death)."""
    return dataclasses.replace(
        death,
        queue=masked_escaped(death.queue),
        reason=masked_escaped(death.reason),
        exchange=masked_escaped(death.exchange),
        routing_keys=tuple(masked_escaped(key) for key in death.routing_keys),
    )


def non_text(value: Any) -> str:
    """A value where text belongs, as marked, masked text (bytes: their ``\\xNN``-escaped
    text)."""
    if isinstance(value, bytes | bytearray):
        return mask_sensitive_text(_visible(bytes(value).decode("utf-8", "backslashreplace")))
    if isinstance(value, str):
        return mask_sensitive_text(escaped(value))
    try:
        shown = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        shown = repr(value)
    return mask_sensitive_text(f"<{_KINDS.get(type(value), type(value).__name__)} {shown}>")


def optional_text(value: Any) -> str | None:
    """A stored text field as a text or None (anything else: :func:`non_text`)."""
    return value if value is None or type(value) is str else non_text(value)
