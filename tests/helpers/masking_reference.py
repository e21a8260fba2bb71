"""The masking as it was before its fast paths: the reference the fast code must match.

A copy of the original, straightforward implementation of ``mask_text``,
``mask_sensitive_text``, ``mask_json`` and ``services.masking.message.mask_untrusted``
(three passes over the value), without any pre-check, cache or fused walk. The patterns
and the small pure helpers (Luhn, key names, what a match becomes, ``json_value``) are
shared with production: these functions are the reference for the *algorithm*, not for
the patterns.

Identifiers (``ids``, an ``IdTree`` of the profile's id paths): the rule that values at
those paths are masked as identifiers (``mask_id_value``) and not again as free text came
after the fast paths, so it is written here plainly too - a walk that carries the path
tree down both passes - for the one-walk ``mask_untrusted`` to be checked against.

Not a test module: imported by the tests that compare the fast code against it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from services.masking.json import (
    _CVV_ELEMENT,
    _CVV_LOOSE,
    _CVV_PAIR,
    _PAN_PAIR,
    _SEPARATED_DIGITS,
    HIDDEN,
    ID_LEAF,
    IdTree,
    JsonNumber,
    _hide_element,
    _hide_pair,
    _mask_digits,
    _mask_pan_pair,
    is_cvv_key,
    is_pan_key,
)
from services.masking.message import json_value
from services.masking.text import (
    _PAN_CANDIDATE,
    _mask_inner_pan,
    luhn_valid,
    mask_card_field_text,
    mask_pan,
)


def _mask_match(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"[ -]", "", text)
    if not luhn_valid(digits):
        return _mask_inner_pan(text)  # a card number between the candidate's separators
    return mask_pan(digits)


def mask_text(text: str) -> str:
    if len(text) < 13:
        return text
    return _PAN_CANDIDATE.sub(_mask_match, text)


def mask_sensitive_text(text: str) -> str:
    if not text:
        return text
    lowered = text.lower()
    if any(word in lowered for word in ("cv", "csc", "cav2", "verification", "security")):
        text = _CVV_PAIR.sub(_hide_pair, text)
        text = _CVV_ELEMENT.sub(_hide_element, text)
        text = _CVV_LOOSE.sub(lambda m: m.group("key") + HIDDEN, text)
    if any(word in lowered for word in ("pan", "num", "_no", "-no", "cardno")):
        text = _PAN_PAIR.sub(_mask_pan_pair, text)
    return mask_text(text)


def mask_pan_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, JsonNumber):
        return _mask_scalar(value)
    if isinstance(value, int):
        text = str(value)
        digits = text.lstrip("-")
        return _mask_digits(digits) if len(digits) >= 8 else value
    if isinstance(value, str):
        stripped = value.strip()
        if stripped and _SEPARATED_DIGITS.fullmatch(stripped):
            digits = stripped.replace(" ", "").replace("-", "")
            if len(digits) >= 8:
                return _mask_digits(digits)
        return mask_card_field_text(value)
    return _mask_scalar(value)


def _mask_scalar(value: Any) -> Any:
    if isinstance(value, JsonNumber):
        masked = mask_text(str.__str__(value))
        return value if masked == value else masked
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        text = str(value)
        masked = mask_text(text)
        return masked if masked != text else value
    return value


def _mask_identifier(text: str) -> str:
    if re.fullmatch(r"\S*[^\d\s-]\S*", text) is None:
        return mask_sensitive_text(text)  # digits alone: maybe a card number
    lowered = text.lower()
    if any(word in lowered for word in ("cv", "csc", "cav2", "verification", "security")):
        text = _CVV_PAIR.sub(_hide_pair, text)
        text = _CVV_ELEMENT.sub(_hide_element, text)
        text = _CVV_LOOSE.sub(lambda m: m.group("key") + HIDDEN, text)
    return text


def mask_id_value(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, JsonNumber):
        return _mask_identifier(value)
    if isinstance(value, bool) or not isinstance(value, int | JsonNumber):
        return _mask_scalar(value)
    text = str.__str__(value) if isinstance(value, JsonNumber) else str(value)
    return value if _mask_identifier(text) == text else _mask_identifier(text)


def _id_leaf(key: Any, item: Any, sub: IdTree | None) -> bool:
    if sub is None or ID_LEAF not in sub or isinstance(item, Mapping | list | tuple):
        return False
    return not (is_cvv_key(key) or is_pan_key(key))  # the card rules win


def _sub(ids: IdTree | None, key: Any) -> IdTree | None:
    return ids.get(key) if ids is not None and isinstance(key, str) else None


def mask_json(value: Any, ids: IdTree | None = None) -> Any:
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            shown_key = mask_text(key) if isinstance(key, str) else key
            if is_cvv_key(key):
                out[shown_key] = HIDDEN
            elif is_pan_key(key) and not isinstance(item, Mapping | list | tuple):
                out[shown_key] = mask_pan_value(item)
            elif _id_leaf(key, item, _sub(ids, key)):
                out[shown_key] = mask_id_value(item)
            else:
                out[shown_key] = mask_json(item, _sub(ids, key))
        return out
    if isinstance(value, list | tuple):
        return [mask_json(item, _sub(ids, str(i))) for i, item in enumerate(value)]
    return _mask_scalar(value)


def _masked_text_values(value: Any, ids: IdTree | None = None) -> Any:
    if isinstance(value, JsonNumber):
        return value
    if isinstance(value, str):
        return mask_sensitive_text(value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            shown = mask_sensitive_text(k) if isinstance(k, str) else k
            out[shown] = v if _id_leaf(k, v, _sub(ids, k)) else _masked_text_values(v, _sub(ids, k))
        return out
    if isinstance(value, list):
        return [_masked_text_values(v, _sub(ids, str(i))) for i, v in enumerate(value)]
    return value


def mask_untrusted(value: Any, ids: IdTree | None = None) -> Any:
    """The masking of a message-derived value, in its original three passes."""
    return _masked_text_values(mask_json(json_value(value), ids), ids)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types at every level (JsonNumber is not str, 1 is not True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            same(ka, kb) and same(a[ka], b[kb]) for ka, kb in zip(a, b, strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (a != a and b != b)  # NaN equals NaN here
