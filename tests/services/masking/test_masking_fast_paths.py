"""The masking fast paths give exactly what the plain algorithm gives (no Qt, no Redis).

Each shortcut (a pre-check that proves there is nothing to mask, the remembered short
texts, mask_text then mask_sensitive_text in one go, the one-walk ``mask_untrusted`` of
message values) is checked on the edge cases it touches, then everything is checked
against the original implementation kept in ``masking_reference`` on random texts and
values full of card numbers, CVVs and near misses.
"""

from __future__ import annotations

import datetime
import enum
import inspect
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from services.masking import json as json_masking
from services.masking import text as masking
from services.masking.json import (
    CACHED_TEXT_LEN,
    CACHED_TEXTS,
    HIDDEN,
    SHORTEST_SENSITIVE,
    JsonNumber,
    loads_exact,
    mask_sensitive_text,
    mask_untrusted_text,
)
from services.masking.message import json_value, mask_untrusted
from services.masking.text import luhn_valid, mask_text
from services.snapshot.documents import body_for_export, dumps_line
from tests.helpers import masking_reference as reference

PAN = "4111111111111111"
MASKED = "411111******1111"


def _luhn_complete(prefix: str) -> str:
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


PAN13 = _luhn_complete("422222222222")  # the shortest card number
PAN19 = _luhn_complete("601100099013942412")  # the longest


def _unchanged_texts(fn: Callable[[str], str]) -> set[str]:
    cache = inspect.getclosurevars(fn).nonlocals["unchanged"]
    assert isinstance(cache, set)
    return cache


class Tagged(str):
    """A str subclass (an enum value, a client library's string type ...)."""

    __slots__ = ()


# --------------------------------------------------------------------------- mask_text


@pytest.mark.parametrize(
    "text",
    [
        f"card {PAN13} end",  # shortest card number: 13 digits
        f"card {PAN19}",  # longest: 19 digits
        f"card {PAN13[:1]} {PAN13[1:]}",  # grouped by single spaces ...
        "x 4111-1111-1111-1111 y",  # ... or dashes
        "-".join(PAN),  # a separator between every two digits
        f"{PAN}",  # the whole text
        f"abc:{PAN}-def",  # beside words (glued to letters it is part of an identifier)
        f"pay_{PAN[:8]}-{PAN[8:]}_x",
    ],
)
def test_the_pre_check_lets_every_card_number_through(text: str) -> None:
    masked = mask_text(text)
    assert masked == reference.mask_text(text)
    assert masked != text  # masked, not shortcut


@pytest.mark.parametrize(
    "text",
    [
        "2cd20f56-ec73-19e3-dac2-2309ba41bc87",  # hex ids: digits, but never 13 in a row
        "2024-05-17T12:00:00.123+00:00",
        "order 123456789012 ref",  # 12 digits
        "4111 1111  1111 1111",  # a double space is not a card number's separator
        "4111_1111_1111_1111",
        "4111111111111112",  # 16 digits, not Luhn-valid: the regex runs, nothing masked
        "a" * 200,
    ],
)
def test_texts_without_a_card_number_are_left_alone(text: str) -> None:
    assert mask_text(text) == reference.mask_text(text) == text


def test_non_ascii_digits_take_the_regex_path() -> None:
    # \d matches any decimal digit; the 0-9 pre-check is for ASCII text only.
    for text in ("٤١١١١١١١١١١١١١١١", "card ４１１１１１１１１１１１１１１１ é", f"é {PAN}"):
        assert mask_text(text) == reference.mask_text(text)
    assert mask_text(f"é {PAN}") == f"é {MASKED}"


def test_a_str_subclass_is_masked_as_before() -> None:
    for text in (Tagged(f"card {PAN}"), Tagged("no card number here at all")):
        masked, expected = mask_text(text), reference.mask_text(text)
        assert masked == expected and type(masked) is type(expected)


# --------------------------------------------------------------------------- mask_sensitive_text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("cvv=1", f"cvv={HIDDEN}"),  # the shortest text with something to hide
        ("csc:x", f"csc:{HIDDEN}"),
        ("<cvc>1", f"<cvc>{HIDDEN}"),
        ("cvv 123", f"cvv {HIDDEN}"),
        ("pan:12345678", "pan:****5678"),
    ],
)
def test_the_shortest_maskable_texts_are_masked(text: str, shown: str) -> None:
    assert len(text) >= SHORTEST_SENSITIVE
    assert mask_sensitive_text(text) == reference.mask_sensitive_text(text) == shown


@pytest.mark.parametrize("text", ["", "cvv", "cvv=", "pan:", "1234", "cav2", Tagged("cvc")])
def test_texts_too_short_for_any_pattern(text: str) -> None:
    masked, expected = mask_sensitive_text(text), reference.mask_sensitive_text(text)
    assert masked == expected == text and type(masked) is type(expected)


@pytest.mark.parametrize(
    "text",
    [
        f"cvv=123 card {PAN}",  # a CVV key word and a card number in one text
        f'{{"cvv": "918", "number": "{PAN}"}}',
        f"CVC2: 737 / {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}",
        "card_number=4111 1111 1111 1112",  # not Luhn-valid, after a card-number key
        "number: 4000-0000-0000-0002 and pan=12345678",
        f"<SecurityCode>999</SecurityCode><PAN>{PAN}</PAN>",
        f"japan {PAN}",  # a PAN key word that is no key
    ],
)
def test_key_words_and_card_numbers_together(text: str) -> None:
    masked = mask_sensitive_text(text)
    assert masked == reference.mask_sensitive_text(text)
    assert PAN not in masked and "918" not in masked and "737" not in masked


def test_remembered_texts_stay_masked_and_hold_no_card_data() -> None:
    secret = f"cvv=918 {PAN}"  # short enough to be remembered, were it unchanged
    clean = "payments.capture"
    for _ in range(3):
        assert mask_sensitive_text(secret) == f"cvv={HIDDEN} {MASKED}"
        assert mask_untrusted_text(secret) == f"cvv={HIDDEN} {MASKED}"
        assert mask_sensitive_text(clean) == mask_untrusted_text(clean) == clean
    for fn, plain in (
        (mask_sensitive_text, reference.mask_sensitive_text),
        (mask_untrusted_text, lambda t: reference.mask_sensitive_text(reference.mask_text(t))),
    ):
        remembered = _unchanged_texts(fn)
        assert clean in remembered
        assert secret not in remembered
        # only texts with nothing to mask are remembered (so no card data is ever kept)
        assert all(plain(text) == text for text in remembered)


def test_only_short_texts_are_remembered_and_at_most_so_many() -> None:
    long_text = "x" * (CACHED_TEXT_LEN + 1)
    assert mask_sensitive_text(long_text) == long_text
    assert long_text not in _unchanged_texts(mask_sensitive_text)
    texts = [f"merchant {n}" for n in range(CACHED_TEXTS + 10)]
    for text in texts:
        assert mask_sensitive_text(text) == text
    assert len(_unchanged_texts(mask_sensitive_text)) <= CACHED_TEXTS
    # after the cache was dropped, masking is unchanged
    assert mask_sensitive_text(f"cvv=1 {PAN}") == f"cvv={HIDDEN} {MASKED}"


def test_a_str_subclass_is_never_taken_from_the_cache() -> None:
    plain = "cvc 12 routing"
    assert mask_sensitive_text(plain) == plain  # now remembered
    tagged = Tagged(plain)
    masked, expected = mask_sensitive_text(tagged), reference.mask_sensitive_text(tagged)
    assert masked == expected and type(masked) is type(expected) is str


# --------------------------------------------------------------------------- mask_untrusted_text


@pytest.mark.parametrize(
    "text",
    [
        # mask_text first changes what mask_sensitive_text sees: 16 Luhn-valid digits are
        # masked, and the 4 after them are no longer part of a 20-digit card-number value.
        "number=4111 1111 1111 1111 1234",
        f"cav2{PAN}",  # the '2' of a key word is a card number's first digit
        f"cvv={PAN}",
        f"pan {PAN}",
        # masking can make a new card number ("1000004 411111", Luhn-valid): masked twice
        "1000004 4111111111111111",
        f"{PAN13}",
        "no key word, no card number",
    ],
)
def test_mask_untrusted_text_is_mask_text_then_mask_sensitive_text(text: str) -> None:
    expected = reference.mask_sensitive_text(reference.mask_text(text))
    assert mask_untrusted_text(text) == expected
    assert mask_untrusted_text(text) == expected  # remembered or not, the same


# --------------------------------------------------------------------------- mask_untrusted


class Code(enum.IntEnum):
    CARD = 4111111111111111


@pytest.mark.parametrize(
    "value",
    [
        {PAN: "a card number as a key", MASKED: "its masked form, a second key"},
        {"4111111111111111": 1, "x": 2, "411111******1111": 3},  # the later value wins
        {1: "int key", "1": "str key"},  # json_value makes them one key
        {"pan": PAN, "card_number": "4111 1111 1111 1112", "number": 4111111111111112},
        {"pan": JsonNumber("4111111111111111"), "number": b"4111111111111111"},
        {"pan": b"\xff" + PAN.encode(), "number": ["4111111111111111"], "cvv": {"a": 1}},
        {"cvv": "918", "CVC2": 737, "securityCode": None},
        {"created_at": 1715947200000, "luhn_ms": int(_luhn_complete("171594720000"))},
        {"big": 4111111111111111, "neg": -4111111111111111, "small": 7, "flag": True},
        # ints around the length of the shortest card number (kept in line below it)
        {
            "n12": 999_999_999_999,
            "n13": int(_luhn_complete("100000000000")),
            "m12": -99_999_999_999,
        },
        {"m13": -int(_luhn_complete("100000000000")), "m12d": -100_000_000_000, "n": None},
        {"amount": JsonNumber("42.50"), "long": JsonNumber("4111111111111111.5")},
        {"float": 4111111111111111.0, "nan": float("nan"), "dec": Decimal("4111111111111111")},
        {"when": datetime.datetime(2024, 5, 17, 12, tzinfo=datetime.UTC)},
        {"day": datetime.date(2024, 5, 17), "code": Code.CARD, "tag": Tagged(f"c {PAN}")},
        {"items": (PAN, {"note": f"cvv=1 {PAN}"}), "x-death": [{"queue": "q"}]},
        [PAN, (PAN,), {"pan": PAN}, b"\xff\xfe", bytearray(b"cvv=918")],
        f"card {PAN} cvv=918",
    ],
)
def test_mask_untrusted_is_the_three_passes(value: Any) -> None:
    assert reference.same(mask_untrusted(value), reference.mask_untrusted(value))


def test_keys_that_mask_alike_keep_what_the_passes_keep() -> None:
    # mask_text makes the 1st and 3rd keys one (first place, last value: "third"), then
    # mask_sensitive_text makes that key and the 2nd one (its value "second" comes last).
    # A single walk would end with "third": the collision sends it back to the passes.
    value = {
        f"{PAN} pan=12345678": "first",
        f"{MASKED} pan=22345678": "second",
        f"{MASKED} pan=12345678": "third",
    }
    assert mask_untrusted(value) == {f"{MASKED} pan=****5678": "second"}
    assert reference.same(mask_untrusted(value), reference.mask_untrusted(value))


def test_json_bodies_for_export_are_masked_as_before() -> None:
    body = (
        b'{"payment_id": "pay_1", "amount": 42.50, "created_at": 1715947200000,'
        b' "card": {"number": "4111 1111 1111 1111", "cvv": "918", "holder": "A B"},'
        b' "note": "cvv=737 card 5555555555554444", "4111111111111111": [1, 2.5e3]}'
    )
    content = body_for_export(body)["content"]
    assert reference.same(content, reference.mask_untrusted(loads_exact(body)))
    assert content["card"] == {"number": MASKED, "cvv": HIDDEN, "holder": "A B"}


@pytest.mark.parametrize(
    "body",
    [
        # orjson's parse is reused only without floats: a float anywhere, at any depth,
        # and an int past 64 bits (orjson makes it a float) are parsed again as written
        b'{"card": {"number": "4111111111111111", "limits": [1, [2, {"max": 42.50}]]}}',
        b'{"amount": 1e3, "pan": 4111111111111111}',
        b'{"amount": 1E+3, "note": "cvv=737"}',
        b"[4111111111111111, -0.0, 18446744073709551616]",
        b'{"id": 123456789012345678901234567890, "pan": "5555555555554444"}',
        b'{"id": -9223372036854775809}',
        b'{"n": 4111111111111111, "cvv": 737, "ok": true, "none": null, "z": -0}',
        b'{"a": 1.5, "a": 2, "pan": "4111-1111-1111-1111"}',
        b'{"a": 2, "a": 1.5, "cvv": "123"}',
        b'  {"deep": ' + b"[" * 200 + b"4111111111111111, 0.1" + b"]" * 200 + b"}",
        b'"4111 1111 1111 1111"',
        b"4111111111111111",
        b"42.50",
    ],
)
def test_json_bodies_reusing_the_first_parse_are_masked_as_parsed_exactly(body: bytes) -> None:
    exported = body_for_export(body)
    assert exported["kind"] == "json"
    expected = reference.mask_untrusted(loads_exact(body))
    assert reference.same(exported["content"], expected)
    if b"9223372036854775809" in body or b"12345678901234567890" in body or b"1844" in body:
        return  # an int past 64 bits: orjson cannot write the JSONL line (not this test's)
    # numbers stay as written (42.50, 1e3 ...): the same JSONL line
    assert dumps_line(exported) == dumps_line({**exported, "content": expected})
    assert b"42.50" not in body or b"42.50" in dumps_line(exported)


# --------------------------------------------------------------------------- at random

_WORDS = (
    "cvv", "CVV2", "cvc", "cvn", "csc", "cvd", "cav2", "card_verification", "securityCode",
    "security code", "pan", "PAN", "card_number", "cardNumber", "card-no", "card_no",
    "number", "accountNumber", "num", "_no", "-no", "japan", "phone_number", "is", "code",
    "amount", "merchant", "İ", "K", "ſ", "Σ", "é",
)  # fmt: skip
_PUNCTUATION = (
    "=", ": ", ":", " = ", ">", "<", "</", '"', "'", " ", "  ", "\t", "\n", ",", ";", "&",
    "{", "}", "[", "]", '": "', "-", "_", ".", HIDDEN, "*",
)  # fmt: skip


def _random_pan(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(11, 19)))
    digits = _luhn_complete(digits) if rng.random() < 0.8 else digits + rng.choice("0123456789")
    if rng.random() < 0.4:
        sep, step = rng.choice([" ", "-", "  ", " -"]), rng.choice([1, 3, 4, 5])
        digits = sep.join(digits[i : i + step] for i in range(0, len(digits), step))
    return digits


def _random_pair(rng: random.Random) -> str:
    """A key word, a separator and a value: what the CVV and card-number patterns look for."""
    value = rng.choice(
        [
            _random_pan(rng),
            "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9))),
            rng.choice(["x", "abc", '"918"', "'73", '"', HIDDEN, "", "é"]),
        ]
    )
    separator = rng.choice(["=", ":", ": ", " = ", " ", " is ", ">", '": "', "': '", "\n"])
    return rng.choice(_WORDS[:21]) + separator + value


def _random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 8)):
        draw = rng.random()
        if draw < 0.15:
            parts.append(_random_pair(rng))
        elif draw < 0.25:
            parts.append(_random_pan(rng))
        elif draw < 0.45:
            parts.append(rng.choice(_WORDS))
        elif draw < 0.7:
            parts.append(rng.choice(_PUNCTUATION))
        elif draw < 0.85:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9))))
        elif draw < 0.88:
            parts.append(rng.choice(["٤١١١١١١١١١١١١١١١", "４１１１", "१२३"]))
        else:
            parts.append("".join(rng.choice("abcdefXYZ ") for _ in range(rng.randint(1, 6))))
    return "".join(parts)


def _random_key(rng: random.Random, ids: bool) -> str:
    if ids and rng.random() < 0.8:
        return rng.choice(_ID_KEYS)
    return _random_text(rng) if rng.random() < 0.5 else rng.choice(_WORDS)


def _random_value(rng: random.Random, depth: int = 0, ids: bool = False) -> Any:
    """A random message value; ``ids``: a dict at the top, keys and values near :data:`IDS`."""
    draw = rng.random()
    if (ids and depth == 0) or (depth < 3 and draw < (0.4 if ids else 0.15)):
        keys = [_random_key(rng, ids) for _ in range(rng.randint(int(ids), 5))]
        return {key: _random_value(rng, depth + 1, ids) for key in keys}
    if depth < 3 and draw < (0.55 if ids else 0.22):
        items = [_random_value(rng, depth + 1, ids) for _ in range(rng.randint(0, 4))]
        return tuple(items) if rng.random() < 0.3 else items
    if ids and draw < 0.85:
        return _random_id(rng)
    if draw < 0.55:
        return _random_text(rng)
    choices: tuple[Any, ...] = (
        0, -3, 10**12, 4111111111111111, -4111111111111111, 2**70, 12345678,
        1.5, 4111111111111111.0, float("inf"),
        JsonNumber("42.50"), JsonNumber("4111111111111111.5"), JsonNumber("1e3"),
        Decimal("1.50"), Decimal("4111111111111111"), Decimal("NaN"),
        b"\xff\xfe" + PAN.encode(), PAN.encode(), bytearray(b"cvv=918"),
        datetime.datetime(2024, 5, 17, 12, 0, tzinfo=datetime.UTC), datetime.date(2024, 5, 17),
        None, True, False, Code.CARD, Tagged(f"x {PAN}"), Tagged("cvc"),
    )  # fmt: skip
    return rng.choice(choices)


def test_random_texts_mask_as_the_reference() -> None:
    rng = random.Random(20240517)
    for _ in range(4000):
        text = _random_text(rng)
        both = reference.mask_sensitive_text(reference.mask_text(text))
        for _ in range(2):  # the second time, from the cache when it is remembered
            assert mask_text(text) == reference.mask_text(text), text
            assert mask_sensitive_text(text) == reference.mask_sensitive_text(text), text
            assert mask_untrusted_text(text) == both, text


def test_random_values_mask_as_the_reference() -> None:
    rng = random.Random(17052024)
    for _ in range(3000):
        value = _random_value(rng)
        assert reference.same(mask_untrusted(value), reference.mask_untrusted(value)), value
        assert reference.same(json_masking.mask_json(value), reference.mask_json(value)), value


def test_the_random_inputs_do_reach_the_masking() -> None:
    # A property test is only as good as its inputs: most change, some of them a lot.
    rng = random.Random(20240517)
    texts = [_random_text(rng) for _ in range(1000)]
    # (a run glued to a letter is part of an identifier, no card: fewer change than once)
    assert sum(masking.mask_text(t) != t for t in texts) > 100
    assert sum(mask_sensitive_text(t) != masking.mask_text(t) for t in texts) > 120
    assert sum(HIDDEN in mask_sensitive_text(t) and HIDDEN not in t for t in texts) > 90
    values = [_random_value(random.Random(seed)) for seed in range(1000)]
    assert sum(mask_untrusted(v) != json_value(v) for v in values) > 200


# --------------------------------------------------------------------------- identifiers

IDS = json_masking.id_tree(("payment_id", "order.id", "items.0.ref"))
_ID_KEYS = ("payment_id", "order", "id", "items", "0", "ref", "pan", "cvv", "note")


def _random_id(rng: random.Random) -> Any:
    pan = _random_pan(rng)
    return rng.choice(
        [
            f"pay_{pan}",
            f"ord-{pan.replace(' ', '')}",
            pan,
            f"pay {pan}",
            "pay_cvv=918",
            f"pay_{PAN}&cvv:737",
            int(PAN),
            JsonNumber(PAN),
            JsonNumber("4111111111111111.5"),
            PAN.encode(),
            b"\xff" + PAN.encode(),
            None,
            True,
        ]
    )


@pytest.mark.parametrize(
    "value",
    [
        {"payment_id": f"pay_{PAN}", "note": f"pay_{PAN}", "order": {"id": f"ord-{PAN}"}},
        {"payment_id": PAN, "order": {"id": int(PAN)}, "items": [{"ref": JsonNumber(PAN)}]},
        {"payment_id": f"pay {PAN}", "order": [{"id": "x"}], "items": ({"ref": "r_cvv=918"},)},
        {"payment_id": {"pan": PAN, "id": f"pay_{PAN}"}, "order": {"id": {"x": f"o_{PAN}"}}},
        {"payment_id": b"\xff" + PAN.encode(), "order": {"id": PAN.encode()}},
        {1: "int key", "payment_id": f"pay_{PAN}"},  # not JSON keys: the three passes
        {f"{PAN}": 1, MASKED: 2, "payment_id": f"pay_{PAN}"},  # keys collide: the passes
        [{"payment_id": f"pay_{PAN}"}],  # an id path starts at the top, not in a list
    ],
)
def test_mask_untrusted_with_ids_is_the_three_passes(value: Any) -> None:
    assert reference.same(mask_untrusted(value, IDS), reference.mask_untrusted(value, IDS))
    assert reference.same(json_masking.mask_json(value, IDS), reference.mask_json(value, IDS))


def test_random_values_with_ids_mask_as_the_reference() -> None:
    rng = random.Random(9_2026)
    changed = 0
    for _ in range(3000):
        value = _random_value(rng, ids=True)
        masked = mask_untrusted(value, IDS)
        assert reference.same(masked, reference.mask_untrusted(value, IDS)), value
        assert reference.same(
            json_masking.mask_json(value, IDS), reference.mask_json(value, IDS)
        ), value
        changed += not reference.same(masked, mask_untrusted(value))
    assert changed > 40  # the ids do change what is shown: the inputs reach the id rule
