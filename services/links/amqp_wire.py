"""The properties of a content header frame, read straight from its bytes, never raising.

Both consumers that read deliveries off the wire themselves
(:mod:`services.links.pika_frames`: the parker and the tap) decode the raw
property bytes of the content header (its flags and property list, AMQP 0-9-1
4.2.6.1) here. A header key or short string that is not UTF-8, a timestamp no
``datetime`` holds, an unknown field type or a truncated table is read as far
as it goes and kept as raw bytes (``bytes`` values, keys with ``\\xNN``
escapes), so one odd message is handled like any other instead of closing the
connection.

:func:`decode_properties` keeps every field's bytes too (the parker writes
them back byte for byte, :mod:`services.workbench.wire`); :func:`read_basic`
is the tap's lean read: the headers, the message id and the timestamp as sent.
Decoded values have pamqp's Python types, except that a timestamp beyond
``datetime``'s range stays the integer that was sent. This module imports no
AMQP client.
"""

from __future__ import annotations

import datetime
import decimal
import struct
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

PROPERTY_FLAGS: Final[tuple[tuple[str, int], ...]] = (
    ("content_type", 0x8000),
    ("content_encoding", 0x4000),
    ("headers", 0x2000),
    ("delivery_mode", 0x1000),
    ("priority", 0x0800),
    ("correlation_id", 0x0400),
    ("reply_to", 0x0200),
    ("expiration", 0x0100),
    ("message_id", 0x0080),
    ("timestamp", 0x0040),
    ("type", 0x0020),
    ("user_id", 0x0010),
    ("app_id", 0x0008),
    ("cluster_id", 0x0004),
)
"""Basic properties in wire order with their flag bits (``headers`` included)."""

_OCTETS: Final = frozenset({"delivery_mode", "priority"})

_FIXED: Final[dict[bytes, struct.Struct]] = {
    b"b": struct.Struct(">b"),
    b"B": struct.Struct(">B"),
    b"s": struct.Struct(">h"),
    b"u": struct.Struct(">H"),
    b"I": struct.Struct(">i"),
    b"i": struct.Struct(">I"),
    b"l": struct.Struct(">q"),
    b"L": struct.Struct(">q"),  # pamqp reads 'L' signed too; the bytes are kept either way
    b"f": struct.Struct(">f"),
    b"d": struct.Struct(">d"),
}
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class WireError(ValueError):
    """Bytes that are not a content header's properties (where decoding stopped)."""


class WireField(NamedTuple):
    """One entry of a field table: its key as text, its value, and its bytes.

    ``raw`` is the key (short string) and the typed value exactly as they
    came. ``key`` is None for the undecodable rest of a table, kept whole.
    """

    key: str | None
    value: Any
    raw: bytes


@dataclass(frozen=True, slots=True)
class WireProperties:
    """The decoded properties of one content header and the bytes they came from.

    ``properties`` holds the set basic properties (headers aside) by AMQP
    name, ``headers`` the header table (None when the flag is not set),
    ``error`` where decoding stopped, if it did (the rest is kept in
    ``raw``).
    """

    raw: bytes
    properties: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] | None = None
    header_fields: tuple[WireField, ...] = ()
    property_bytes: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None


# --------------------------------------------------------------------------- decoding


def text_of(raw: bytes) -> str | bytes:
    """A short or long string: text when it is UTF-8, else the bytes themselves."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def key_of(raw: bytes) -> str:
    """A field-table key as text; bytes that are not UTF-8 read as ``\\xNN`` escapes."""
    return raw.decode("utf-8", "backslashreplace")


def _timestamp(seconds: int) -> datetime.datetime | int:
    if seconds > 0xFFFFFFFF:  # milliseconds, most likely: keep the number that was sent
        return seconds
    try:
        return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return seconds


def _take(data: bytes, at: int, size: int) -> int:
    end = at + size
    if end > len(data):
        raise WireError(f"truncated at byte {at} (needs {size} more)")
    return end


_FIXED_BY_OCTET: Final[dict[int, struct.Struct]] = {tag[0]: fixed for tag, fixed in _FIXED.items()}
_S, _X, _A, _F, _T = b"SxAFT"
_SIZED: Final = frozenset(b"SxAF")
_VOID: Final = frozenset(b"V\x00")


def _value(data: bytes, at: int) -> tuple[Any, int]:
    """One typed value at ``at``: (value, offset after it). Bounds are checked inline
    (:func:`_take` only words the error)."""
    size_all = len(data)
    if at >= size_all:
        _take(data, at, 1)
    tag = data[at]
    at += 1
    if tag in _SIZED:
        end = at + 4
        if end > size_all:
            _take(data, at, 4)
        stop = end + _U32.unpack_from(data, at)[0]
        if stop > size_all:
            _take(data, end, stop - end)
        raw = data[end:stop]
        if tag == _S:
            try:
                return raw.decode("utf-8"), stop
            except UnicodeDecodeError:
                return raw, stop
        if tag == _F:
            return _table_dict(raw), stop
        if tag == _X:
            return bytearray(raw), stop
        items: list[Any] = []
        offset = 0
        while offset < len(raw):
            item, offset = _value(raw, offset)
            items.append(item)
        return items, stop
    fixed = _FIXED_BY_OCTET.get(tag)
    if fixed is not None:
        end = at + fixed.size
        if end > size_all:
            _take(data, at, fixed.size)
        return fixed.unpack_from(data, at)[0], end
    if tag == _T:
        end = _take(data, at, 8)
        return _timestamp(_U64.unpack_from(data, at)[0]), end
    if tag == 0x74:  # t
        end = _take(data, at, 1)
        return bool(data[at]), end
    if tag == 0x44:  # D
        end = _take(data, at, 5)
        scale, mantissa = data[at], _U32.unpack_from(data, at + 1)[0]
        return decimal.Decimal(mantissa).scaleb(-scale), end
    if tag in _VOID:  # V, or a zero octet
        return None, at
    raise WireError(f"unknown field type {bytes((tag,))!r}")


_DECODE_ERRORS: Final = (WireError, struct.error, decimal.InvalidOperation, IndexError)


def _table_dict(raw: bytes) -> dict[str, Any]:
    """A nested field table's content as a dict (what ``_fields(raw)`` holds, without
    its :class:`WireField` objects); raises :class:`WireError` where it stops."""
    out: dict[str, Any] = {}
    at = 0
    size = len(raw)
    try:
        while at < size:
            key_end = at + 1 + raw[at]
            if key_end > size:
                _take(raw, at + 1, raw[at])
            key = raw[at + 1 : key_end]
            value, at = _value(raw, key_end)
            out[key_of(key)] = value
    except _DECODE_ERRORS as exc:
        raise WireError(str(exc)) from None
    return out


def _fields(raw: bytes, strict: bool = True) -> list[WireField]:
    """The entries of a field table's content (without its length)."""
    out: list[WireField] = []
    at = 0
    while at < len(raw):
        start = at
        try:
            end = _take(raw, at, 1)
            key_end = _take(raw, end, raw[at])
            value, at = _value(raw, key_end)
        except _DECODE_ERRORS as exc:
            if strict:
                raise WireError(str(exc)) from None
            out.append(WireField(None, None, raw[start:]))
            break
        out.append(WireField(key_of(raw[end:key_end]), value, raw[start:at]))
    return out


def decode_properties(raw: bytes) -> WireProperties:
    """The properties of a content header (flags first, as after ``body_size``); never
    raises: what cannot be read is reported in ``error`` and kept in ``raw``."""
    properties: dict[str, Any] = {}
    property_bytes: dict[str, bytes] = {}
    headers: dict[str, Any] | None = None
    header_fields: tuple[WireField, ...] = ()
    error: str | None = None
    if len(raw) < 2:
        return WireProperties(raw, error="no property flags" if raw else None)
    flags = int.from_bytes(raw[:2], "big")
    at = 2
    for name, bit in PROPERTY_FLAGS:
        if not flags & bit:
            continue
        start = at
        try:
            if name == "headers":
                end = _take(raw, at, 4)
                at = _take(raw, end, _U32.unpack_from(raw, at)[0])
                header_fields = tuple(_fields(raw[end:at], strict=False))
                headers = {f.key: f.value for f in header_fields if f.key is not None}
                if header_fields and header_fields[-1].key is None:
                    error = "headers: a value of an unknown type or a truncated table"
            elif name in _OCTETS:
                at = _take(raw, at, 1)
                properties[name] = raw[start]
            elif name == "timestamp":
                at = _take(raw, at, 8)
                properties[name] = _timestamp(_U64.unpack_from(raw, start)[0])
            else:
                end = _take(raw, at, 1)
                at = _take(raw, end, raw[start])
                properties[name] = text_of(raw[end:at])
        except WireError as exc:
            error = f"{name}: {exc}"
            break
        property_bytes[name] = raw[start:at]
    return WireProperties(raw, properties, headers, header_fields, property_bytes, error)


_SKIPPED_STRINGS: Final = (0x0400, 0x0200, 0x0100)  # correlation_id, reply_to, expiration
_READ_ERRORS: Final = (WireError, struct.error, IndexError)


def read_basic(raw: bytes) -> tuple[dict[str, Any] | None, str | bytes | None, int | None]:
    """(headers, message id, timestamp as sent, epoch seconds) of raw properties.

    What the tap needs, read without keeping any field's bytes; never raises:
    a header table is read as far as it goes (:func:`decode_properties`'s
    rules), a property that cannot be read is None, as are the ones after it.
    """
    size = len(raw)
    if size < 2:
        return None, None, None
    flags = raw[0] << 8 | raw[1]
    headers: dict[str, Any] | None = None
    message_id: str | bytes | None = None
    timestamp: int | None = None
    at = 2
    try:
        if flags & 0x8000:  # content_type
            at += 1 + raw[at]
        if flags & 0x4000:  # content_encoding
            at += 1 + raw[at]
        if flags & 0x2000:
            start = at + 4
            at = start + _U32.unpack_from(raw, at)[0]
            if at > size:
                raise WireError("truncated header table")
            table = raw[start:at]
            try:
                headers = _table_dict(table)
            except WireError:
                headers = {f.key: f.value for f in _fields(table, strict=False) if f.key}
        if flags & 0x1000:  # delivery_mode
            at += 1
        if flags & 0x0800:  # priority
            at += 1
        for bit in _SKIPPED_STRINGS:
            if flags & bit:
                at += 1 + raw[at]
        if flags & 0x0080:
            end = at + 1 + raw[at]
            if end > size:
                raise WireError("truncated message id")
            message_id = text_of(raw[at + 1 : end])
            at = end
        if flags & 0x0040:
            timestamp = _U64.unpack_from(raw, at)[0]
    except _READ_ERRORS:
        pass
    return headers, message_id, timestamp
