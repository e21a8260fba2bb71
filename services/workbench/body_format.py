"""How a message body is shown: pretty JSON, text or a hex dump, always masked.

Pure functions, no Qt, for the entry detail pane and ``payops dlq show``.
Every text that comes out of here has its card data masked
(:mod:`services.masking.json`): card numbers to the first 6 / last 4 digits,
CVV-like fields hidden. Hex dumps are masked byte for byte (the digits of a
card number become ``*``) so offsets stay true.

Bodies over :data:`LARGE_BODY_BYTES` are shown by their first
:data:`PREVIEW_BYTES` with a note ("showing 256 KB of 8.0 MB"), so a huge
body never stalls the UI.
"""

from __future__ import annotations

import datetime
import decimal
import re
from dataclasses import dataclass
from typing import Any, Literal

from services.masking.json import (
    HIDDEN,
    IdTree,
    dumps_pretty,
    is_cvv_key,
    is_pan_key,
    loads_exact,
    mask_pan_value,
    mask_sensitive_text,
)
from services.masking.message import mask_untrusted
from services.masking.text import PAN_CANDIDATE_BYTES, card_span
from services.time_range import format_local_time
from services.workbench.model import BodyKind, body_kind

LARGE_BODY_BYTES = 1024 * 1024
"""Bodies larger than this are shown by a prefix only."""
PREVIEW_BYTES = 256 * 1024
"""How much of a large body is shown."""
HEX_WIDTH = 16
"""Bytes per hex-dump line."""
LONG_LINE_CHARS = 1000
"""Text lines longer than this are broken for display (laying out one huge line stalls Qt)."""

BodyView = Literal["json", "text", "hex"]
ShownKind = Literal["json", "text", "binary", "empty"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_JSON_START = frozenset(b"{[")
_WS = b" \t\r\n"


def format_size(size: int) -> str:
    """``12 B``, ``256 KB``, ``8.0 MB`` (binary multiples, as people read them)."""
    if size < 1024:
        return f"{size:,} B"
    if size < 1024 * 1024:
        kb = size / 1024
        return f"{kb:.0f} KB" if kb >= 10 or kb.is_integer() else f"{kb:.1f} KB"
    if size < 1024**3:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{size / 1024**3:.1f} GB"


# --------------------------------------------------------------------------- bytes

_PAN_BYTES = PAN_CANDIDATE_BYTES  # where a card number may sit: as in text
_CVV_BYTES = re.compile(
    rb"(?i)(?:cvv2?|cvc2?|cvn|csc|cvd|cav2|card[_\- ]?verification|security[_\- ]?code)[\w\-]*"
    rb"[\"']?(?:\s*(?:[:=]|>)\s*|\s+)[\"']?([0-9]{3,4})(?![0-9])",
)
_STAR = ord("*")
_DIGIT_0, _DIGIT_9 = ord("0"), ord("9")


def _star_card(match: re.Match[bytes]) -> bytes:
    run = match.group(0)
    span = card_span(run.decode("ascii"))  # the card number in it, as mask_text finds it
    if span is None:
        return run
    start, end = span
    digits = sum(1 for byte in run[start:end] if _DIGIT_0 <= byte <= _DIGIT_9)
    out = bytearray(run)
    seen = 0
    keep_tail = digits - 4
    for offset in range(start, end):
        if _DIGIT_0 <= run[offset] <= _DIGIT_9:
            if 6 <= seen < keep_tail:
                out[offset] = _STAR
            seen += 1
    return bytes(out)


def _star_value(match: re.Match[bytes]) -> bytes:
    start, end = match.span(1)
    whole = match.group(0)
    base = match.start()
    return whole[: start - base] + b"*" * (end - start) + whole[end - base :]


def mask_card_bytes(data: bytes) -> bytes:
    """``data`` with card numbers and CVV-like values starred out, length unchanged.

    Every card number :func:`services.masking.text.mask_text` finds (a Luhn-valid run
    of 13–19 digits, single spaces or dashes allowed between them, standing on its own)
    keeps its first 6 and last 4 digits; the digits after a
    CVV-like key (``cvv=123``, ``"cvc": "123"``) become ``*``.
    """
    if not data:
        return data
    data = _PAN_BYTES.sub(_star_card, data)
    return _CVV_BYTES.sub(_star_value, data)


def hex_line(data: bytes, offset: int, width: int = HEX_WIDTH, *, framed: bool = True) -> str:
    """One hex-dump line: ``00000010  7b 22 69 64 …  |{"id…|``.

    ``framed`` is the ``hexdump -C`` layout (the hex in two halves, the text
    between bars); unframed, the hex is one run and the text follows bare.
    """
    chunk = data[offset : offset + width]
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
    if not framed:
        return f"{offset:08x}  {chunk.hex(' '):<{width * 3 - 1}}  {text}"
    half = width // 2
    left = chunk[:half].hex(" ")
    right = chunk[half:].hex(" ")
    hex_part = f"{left:<{half * 3 - 1}}  {right:<{half * 3 - 1}}"
    return f"{offset:08x}  {hex_part}  |{text:<{width}}|"


def hex_dump(data: bytes, width: int = HEX_WIDTH, *, framed: bool = True) -> str:
    """A whole hex dump (offset | hex | text); mask the bytes first."""
    lines = (hex_line(data, offset, width, framed=framed) for offset in range(0, len(data), width))
    return "\n".join(lines)


def hex_line_count(size: int, width: int = HEX_WIDTH) -> int:
    return (size + width - 1) // width


# --------------------------------------------------------------------------- text

_TRAILING_DIGITS = re.compile(rb"[0-9][0-9 -]{0,63}$")


def safe_prefix(body: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes, cut so that no card number is cut in half.

    A card number cut at the limit would no longer be recognised as one and
    would show more than its first 6 digits; the trailing digit run goes.
    """
    if len(body) <= limit:
        return body
    prefix = body[:limit]
    if _DIGIT_0 <= body[limit] <= _DIGIT_9 or body[limit] in b" -":
        match = _TRAILING_DIGITS.search(prefix)
        if match is not None:
            prefix = prefix[: match.start()]
    return prefix


def decode_prefix(data: bytes) -> str | None:
    """``data`` as UTF-8, allowing a character cut at the end; None if it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or exc.start < len(data) - 3:
            return None
        try:
            return data[: exc.start].decode("utf-8")
        except UnicodeDecodeError:
            return None


def lossy_text(data: bytes) -> str:
    """Bytes as text whatever they are: bad UTF-8 as U+FFFD, control characters as ``·``."""
    text = data.decode("utf-8", "replace")
    return _CONTROL.sub("·", text)


def break_long_lines(text: str, limit: int = LONG_LINE_CHARS) -> tuple[str, bool]:
    """``text`` with every line longer than ``limit`` broken into pieces; and whether any was."""
    if len(text) <= limit:
        return text, False
    lines = text.split("\n")
    if all(len(line) <= limit for line in lines):
        return text, False
    out: list[str] = []
    for line in lines:
        if len(line) <= limit:
            out.append(line)
        else:
            out.extend(line[i : i + limit] for i in range(0, len(line), limit))
    return "\n".join(out), True


_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"?|[{}\[\],:]|[^{}\[\],:"\s]+|\s+')


def reindent_json_text(text: str, indent: int = 2) -> str:
    """Lay out JSON text (possibly cut short, so not parseable) one value per line.

    Keeps every token as written; only whitespace between tokens changes.
    """
    pad = " " * indent
    out: list[str] = []
    depth = 0
    pending_newline = False
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        first = token[0]
        if first.isspace():
            continue
        if first in "}]":
            depth = max(depth - 1, 0)
            out.append("\n" + pad * depth + token)
            pending_newline = False
            continue
        if pending_newline:
            out.append("\n" + pad * depth)
            pending_newline = False
        if first in "{[":
            out.append(token)
            depth += 1
            pending_newline = True
        elif first == ",":
            out.append(",")
            pending_newline = True
        elif first == ":":
            out.append(": ")
        else:
            out.append(token)
    return "".join(out).lstrip("\n")


# --------------------------------------------------------------------------- bodies


@dataclass(frozen=True, slots=True)
class FormattedBody:
    """A body ready to show.

    ``kind`` is what the body is (as far as the shown part tells);
    ``default_view`` how to show it first; ``text`` the masked text for the
    JSON/text views ("" for binary and empty bodies); ``data`` the masked
    bytes shown in the hex view. ``shown_bytes`` of ``total_bytes`` are
    represented; ``note`` says so when that is not all of them.
    """

    kind: ShownKind
    default_view: BodyView
    text: str
    data: bytes
    shown_bytes: int
    total_bytes: int
    note: str = ""

    @property
    def truncated(self) -> bool:
        return self.shown_bytes < self.total_bytes

    def text_for(self, view: BodyView) -> str:
        """The text of the JSON or text view (the text view of binary data is lossy)."""
        if view == "json" or self.kind in ("json", "text"):
            return self.text
        return break_long_lines(mask_sensitive_text(lossy_text(self.data)))[0]


def _looks_like_json(data: bytes) -> bool:
    stripped = data.lstrip(_WS)
    return bool(stripped) and stripped[0] in _JSON_START


def format_body(body: bytes, ids: IdTree | None = None) -> FormattedBody:
    """How to show ``body``: kind, masked text and bytes, and a note when cut short.

    A JSON body is masked as a message (:func:`~services.masking.message.mask_untrusted`:
    card fields, CVV-like text in strings), ``ids`` (the profile's id paths) shown as ids.
    """
    total = len(body)
    if total == 0:
        return FormattedBody("empty", "text", "", b"", 0, 0, "Empty body (0 bytes)")
    truncated = total > LARGE_BODY_BYTES
    shown = safe_prefix(body, PREVIEW_BYTES) if truncated else body
    note = (
        f"Showing the first {format_size(len(shown))} of {format_size(total)}"
        " — the body is too large to show whole"
        if truncated
        else ""
    )
    masked_bytes = mask_card_bytes(shown)
    decoded = decode_prefix(shown) if truncated else _strict(shown)
    if decoded is not None and not truncated and _looks_like_json(shown):
        try:
            value = loads_exact(decoded)
        except ValueError:
            value = None
        else:
            text, _ = break_long_lines(dumps_pretty(mask_untrusted(value, ids)))
            return FormattedBody("json", "json", text, masked_bytes, len(shown), total, note)
    if decoded is not None and truncated and _looks_like_json(shown):
        text, _ = break_long_lines(mask_sensitive_text(reindent_json_text(decoded)))
        note += " (laid out from a JSON prefix; not parsed)"
        return FormattedBody("json", "json", text, masked_bytes, len(shown), total, note)
    if decoded is not None and not _CONTROL.search(decoded):
        text, broken = break_long_lines(mask_sensitive_text(decoded))
        if broken:
            note = _join(note, f"Lines over {LONG_LINE_CHARS:,} characters are broken for display")
        return FormattedBody("text", "text", text, masked_bytes, len(shown), total, note)
    if decoded is None:
        reason = "Not valid UTF-8: shown as a hex dump"
    else:
        reason = "Contains control characters: shown as a hex dump"
    return FormattedBody("binary", "hex", "", masked_bytes, len(shown), total, _join(reason, note))


def _join(*parts: str) -> str:
    return ". ".join(part for part in parts if part)


def _strict(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --------------------------------------------------------------------------- command line

COMMAND_LINE_HEX_BYTES = 4096
"""How much of a binary body ``payops dlq show`` dumps."""


def body_content(
    body: bytes, hex_limit: int = COMMAND_LINE_HEX_BYTES, ids: IdTree | None = None
) -> tuple[BodyKind, Any]:
    """A body as the command line shows it, masked: its kind and the parsed JSON
    value (masked as :func:`format_body` does, ``ids`` shown as ids), the text, ``""``
    when empty, or an unframed hex dump of its first ``hex_limit`` bytes."""
    kind, _ = body_kind(body)
    if kind == "json":
        try:
            return kind, mask_untrusted(loads_exact(body), ids)
        except ValueError:
            kind = "text"
    if kind == "text":
        return kind, mask_sensitive_text(body.decode("utf-8", "replace"))
    if kind == "empty":
        return kind, ""
    # Card numbers are masked in the bytes themselves first, so neither the hex
    # nor the text column shows one.
    head = mask_sensitive_text(body[:hex_limit].decode("latin-1")).encode("latin-1", "replace")
    more = [f"... {len(body) - hex_limit:,} more bytes"] if len(body) > hex_limit else []
    return kind, "\n".join([hex_dump(head, framed=False), *more])


# --------------------------------------------------------------------------- AMQP values


def amqp_type_name(value: Any) -> str:
    """The AMQP field type of a decoded header value, for people."""
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytearray):
        return "byte array"
    if isinstance(value, bytes | memoryview):
        return "bytes"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def format_timestamp(moment: datetime.datetime) -> str:
    """A timestamp in local time with its zone named, as every time is shown (naive ones
    are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return format_local_time(moment.timestamp())


HEX_VALUE_BYTES = 48


def format_amqp_scalar(value: Any, key: str | None = None) -> str:
    """One header/property value as masked text (tables and arrays: a count)."""
    if key is not None and is_cvv_key(key):
        return HIDDEN
    if key is not None and is_pan_key(key) and isinstance(value, str | int):
        return str(mask_pan_value(value))
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        data = mask_card_bytes(bytes(value))
        shown = data[:HEX_VALUE_BYTES].hex(" ")
        more = f" … ({len(data):,} bytes)" if len(data) > HEX_VALUE_BYTES else ""
        return (shown + more) if data else "(0 bytes)"
    if isinstance(value, datetime.datetime):
        return format_timestamp(value)
    if isinstance(value, dict):
        return f"{len(value)} field{'s' if len(value) != 1 else ''}"
    if isinstance(value, list | tuple):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, float):
        return repr(value)
    return mask_sensitive_text(str(value))
