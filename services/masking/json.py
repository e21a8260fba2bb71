"""Card data in structured values and text: card numbers masked, CVV-like fields hidden.

:func:`services.masking.text.mask_text` finds Luhn-valid card numbers in free
text. Structured data knows more: a field named ``cvv`` is secret whatever
it holds, and a field named ``pan`` or ``card_number`` is a card number even
when it fails the Luhn check (a test card, a typo). This module applies both:

- :func:`mask_json` walks a JSON-like value (dicts, lists, scalars, to any
  depth): values under CVV-like keys become :data:`HIDDEN` whatever they are,
  values under card-number keys are masked to the first 6 and last 4 digits
  at most, and every other string (and dict key, and number) goes through
  ``mask_text``.
- :func:`mask_sensitive_text` does what it can for text that is not a parsed
  structure (a text body, a JSON body cut short, a header string): the same
  keys written as ``"cvv": "123"``, ``cvv=123``, ``cvv: 123`` or
  ``<cvv>123</cvv>``, then ``mask_text``. :func:`mask_untrusted_text` is
  ``mask_text`` then ``mask_sensitive_text`` in one call. Both skip texts too short
  to mask and remember short texts they leave unchanged (never card data).
  :mod:`services.masking.message` builds on them for the headers, properties and
  parsed bodies of messages.
- :func:`mask_for_edit` / :func:`unmask_edit` let an operator edit a JSON body
  without seeing its card data: the editor shows the masked document, each
  masked value being a unique placeholder, and the placeholders left in the
  edited text are put back to the original values.

Identifiers are not card numbers. What a value is decides how it is masked, not how
many digits it holds:

- under a CVV-like key: hidden, whatever it is (:data:`HIDDEN`);
- under a card-number key: masked, Luhn or not (:func:`mask_pan_value`);
- an identifier - a value at one of the profile's id field paths
  (``FieldPaths.id_paths``: ``fields.payment_id``) in a parsed body, or the
  ``message_id`` / ``correlation_id`` property (:data:`ID_PROPERTIES`): a token with
  no whitespace and some character other than digits and dashes
  (``pay_17d5570756950439``, ``ord-4111111111111111``) is shown in full, since the
  digits in it are part of a name, not a card (CVV-like pairs in it, ``cvv=123``, are
  still hidden). An identifier that is nothing but digits, spaces and dashes
  (``4111111111111111``, ``4111 1111 1111 1111``) cannot be told from a card number,
  and is masked as free text: a numeric order id of 13-19 digits that passes Luhn is
  shown masked, rather than ever letting a real card number through
  (:func:`mask_identifier`, :func:`mask_id_value`);
- everything else - other JSON values (``"note": "4111111111111111"``), keys, headers,
  free text: every Luhn-valid run of 13-19 digits that stands on its own (no letter or
  digit beside it: not inside a hex trace id or a uuid without dashes) is masked, and
  CVV-like text hidden.

:func:`mask_json` and :func:`services.masking.message.mask_untrusted` take the id
paths as an :data:`IdTree` (:func:`id_tree`). Nothing else (the byte-for-byte hex dump
of a body, logs) knows the roles of values: there every card-number-like run is masked.

Pure and Qt-free: the GUI, the CLI and the snapshot writer share it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache, wraps
from typing import Any, Final

from services.masking.json_text import JsonNumber, dumps_compact, dumps_pretty, loads_exact
from services.masking.text import luhn_valid, mask_card_field_text, mask_pan, mask_text

HIDDEN = "•••"
"""What a CVV-like field shows instead of its value."""

_CVV_PARTS = ("cvv", "cvc", "cardverification", "securitycode")
_CVV_EXACT = frozenset({"cvn", "csc", "cvd", "cav2", "cvv2", "cvc2"})
_PAN_EXACT = frozenset(
    {
        "number",
        "pan",
        "cardnumber",
        "cardno",
        "cardnum",
        "primaryaccountnumber",
        "accountnumber",
    }
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_SEPARATED_DIGITS = re.compile(r"\d(?:[ -]?\d)*")


@lru_cache(maxsize=4096)
def _words(key: str) -> tuple[str, ...]:
    return tuple(w for w in _NON_ALNUM.split(_CAMEL.sub("_", key).lower()) if w)


@lru_cache(maxsize=4096)
def is_cvv_key(key: object) -> bool:
    """Whether a field of this name holds a card verification code (hidden entirely).

    Case-insensitive, any spelling: ``cvv``, ``CVC2``, ``card_verification``,
    ``securityCode``, ``card.cvv``, ``cvc_check`` ...
    """
    if not isinstance(key, str):
        return False
    joined = "".join(_words(key))
    return joined in _CVV_EXACT or any(part in joined for part in _CVV_PARTS)


@lru_cache(maxsize=4096)
def is_pan_key(key: object) -> bool:
    """Whether a field of this name holds a card number (``pan``, ``card_number`` ...)."""
    if not isinstance(key, str):
        return False
    words = _words(key)
    joined = "".join(words)
    if joined in _PAN_EXACT or "pan" in words:
        return True
    return joined.endswith(("cardnumber", "cardno", "cardnum"))


def _mask_digits(digits: str) -> str:
    if len(digits) >= 13:
        return mask_pan(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_pan_value(value: Any) -> Any:
    """A value found under a card-number key, masked whether or not it passes Luhn.

    Digit strings (spaces and dashes allowed) and integers of 8 digits or more
    keep at most their first 6 (13 digits and up) and last 4 digits; anything
    else is masked as free text. Masked numbers become strings.
    """
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


def mask_json(value: Any, ids: IdTree | None = None) -> Any:
    """A copy of a JSON-like value with its card data masked (see the module docs).

    Dicts and lists (and tuples, as lists) are copied to any depth; values of
    other types (bytes, datetimes, ...) are returned unchanged. The input is
    not modified. ``ids`` (:func:`id_tree`) says where identifiers sit: those
    are masked as identifiers (:func:`mask_id_value`).
    """
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            shown_key = mask_text(key) if isinstance(key, str) else key
            sub = ids.get(key) if ids and isinstance(key, str) else None
            if is_cvv_key(key):
                out[shown_key] = HIDDEN
            elif is_pan_key(key) and not isinstance(item, Mapping | list | tuple):
                out[shown_key] = mask_pan_value(item)
            elif is_id_leaf(key, item, sub):
                out[shown_key] = mask_id_value(item)
            else:
                out[shown_key] = mask_json(item, sub)
        return out
    if isinstance(value, list | tuple):
        if ids:
            return [mask_json(item, ids.get(str(i))) for i, item in enumerate(value)]
        return [mask_json(item) for item in value]
    return _mask_scalar(value)


# --------------------------------------------------------------------------- identifiers

IdTree = Mapping[str, "IdTree"]
"""Dotted id paths as a tree of path segments; :data:`ID_LEAF` in a node: an id sits there."""

ID_LEAF = "\0id"
"""The key that marks the end of an id path in an :data:`IdTree` (no JSON field is named so)."""


@lru_cache(maxsize=64)
def _id_tree(paths: tuple[str, ...]) -> IdTree:
    root: dict[str, Any] = {}
    for path in paths:
        if not path:
            continue  # the whole body is no identifier
        node = root
        for segment in path.split("."):  # as services.json_paths reads a path
            node = node.setdefault(segment, {})
        node[ID_LEAF] = {}
    return root


def id_tree(paths: Iterable[str]) -> IdTree:
    """Where identifiers sit in a parsed value, from dotted paths as the profile's ``[fields]``
    write them (``"payment_id"``, ``"payment.id"``, ``"items.0.id"``: a segment of digits
    also indexes a list)."""
    return _id_tree(tuple(paths))


ID_PROPERTIES: IdTree = id_tree(("message_id", "correlation_id"))
"""The AMQP properties that are identifiers."""


def is_id_leaf(key: object, item: Any, sub: IdTree | None) -> bool:
    """Whether ``item``, under ``key`` with id subtree ``sub``, is an identifier to show as one.

    Not under a CVV-like or card-number key (those rules win), and not a table or a list.
    """
    return (
        sub is not None
        and ID_LEAF in sub
        and not isinstance(item, Mapping | list | tuple)
        and not is_cvv_key(key)
        and not is_pan_key(key)
    )


_ID_TOKEN = re.compile(r"\S*[^\d\s\-]\S*")


def is_id_token(text: str) -> bool:
    """An identifier that names something (``pay_4111111111111111``): no whitespace, and
    something other than digits and dashes in it."""
    return _ID_TOKEN.fullmatch(text) is not None


def mask_identifier(text: str) -> str:
    """An identifier as shown (see the module docs): a token in full, CVV-like pairs in it
    hidden; digits alone (a card number cannot be ruled out) masked as free text."""
    if not is_id_token(text):
        return mask_sensitive_text(text)
    if _has_cvv_word(text.lower()):
        return _hide_cvv(text)
    return text


def mask_optional_identifier(text: str | None) -> str:
    """:func:`mask_identifier` of an id that may be missing (``""`` for None or empty)."""
    return mask_identifier(text) if text else ""


def mask_id_value(value: Any) -> Any:
    """A JSON scalar that is an identifier, masked as one (numbers by their text)."""
    if isinstance(value, JsonNumber):
        text = str.__str__(value)
    elif isinstance(value, str):
        return mask_identifier(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        return _mask_scalar(value)
    masked = mask_identifier(text)
    return value if masked == text else masked


# --------------------------------------------------------------------------- text

_CVV_WORD = r"(?:cvv2?|cvc2?|cvn|csc|cvd|cav2|card[_\-\s]?verification|security[_\-\s]?code)"
_VALUE = r"""(?:"(?:\\.|[^"\\])*"?|'[^'\n]*'?|[^\s,;&<>{}\[\]"']+)"""
_CVV_PAIR = re.compile(
    rf"""(?P<key>{_CVV_WORD}[\w.\-]*["']?)(?P<sep>\s*[:=]\s*)(?P<value>{_VALUE})""",
    re.IGNORECASE,
)
_CVV_LOOSE = re.compile(
    rf"(?P<key>{_CVV_WORD}[\w.\-]*\s+(?:(?:is|was|of|code)\s+)?)(?P<value>\d{{3,4}})(?!\d)",
    re.IGNORECASE,
)
_CVV_ELEMENT = re.compile(
    rf"(?P<open><[\w.\-]*?{_CVV_WORD}[\w.\-]*(?:\s[^<>]*)?>)(?P<value>[^<]*)",
    re.IGNORECASE,
)
_PAN_KEY = (
    r"(?:(?<![a-z0-9])pan|card[_\-]?(?:number|num|no)|(?<![\w-])number"
    r"|(?<![\w-])(?:primary[_\-]?)?account[_\-]?number)"
)
_PAN_PAIR = re.compile(
    rf"""(?P<key>{_PAN_KEY}["']?(?:\s*[:=]\s*|>)["']?)(?P<digits>\d(?:[ -]?\d){{7,22}})(?!\d)""",
    re.IGNORECASE,
)


def _hide_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in {'"', "'"} else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{HIDDEN}{quote}"


def _hide_element(match: re.Match[str]) -> str:
    return match.group("open") + (HIDDEN if match.group("value") else "")


def _hide_loose(match: re.Match[str]) -> str:
    return match.group("key") + HIDDEN


def _hide_cvv(text: str) -> str:
    """``text`` with CVV-like pairs, elements and ``cvv 123`` phrases hidden."""
    text = _CVV_PAIR.sub(_hide_pair, text)
    text = _CVV_ELEMENT.sub(_hide_element, text)
    return _CVV_LOOSE.sub(_hide_loose, text)


def _mask_pan_pair(match: re.Match[str]) -> str:
    digits = match.group("digits").replace(" ", "").replace("-", "")
    return match.group("key") + _mask_digits(digits)


SHORTEST_SENSITIVE = 5
"""No text shorter than this (``cvv=1``) has anything for :func:`mask_sensitive_text` to change:
a CVV pair needs 5 characters, a CVV element 6, ``cvv 123`` 7, a card-number pair 12 and a
card number 13."""

CACHED_TEXT_LEN = 64
"""Texts up to this long are masked once and remembered (``CACHED_TEXTS`` of them at most)."""
CACHED_TEXTS = 2048

_UNCHANGED_TEXTS: dict[str, set[str]] = {}
"""The texts each fast-path masking function left unchanged, by its name."""


def _with_fast_paths(mask: Callable[[str], str]) -> Callable[[str], str]:
    """``mask`` with two shortcuts for plain ``str`` texts; anything else goes to ``mask``.

    - shorter than ``SHORTEST_SENSITIVE``: returned as it is (no pattern can match);
    - a short text seen before that ``mask`` left unchanged (header names, queues,
      merchants ...): returned as it is. Safe: the masking functions are pure functions
      of an immutable value. Only unchanged texts are remembered (a set, not an
      ``lru_cache``, which would keep every result), so this never holds card data; at
      most ``CACHED_TEXTS``, all dropped when full (the texts that repeat come back at once).

    A str subclass skips both: ``mask`` may return a plain copy of it, and so must we.
    """
    unchanged: set[str] = set()
    _UNCHANGED_TEXTS[mask.__name__] = unchanged

    @wraps(mask)
    def masked(text: str) -> str:
        if type(text) is not str:
            return mask(text)  # no shortcut: the result's type must be mask's
        if len(text) < SHORTEST_SENSITIVE or text in unchanged:
            return text  # too short for any pattern, or known to have nothing to mask
        result = mask(text)
        if result == text and len(text) <= CACHED_TEXT_LEN:  # never remember card data
            if len(unchanged) >= CACHED_TEXTS:
                unchanged.clear()
            unchanged.add(text)
        return result

    return masked


def has_key_word(lowered: str) -> bool:
    """Whether lowered text holds a word :func:`mask_sensitive_text` acts on (CVV or PAN)."""
    return _has_cvv_word(lowered) or _has_pan_word(lowered)


def _has_cvv_word(lowered: str) -> bool:
    """Whether lowered text names a CVV-like field; without one, the CVV patterns cannot match.

    ``any(word in lowered for word in ...)`` written out: no generator per call.
    """
    return (
        "cv" in lowered
        or "csc" in lowered
        or "cav2" in lowered
        or "verification" in lowered
        or "security" in lowered
    )


def _has_pan_word(lowered: str) -> bool:
    """Whether lowered text may name a card-number field (``_PAN_PAIR`` needs one of these)."""
    return (
        "pan" in lowered
        or "num" in lowered
        or "_no" in lowered
        or "-no" in lowered
        or "cardno" in lowered
    )


@_with_fast_paths
def mask_sensitive_text(text: str) -> str:
    """Free text with CVV-like values hidden and card numbers masked.

    Catches ``"cvv": "123"``, ``cvv=123``, ``cvv: 123``, ``<cvv>123</cvv>``,
    ``cvv 123`` (any CVV-like key name, any case), digit runs after card-number keys
    (``"pan": "4000..."``, ``card_number=...``) whether or not they pass the
    Luhn check, and every Luhn-valid card number anywhere.
    """
    if not text:
        return text
    return _mask_sensitive(text, text.lower())


def _mask_sensitive(text: str, lowered: str) -> str:
    """What :func:`mask_sensitive_text` does to ``text``, given ``text.lower()``."""
    if _has_cvv_word(lowered):
        text = _hide_cvv(text)
    if _has_pan_word(lowered):
        text = _PAN_PAIR.sub(_mask_pan_pair, text)
    return mask_text(text)


@_with_fast_paths
def mask_untrusted_text(text: str) -> str:
    """``mask_sensitive_text(mask_text(text))``, in one go.

    What :func:`mask_json` and then :func:`mask_sensitive_text` make of a string of a
    message (a value or a key): the snapshot's masking of message-derived data.
    """
    masked = mask_text(text)
    lowered = text.lower()
    if not has_key_word(lowered):
        # mask_sensitive_text(masked) would only run mask_text again: no key word in text,
        # and mask_text brings none in (it rewrites a run of digits, spaces and dashes
        # starting with a digit as digits and '*': "cav2" would have to be in text already).
        return masked if masked is text else mask_text(masked)
    return _mask_sensitive(masked, lowered if masked is text else masked.lower())


UNTRUSTED_UNCHANGED: Final[set[str]] = _UNCHANGED_TEXTS["mask_untrusted_text"]
"""The texts :func:`mask_untrusted_text` returns as they are, besides those shorter than
:data:`SHORTEST_SENSITIVE`: a caller that masks many values may look here first (the
same shortcut, without the call)."""


def mask_optional_text(text: str | None) -> str:
    """:func:`mask_sensitive_text` of a text that may be missing (``""`` for None or empty)."""
    return mask_sensitive_text(text) if text else ""


# --------------------------------------------------------------------------- editing


@dataclass(frozen=True, slots=True)
class MaskedDocument:
    """A JSON document to edit without seeing its card data.

    ``text`` is the masked document, pretty-printed; ``originals`` maps each
    placeholder string in it (a masked value, made unique) to the original
    value it stands for.
    """

    text: str
    originals: Mapping[str, Any] = field(default_factory=dict)
    value: Any = None


class _Placeholders:
    def __init__(self) -> None:
        self.originals: dict[str, Any] = {}
        self._by_original: dict[str, str] = {}

    def take(self, masked: str, original: Any) -> str:
        kind = "n" if isinstance(original, JsonNumber) else type(original).__name__
        fingerprint = masked + "\0" + kind + json.dumps(original, sort_keys=True, default=str)
        known = self._by_original.get(fingerprint)
        if known is not None:
            return known
        candidate, n = masked, 1
        while candidate in self.originals:
            n += 1
            candidate = f"{masked} #{n}"
        self.originals[candidate] = original
        self._by_original[fingerprint] = candidate
        return candidate


def _mask_for_edit(value: Any, holders: _Placeholders) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            shown_key = key
            masked_key = mask_untrusted_text(key)
            if masked_key != key:
                shown_key = holders.take(masked_key, key)
            if is_cvv_key(key):
                out[shown_key] = holders.take(HIDDEN, item)
            elif is_pan_key(key) and not isinstance(item, Mapping | list):
                out[shown_key] = _placeholder(mask_pan_value(item), item, holders)
            else:
                out[shown_key] = _mask_for_edit(item, holders)
        return out
    if isinstance(value, list):
        return [_mask_for_edit(item, holders) for item in value]
    if type(value) is str:  # free text: "cvv 123" in it is hidden too
        return _placeholder(mask_untrusted_text(value), value, holders)
    return _placeholder(_mask_scalar(value), value, holders)


def _placeholder(masked: Any, original: Any, holders: _Placeholders) -> Any:
    if isinstance(original, JsonNumber):
        same = isinstance(masked, str) and str.__str__(masked) == str.__str__(original)
    else:
        same = type(masked) is type(original) and masked == original
    return original if same else holders.take(str(masked), original)


def mask_for_edit(body: bytes | str) -> MaskedDocument:
    """The masked, editable form of a JSON body (raises ``ValueError`` if it is not JSON)."""
    value = loads_exact(body)
    holders = _Placeholders()
    masked = _mask_for_edit(value, holders)
    return MaskedDocument(text=dumps_pretty(masked), originals=dict(holders.originals), value=value)


def _restore(value: Any, originals: Mapping[str, Any]) -> Any:
    if isinstance(value, JsonNumber):
        return value
    if isinstance(value, str):
        return originals.get(value, value)
    if isinstance(value, dict):
        return {_restore_key(k, originals): _restore(v, originals) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(item, originals) for item in value]
    return value


def _restore_key(key: str, originals: Mapping[str, Any]) -> str:
    original = originals.get(key, key)
    return original if isinstance(original, str) else key


def unmask_edit(edited: str, document: MaskedDocument) -> Any:
    """The edited document with every placeholder put back to its original value.

    Raises ``json.JSONDecodeError`` when ``edited`` is not valid JSON.
    """
    return _restore(loads_exact(edited), document.originals)


def leftover_masks(value: Any, document: MaskedDocument) -> list[str]:
    """Masked-looking strings in an edited document that are not placeholders.

    An operator who changed a masked value (``411111******1111`` to
    ``411111******1112``) would save the asterisks; the editor warns about these.
    """
    found: list[str] = []
    _find_masks(value, document.originals, found)
    return found


_MASKED_LOOK = re.compile(r"\d{0,6}\*{2,}\d{4}|•••")


def _find_masks(value: Any, originals: Mapping[str, Any], found: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _find_masks(key, originals, found)
            _find_masks(item, originals, found)
    elif isinstance(value, list):
        for item in value:
            _find_masks(item, originals, found)
    elif (
        isinstance(value, str)
        and not isinstance(value, JsonNumber)
        and value not in originals
        and _MASKED_LOOK.search(value)
    ):
        found.append(value)


__all__ = [
    "HIDDEN",
    "ID_PROPERTIES",
    "IdTree",
    "JsonNumber",
    "MaskedDocument",
    "dumps_compact",
    "dumps_pretty",
    "id_tree",
    "is_cvv_key",
    "is_id_token",
    "is_pan_key",
    "leftover_masks",
    "loads_exact",
    "luhn_valid",
    "mask_for_edit",
    "mask_id_value",
    "mask_identifier",
    "mask_json",
    "mask_optional_identifier",
    "mask_optional_text",
    "mask_pan_value",
    "mask_sensitive_text",
    "mask_untrusted_text",
    "unmask_edit",
]
