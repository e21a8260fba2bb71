"""mask_untrusted checks a message's free texts at once (services.masking.message._settle)
and an int's digits before its text: the result is still exactly the plain three passes
(``masking_reference``), whichever text of many holds the card data (no Qt, no Redis)."""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest

from services.masking.json import id_tree
from services.masking.message import mask_untrusted
from services.masking.text import luhn_valid
from tests.helpers import masking_reference as reference

PAN = "4111111111111111"
IDS = id_tree(("payment_id", "payment.id"))

CLEAN = {
    "merchant": "Vandelay Imports",
    "customer": {"email": "bruno.tanaka73@example.com", "ip": "203.0.113.150"},
    "items": [{"description": "Hiking boots, size 43", "sku": "SKU-004711"}],
    "acquirer": {"message": "Do not honor", "code": "05"},
    "idempotency_key": "4a23d596-2217-bead-dbc4-96cb8e81973e",
    "at": datetime.datetime(2026, 12, 5, 23, 21, 57, 120000, tzinfo=datetime.UTC),
}

# One text among the clean ones that does hold something to mask, and where it sits.
DIRTY_TEXTS = [
    f"card {PAN} declined",  # a card number
    "4111 1111 1111 1111",  # grouped
    "retry with cvv=123",  # a CVV pair
    "security code 123 was wrong",  # a loose CVV phrase
    "pan: 12345678",  # a card-number pair, no Luhn needed
    "card_no=5555555555554444",
    f"kärte {PAN}",  # not ASCII: the slow path for all
    "ｃｖｖ=123 ４１１１１１１１１１１１１１１１",  # full-width letters and digits
]


def _with(text: str, where: int) -> dict[str, Any]:
    value: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in CLEAN.items()}
    if where == 0:
        value["note"] = text
    elif where == 1:
        value["customer"] = {**CLEAN["customer"], "name": text}  # type: ignore[dict-item]
    else:
        value["items"] = [*CLEAN["items"], {"description": text}]  # type: ignore[list-item]
    return value


def test_clean_texts_stay_as_they_are() -> None:
    expected = {**CLEAN, "at": "2026-12-05T23:21:57.120000+00:00"}
    assert mask_untrusted(CLEAN) == expected
    assert mask_untrusted(CLEAN, IDS) == expected


@pytest.mark.parametrize("where", [0, 1, 2])
@pytest.mark.parametrize("text", DIRTY_TEXTS)
def test_one_dirty_text_among_clean_ones_is_masked(text: str, where: int) -> None:
    value = _with(text, where)
    for ids in (None, IDS):
        masked = mask_untrusted(value, ids)
        assert reference.same(masked, reference.mask_untrusted(value, ids)), (text, where)
        assert masked != value
        assert PAN not in str(masked) and "5555555555554444" not in str(masked)


def test_texts_are_checked_apart_not_joined() -> None:
    # Joined without a separator these would make a card number and a key word: each
    # alone holds neither, and each is left as it is.
    value = {"a": "order 411111111", "b": "1111111 shipped", "c": "ca", "d": "vv= 123 ok"}
    assert mask_untrusted(value) == value
    assert reference.same(mask_untrusted(value), reference.mask_untrusted(value))


def _luhn_complete(prefix: str) -> int:
    return int(next(prefix + d for d in "0123456789" if luhn_valid(prefix + d)))


@pytest.mark.parametrize(
    "number",
    [
        1796512913839,  # a 13-digit timestamp, not Luhn-valid
        _luhn_complete("179651291383"),  # a 13-digit one that is
        int(PAN),
        -int(PAN),
        _luhn_complete("601100099013942412"),  # 19 digits
        _luhn_complete("6011000990139424123"),  # 20 digits: no card number
        -_luhn_complete("6011000990139424123"),
        2**64 - 1,
        10**12,
        -(10**12),
    ],
)
def test_ints_mask_as_their_text(number: int) -> None:
    for value in ({"n": number}, {"n": [number]}, [number]):
        assert reference.same(mask_untrusted(value), reference.mask_untrusted(value)), value


def test_random_bodies_mask_as_the_reference() -> None:
    rng = random.Random(1205)
    pieces = ["Vandelay", PAN, "4111 1111 1111 1111", "cvv", "=", " 123", "pan", ":", "née", "-"]
    pieces += ["card_no", "4012888888881881", "1796512913839", "07", "ok", "_", "security code"]
    for _ in range(2000):
        texts = ["".join(rng.choices(pieces, k=rng.randint(1, 5))) for _ in range(6)]
        value: dict[str, Any] = {
            "payment_id": texts[0],
            "merchant": texts[1],
            "card": {"holder": texts[2], "number": texts[3]},
            "items": [{"description": texts[4]}, rng.randrange(10**20)],
            "note": texts[5],
            "at": datetime.datetime(2026, 12, 5, rng.randrange(24), tzinfo=datetime.UTC),
            "payment": {"id": texts[1]},
        }
        for ids in (None, IDS):
            expected = reference.mask_untrusted(value, ids)
            assert reference.same(mask_untrusted(value, ids), expected), value
