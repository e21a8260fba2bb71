"""Card data in what a message carries: headers, properties and parsed bodies, as JSON data.

A message-derived value is turned into JSON data (:func:`json_value`: bytes decoded or
described, Decimals and datetimes written out) and masked twice over: as a parsed
structure (:func:`~services.masking.json.mask_json`: CVV-like fields hidden, card-number
fields masked) and then every string and key as free text
(:func:`~services.masking.json.mask_sensitive_text`), since a header or a body field may
hold ``cvv=123`` in its text. :func:`mask_untrusted` does the three passes in one walk
over the common types and gives exactly their result (the fast-path tests check it against
the plain passes). The snapshot's JSONL export masks messages with it.

Given an :data:`~services.masking.json.IdTree` (the profile's id paths in a body,
:data:`~services.masking.json.ID_PROPERTIES` for properties), the values where
identifiers sit are masked as identifiers by the structure pass and left alone by the
text pass (a second pass would mask ``pay_4111111111111111`` as free text).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from services.masking.json import (
    CACHED_TEXT_LEN,
    CACHED_TEXTS,
    HIDDEN,
    ID_LEAF,
    SHORTEST_SENSITIVE,
    UNTRUSTED_UNCHANGED,
    IdTree,
    JsonNumber,
    has_key_word,
    is_cvv_key,
    is_id_leaf,
    is_pan_key,
    mask_id_value,
    mask_identifier,
    mask_json,
    mask_pan_value,
    mask_sensitive_text,
    mask_untrusted_text,
)
from services.masking.text import (
    MAX_PAN_DIGITS,
    MIN_PAN_DIGITS,
    luhn_valid,
    mask_text,
    may_hold_pan,
)


def json_value(value: Any) -> Any:
    """An AMQP field value as a JSON value (bytes that are not UTF-8: described, not copied)."""
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            # no hash: a short value (a card number and a stray byte) could be guessed from one
            return {"kind": "binary", "size": len(value)}
    if isinstance(value, Decimal):
        return JsonNumber(str(value)) if value.is_finite() else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _masked_text_values(value: Any, ids: IdTree | None = None) -> Any:
    if isinstance(value, JsonNumber):
        return value
    if isinstance(value, str):
        return mask_sensitive_text(value)
    if isinstance(value, Mapping):
        if not ids:
            return {
                (mask_sensitive_text(k) if isinstance(k, str) else k): _masked_text_values(v)
                for k, v in value.items()
            }
        out: dict[Any, Any] = {}
        for k, v in value.items():
            sub = ids.get(k) if isinstance(k, str) else None
            shown = mask_sensitive_text(k) if isinstance(k, str) else k
            # an identifier: masked as one by mask_json already
            out[shown] = v if is_id_leaf(k, v, sub) else _masked_text_values(v, sub)
        return out
    if isinstance(value, list):
        if ids:
            return [_masked_text_values(v, ids.get(str(i))) for i, v in enumerate(value)]
        return [_masked_text_values(v) for v in value]
    return value


def _three_passes(value: Any, ids: IdTree | None = None) -> Any:
    """What :func:`mask_untrusted` means: JSON data, masked as a structure, then as text."""
    return _masked_text_values(mask_json(json_value(value), ids), ids)


def mask_untrusted(value: Any, ids: IdTree | None = None) -> Any:
    """A message-derived value (headers, properties, a parsed body) as masked JSON data.

    By definition ``_masked_text_values(mask_json(json_value(value), ids), ids)``: card
    data masked as in a parsed structure (identifiers where ``ids`` says, as identifiers),
    then every other string and key masked as free text too. Done in one walk
    (:func:`_untrusted`) that gives the same result.
    """
    later: list[_Later] = []
    masked = _untrusted_ids(value, ids, later) if ids else _untrusted(value, later)
    _settle(later)
    return masked


_Later = tuple[dict[Any, Any], Any, str]
"""A text put in an output dict as it is, to mask there if it has anything to mask:
(the dict, its key, the text)."""


def _settle(later: list[_Later]) -> None:
    """Mask the texts :func:`_untrusted_dict` put off, in the dicts it made.

    Each is what ``mask_untrusted_text`` keeps as it is unless it is not ASCII, may hold a
    card number (13 digits, spaces and dashes dropped) or holds a CVV or card-number key
    word: the texts joined by NUL (none of those patterns spans a NUL, nor does
    ``lower``) are checked at once, and only when one fails is each masked. A message's
    free texts usually pass: one check for all of them instead of one call each.
    """
    if not later:
        return
    joined = "\0".join([text for _, _, text in later])
    if joined.isascii() and not may_hold_pan(joined) and not has_key_word(joined.lower()):
        return
    for out, key, text in later:
        out[key] = mask_untrusted_text(text)


def _untrusted_ids(value: Any, ids: IdTree, later: list[_Later] | None = None) -> Any:
    """:func:`_three_passes` of ``value`` with identifiers where ``ids`` says."""
    cls = type(value)
    if cls is dict:
        return _untrusted_dict(value, ids, later)
    if cls is list or cls is tuple:
        return [_descend(item, ids.get(str(i)), later) for i, item in enumerate(value)]
    if value is None or cls is str or cls is bool or cls is int:
        return _untrusted(value)  # a scalar that is not at an id path: no id to mind
    return _three_passes(value, ids)


def _descend(item: Any, sub: IdTree | None, later: list[_Later] | None = None) -> Any:
    return _untrusted(item, later) if not sub else _untrusted_ids(item, sub, later)


def _untrusted(value: Any, later: list[_Later] | None = None) -> Any:
    """:func:`_three_passes` of ``value``, the common types in one step each (``later``:
    where a dict's texts may be put off, see :func:`_settle`)."""
    cls = type(value)
    if cls is str:
        # json_value keeps it; mask_json gives mask_text(value), then mask_sensitive_text of that.
        return mask_untrusted_text(value)
    if cls is dict:
        return _untrusted_dict(value, None, later)
    if cls is list or cls is tuple:
        # json_value, mask_json and _masked_text_values all map a list item by item.
        return [_untrusted(item, later) for item in value]
    if value is None or cls is bool:
        return value  # kept by all three passes
    if cls is int:
        # mask_json masks the text of an int that is a card number, then the text is masked
        # as free text; any other int is kept. Its text is digits after an optional minus:
        # a card number only when all of them are, 13-19 Luhn-valid digits (a longer run
        # holds none: the pattern needs no digit beside a candidate).
        text = str(value)
        digits = len(text) - (value < 0)
        if digits < MIN_PAN_DIGITS or digits > MAX_PAN_DIGITS or not luhn_valid(text[-digits:]):
            return value
        masked = mask_text(text)
        return value if masked == text else mask_sensitive_text(masked)
    if cls is JsonNumber and len(value) < MIN_PAN_DIGITS:
        # Kept: mask_json masks a number's text only if it holds 13+ digits, and
        # _masked_text_values leaves JSON numbers alone.
        return value
    if cls is datetime.datetime or cls is datetime.date:
        # json_value writes it as isoformat(), a str the other two passes mask as text.
        return mask_untrusted_text(value.isoformat())
    # Anything else (floats, bytes, Decimals, subclasses, other mappings ...): the passes.
    return _three_passes(value)


_SHORT_INT_MIN: Final = -(10 ** (MIN_PAN_DIGITS - 2)) + 1
_SHORT_INT_MAX: Final = 10 ** (MIN_PAN_DIGITS - 1) - 1
"""The ints whose text is shorter than a card number (a minus sign counted): kept as they are."""

_OTHER_KEY: Final = 0
_CVV_KEY: Final = 1
_PAN_KEY: Final = 2


_key_kinds: dict[str, tuple[str, int]] = {}


def _key_kind(name: str) -> tuple[str, int]:
    """How mask_untrusted shows a key (mask_text, then mask_sensitive_text), and what it names.

    Remembered (a pure function of an immutable value; exact str only, as _untrusted_dict
    calls it) for short keys with nothing to mask: the cache never holds card data.
    """
    known = _key_kinds.get(name)
    if known is None:
        kind = _CVV_KEY if is_cvv_key(name) else _PAN_KEY if is_pan_key(name) else _OTHER_KEY
        known = (mask_untrusted_text(name), kind)
        if known[0] == name and len(name) <= CACHED_TEXT_LEN:
            if len(_key_kinds) >= CACHED_TEXTS:
                _key_kinds.clear()
            _key_kinds[name] = known
    return known


def _untrusted_dict(
    value: dict[Any, Any], ids: IdTree | None = None, later: list[_Later] | None = None
) -> Any:
    """:func:`_untrusted` of a dict: each key shown and its value masked as mask_json does
    (a text value put off to ``later`` when given, see :func:`_settle`)."""
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if type(key) is not str:  # not from JSON or AMQP (str keys only): the three passes
            return _three_passes(value, ids)
        shown, kind = _key_kinds.get(key) or _key_kind(key)
        sub = ids.get(key) if ids else None
        if sub is None and kind == _OTHER_KEY:
            # The common case, in line: what _untrusted gives for a plain value.
            cls = type(item)
            if cls is str:
                if len(item) < SHORTEST_SENSITIVE:
                    out[shown] = item
                elif later is not None:
                    out[shown] = item
                    later.append((out, shown, item))
                else:
                    keep = item in UNTRUSTED_UNCHANGED
                    out[shown] = item if keep else mask_untrusted_text(item)
            elif (
                item is None
                or cls is bool
                or (cls is int and _SHORT_INT_MIN <= item <= _SHORT_INT_MAX)
            ):
                out[shown] = item  # mask_text leaves a text of under 13 characters as it is
            elif cls is datetime.datetime and later is not None:
                # _untrusted masks its isoformat() as a text (10 characters at least): put off
                out[shown] = text = item.isoformat()
                later.append((out, shown, text))
            else:
                out[shown] = _untrusted(item, later)
        elif sub is not None and kind == _OTHER_KEY:
            # on an id path: an identifier, or a container the path goes into
            if type(item) is str and ID_LEAF in sub:  # what mask_id_value does with a str
                out[shown] = mask_identifier(item)
                continue
            plain = item if isinstance(item, dict | list | tuple) else json_value(item)
            out[shown] = (
                mask_id_value(plain) if is_id_leaf(key, plain, sub) else _descend(plain, sub, later)
            )
        elif kind == _CVV_KEY:
            out[shown] = HIDDEN  # mask_sensitive_text leaves HIDDEN as it is
        elif type(item) is str:
            # json_value keeps a str; mask_pan_value gives a plain str, masked again as text.
            out[shown] = mask_sensitive_text(mask_pan_value(item))
        elif isinstance(item, Mapping | list | tuple):
            # mask_json walks into containers under a PAN key
            out[shown] = _descend(item, sub, later)
        else:
            plain = json_value(item)
            if isinstance(plain, Mapping):  # undecodable bytes, described: mask_json walks it
                out[shown] = _descend(plain, sub)
            else:
                out[shown] = _masked_text_values(mask_pan_value(plain))
    if len(out) < len(value):
        # Two keys became one when masked: each pass keeps the first key's place and the
        # last value, which one walk does not reproduce - take the passes.
        return _three_passes(value, ids)
    return out
