"""What a requeue republishes, and the encoded properties the parker stores for it.

A requeue sends the parked message back unchanged but for its headers: the
broker's dead-letter headers (:data:`DROPPED_HEADERS`) are left out, the
``payops-deaths`` history is carried (:func:`~services.workbench.death_history.carried_headers`),
and ``payops-action`` and ``payops-action-id`` are added. All of that but the action id
is known when the message is parked, so the parking store keeps the requeue's
encoded properties in the entry's :data:`REQUEUE_FIELD` (:func:`requeue_template`):
a requeue then splices the action id in (:func:`requeue_properties`) instead of
decoding the stored record and encoding its properties again for every publish.
The bytes are those :func:`~services.workbench.codec.encode_message_properties`
writes for the same message, byte for byte; an entry without them (parked by an
earlier version, or carrying a ``user_id`` the publisher must check) is encoded
as before.

Template layout: version byte ``1``, the offset of the header table's length
(u32), the offset of the action id's value (u32, its ``S`` type octet), then
the encoded properties with a placeholder action id.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Final

from services.links.headers import ACTION_ID_HEADER
from services.workbench.codec import (
    DeathRecord,
    MessageRecord,
    encode_field_value,
    encode_message_properties,
    encode_properties,
    parse_x_death,
)
from services.workbench.death_history import (
    DEATHS_HEADER,
    HISTORY_HEADER,
    MAX_HOPS,
    carried_headers,
    earlier_deaths,
    republish_properties,
)
from services.workbench.wire import encode_over

ACTION_HEADER: Final = "payops-action"
"""The header naming the action a republished message comes from (``requeue``, ``retry``)."""

DROPPED_HEADERS: Final = frozenset(
    {
        "x-death",
        "x-delivery-count",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-first-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-last-death-exchange",
    }
)
"""Headers the broker wrote when it dead-lettered or redelivered the message:
left out when it is published again (every other header is kept)."""

REQUEUE_FIELD: Final = "rq"
"""The entry's hash field holding :func:`requeue_template` (absent or empty: none)."""

RUN_ID_LENGTH: Final = 16
"""Hex digits of a run id (``secrets.token_hex(8)``): the placeholder's width."""

_VERSION: Final = b"\x01"
_HEAD: Final = struct.Struct(">II")
_U32: Final = struct.Struct(">I")
_HEADERS_FLAG: Final = 0x2000
_SHORT_STRINGS_BEFORE_HEADERS: Final = (0x8000, 0x4000)  # content_type, content_encoding


def requeue_headers(
    record: MessageRecord, action: str, deaths: tuple[DeathRecord, ...] | None = None
) -> dict[str, object]:
    """The headers a requeue or retry of ``record`` starts from (before the action id):
    the record's without the dead-letter headers, the death history carried,
    ``payops-action`` set (``deaths``: its ``x-death`` parsed already)."""
    headers = {k: v for k, v in record.headers.items() if k not in DROPPED_HEADERS}
    headers.update(carried_headers(record.headers, deaths))
    headers[ACTION_HEADER] = action
    return headers


def requeue_template(
    record: MessageRecord, entry_id: str, deaths: tuple[DeathRecord, ...] | None = None
) -> bytes | None:
    """The encoded properties of ``record``'s requeue with a placeholder action id (see
    the module docstring); None when the message cannot take that path (a ``user_id``,
    which the publisher checks against its login, or properties that cannot be
    written; ``deaths``: its ``x-death`` parsed already)."""
    if record.properties.get("user_id") is not None:
        return None
    placeholder = "\x00" * RUN_ID_LENGTH + "." + entry_id
    try:
        if record.wire is not None:  # the history's bytes written directly (_carried_encoded)
            headers: dict[str, object] = {
                k: v for k, v in record.headers.items() if k not in DROPPED_HEADERS
            }
            headers.update(_carried_encoded(record.headers, deaths))
            headers[ACTION_HEADER] = "requeue"
            headers[ACTION_ID_HEADER] = placeholder
            encoded = encode_over(
                record.wire,
                republish_properties(record),
                headers,
                _one_property,
                _field_value,
                decoded=record.decoded,
            )
        else:
            headers = requeue_headers(record, "requeue", deaths)
            headers[ACTION_ID_HEADER] = placeholder
            encoded = encode_message_properties(
                republish_properties(record), headers, record.wire, record.decoded
            )
        slot = encode_field_value(placeholder)
    except (ValueError, TypeError):
        return None
    at = encoded.find(slot)
    table_at = _table_offset(encoded)
    if at < 0 or encoded.find(slot, at + 1) >= 0 or table_at is None or at < table_at:
        return None
    return _VERSION + _HEAD.pack(table_at, at) + encoded


class _Encoded:
    """A header value encoded already (never equal to a decoded one)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def _field_value(value: Any, where: str) -> bytes:
    return value.raw if type(value) is _Encoded else encode_field_value(value, where)


def _one_property(name: str, value: Any) -> bytes:
    return encode_properties({name: value}, None)[2:]


_U32_FIELD: Final = struct.Struct(">cI")


def _hop_encoded(death: DeathRecord) -> bytes:
    """``death_history._hop(death)`` as ``encode_field_value`` writes it (keys sorted)."""
    parts = [
        b"\x05count",
        encode_field_value(death.count),
        b"\x08exchange",
        encode_field_value(death.exchange),
        b"\x05queue",
        encode_field_value(death.queue),
        b"\x06reason",
        encode_field_value(death.reason),
        b"\x0crouting-keys",
        encode_field_value(list(death.routing_keys)),
    ]
    if death.time is not None:
        parts += (b"\x04time", encode_field_value(death.time))
    inner = b"".join(parts)
    return _U32_FIELD.pack(b"F", len(inner)) + inner


def _carried_encoded(
    headers: Mapping[str, Any], deaths: tuple[DeathRecord, ...] | None
) -> dict[str, Any]:
    """:func:`~services.workbench.death_history.carried_headers` with the history's value
    encoded here already, hop by hop, without building its tables first."""
    current = parse_x_death(headers) if deaths is None else deaths
    total = earlier_deaths(headers) + sum(d.count for d in current)
    if not total and not current:
        return {}
    parts = [_hop_encoded(d) for d in current[:MAX_HOPS]]
    history = headers.get(HISTORY_HEADER)
    if isinstance(history, list) and len(parts) < MAX_HOPS:
        earlier = [h for h in history if isinstance(h, Mapping)][: MAX_HOPS - len(parts)]
        parts += [encode_field_value(h) for h in earlier]
    inner = b"".join(parts)
    return {
        DEATHS_HEADER: total,
        HISTORY_HEADER: _Encoded(_U32_FIELD.pack(b"A", len(inner)) + inner),
    }


def requeue_properties(template: bytes, action_id: str) -> bytes | None:
    """The encoded properties of a requeue with ``action_id``, from a stored
    :func:`requeue_template` (None when it is not one)."""
    if len(template) < 1 + _HEAD.size or template[:1] != _VERSION:
        return None
    table_at, at = _HEAD.unpack_from(template, 1)
    encoded = memoryview(template)[1 + _HEAD.size :]
    if at + 5 > len(encoded) or encoded[at] != ord("S"):
        return None
    (old,) = _U32.unpack_from(encoded, at + 1)
    value = action_id.encode("utf-8")
    out = bytearray(encoded[:at])
    out += b"S"
    out += _U32.pack(len(value))
    out += value
    out += encoded[at + 5 + old :]
    if len(value) != old:
        (table,) = _U32.unpack_from(out, table_at)
        _U32.pack_into(out, table_at, table + len(value) - old)
    return bytes(out)


def _table_offset(encoded: bytes) -> int | None:
    """Where the header table's length is in encoded properties (None: no headers)."""
    if len(encoded) < 2:
        return None
    (flags,) = struct.unpack_from(">H", encoded)
    if not flags & _HEADERS_FLAG:
        return None
    at = 2
    for bit in _SHORT_STRINGS_BEFORE_HEADERS:
        if flags & bit:
            if at >= len(encoded):
                return None
            at += 1 + encoded[at]
    return at


__all__ = [
    "ACTION_HEADER",
    "DROPPED_HEADERS",
    "REQUEUE_FIELD",
    "requeue_headers",
    "requeue_properties",
    "requeue_template",
]
