"""Card data in JSON values and text: card numbers masked, CVV-like fields hidden (no Qt)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from services.masking.json import (
    HIDDEN,
    JsonNumber,
    dumps_compact,
    dumps_pretty,
    id_tree,
    is_cvv_key,
    is_pan_key,
    leftover_masks,
    loads_exact,
    mask_for_edit,
    mask_identifier,
    mask_json,
    mask_pan_value,
    mask_sensitive_text,
    unmask_edit,
)

PAN = "4111111111111111"
MASKED = "411111******1111"


@pytest.mark.parametrize(
    "key",
    [
        "cvv",
        "CVV",
        "cvc",
        "Cvc2",
        "cvv2",
        "card_verification",
        "cardVerificationValue",
        "security_code",
        "securityCode",
        "SECURITY-CODE",
        "card.cvv",
        "x-card-cvv",
        "cvn",
        "csc",
    ],
)
def test_cvv_like_keys(key):
    assert is_cvv_key(key)


@pytest.mark.parametrize("key", ["amount", "currency", "merchant", "cv", "invoice", 3, None])
def test_other_keys_are_not_cvv(key):
    assert not is_cvv_key(key)


@pytest.mark.parametrize(
    "key", ["number", "pan", "PAN", "card_number", "cardNumber", "card_no", "masked_pan", "CardNum"]
)
def test_pan_like_keys(key):
    assert is_pan_key(key)


@pytest.mark.parametrize("key", ["phone_number", "amount", "japan", "panel", "numbers", 7])
def test_other_keys_are_not_pan(key):
    assert not is_pan_key(key)


def test_mask_json_hides_cvv_at_any_depth_and_masks_card_numbers():
    doc = {
        "payment_id": "pay_1",
        "card": {"number": PAN, "CVV": "918", "expiry": "12/29"},
        "wallet": [{"cards": [{"pan": 4000000000000002, "Security_Code": 737}]}],
        "cvc2": {"nested": "anything"},
        "note": "paid with 5555 5555 5555 4444",
        PAN: "a card number as a key",
        "amount": 42.5,
        "ok": True,
        "missing": None,
    }
    original = copy.deepcopy(doc)
    masked = mask_json(doc)
    assert doc == original  # not modified
    assert masked["card"] == {"number": MASKED, "CVV": HIDDEN, "expiry": "12/29"}
    assert masked["wallet"][0]["cards"][0] == {"pan": "400000******0002", "Security_Code": HIDDEN}
    assert masked["cvc2"] == HIDDEN
    assert masked["note"] == "paid with 555555******4444"
    assert masked[MASKED] == "a card number as a key"
    assert (masked["amount"], masked["ok"], masked["missing"]) == (42.5, True, None)
    text = json.dumps(masked)
    for secret in (PAN, "918", "737", "4000000000000002", "anything", "5555 5555"):
        assert secret not in text


def test_card_number_keys_mask_even_without_luhn():
    # A test card or a typo fails the Luhn check; under a card-number key it is masked anyway.
    assert mask_json({"card_number": "4111111111111112"}) == {"card_number": "411111******1112"}
    assert mask_json({"pan": "4111-1111-1111-1112"}) == {"pan": "411111******1112"}
    assert mask_json({"number": "INV-2024-001"}) == {"number": "INV-2024-001"}
    assert mask_json({"number": 42}) == {"number": 42}
    assert mask_pan_value("123456789") == "*****6789"


def test_bare_numbers_that_are_card_numbers_are_masked():
    assert mask_json([4111111111111111, 12]) == [MASKED, 12]
    assert mask_json((PAN,)) == [MASKED]


def test_mask_json_leaves_other_types_alone():
    value = {"blob": b"\x00\x01", "when": Decimal("1.50")}
    assert mask_json(value) == value


@pytest.mark.parametrize(
    ("text", "secret", "shown"),
    [
        ('{"cvv": "918", "id": 1}', "918", f'"cvv": "{HIDDEN}"'),
        ("card=4111111111111111&cvv=918&x=1", "918", f"cvv={HIDDEN}&x=1"),
        ("CVC2: 737 next", "737", f"CVC2: {HIDDEN} next"),
        ("<cvv>918</cvv>", "918", f"<cvv>{HIDDEN}</cvv>"),
        ('<CardSecurityCode a="1">999</CardSecurityCode>', "999", HIDDEN),
        ('"cvv": "91', "91", HIDDEN),  # cut short
        ('"card_number": "4111111111111112"', "4111111111111112", "411111******1112"),
        ("pan=12345678", "12345678", "pan=****5678"),
        ("number: 4000 0000 0000 0002", "4000 0000 0000 0002", "400000******0002"),
    ],
)
def test_mask_sensitive_text(text, secret, shown):
    masked = mask_sensitive_text(text)
    assert secret not in masked
    assert shown in masked


def test_mask_sensitive_text_leaves_ordinary_text_alone():
    text = "phone_number: 4155551234, amount=42.50, the cvv check passed"
    assert mask_sensitive_text(text) == text
    assert mask_sensitive_text("") == ""


def test_loads_exact_keeps_number_text():
    value = loads_exact(b'{"amount": 42.50, "n": 7, "e": 1e3}')
    assert value == {"amount": "42.50", "n": 7, "e": "1e3"}
    assert isinstance(value["amount"], JsonNumber)
    assert dumps_compact(value) == b'{"amount":42.50,"n":7,"e":1e3}'
    assert dumps_pretty(value) == '{\n  "amount": 42.50,\n  "n": 7,\n  "e": 1e3\n}'
    assert dumps_pretty({"a": [], "b": {}, "c": "é"}) == '{\n  "a": [],\n  "b": {},\n  "c": "é"\n}'


RAW = json.dumps(
    {
        "payment_id": "pay_1",
        "amount": 0,
        "card": {"number": PAN, "cvv": "918"},
        "backup": {"number": "5555555555554444", "cvv": "737"},
        "note": f"card {PAN}",
    }
).replace('"amount": 0', '"amount": 42.50')


def test_mask_for_edit_shows_no_card_data_and_unique_placeholders():
    document = mask_for_edit(RAW.encode())
    for secret in (PAN, "918", "737", "5555555555554444"):
        assert secret not in document.text
    assert '"amount": 42.50' in document.text
    # two CVVs, two placeholders; each stands for its own value
    assert document.originals[HIDDEN] == "918"
    assert document.originals[f"{HIDDEN} #2"] == "737"
    assert document.originals[MASKED] == PAN


def test_unmask_edit_puts_the_real_values_back():
    document = mask_for_edit(RAW)
    edited = document.text.replace("42.50", "43.00")
    value = unmask_edit(edited, document)
    body = json.loads(dumps_compact(value))
    assert body["amount"] == 43.0
    assert body["card"] == {"number": PAN, "cvv": "918"}
    assert body["backup"] == {"number": "5555555555554444", "cvv": "737"}
    assert body["note"] == f"card {PAN}"
    assert b"43.00" in dumps_compact(value)
    assert leftover_masks(value, document) == []
    # untouched text comes back as the original document
    assert unmask_edit(document.text, document) == document.value


def test_the_editor_hides_cvvs_written_in_text_and_puts_them_back():
    raw = json.dumps({"memo": "customer said cvv 918", "cvv=737 note": 1})
    document = mask_for_edit(raw)
    assert "918" not in document.text and "737" not in document.text
    assert f'"memo": "customer said cvv {HIDDEN}"' in document.text
    assert unmask_edit(document.text, document) == json.loads(raw)


def test_changed_masked_values_are_reported():
    document = mask_for_edit(RAW)
    edited = document.text.replace(f'"{MASKED}"', '"411111******1112"')
    value = unmask_edit(edited, document)
    assert leftover_masks(value, document) == ["411111******1112"]
    assert unmask_edit(edited, document)["note"] == f"card {PAN}"  # untouched: restored


def test_unmask_edit_rejects_invalid_json_with_its_position():
    document = mask_for_edit(RAW)
    with pytest.raises(json.JSONDecodeError) as info:
        unmask_edit('{\n  "a": 1\n  "b": 2\n}', document)
    assert (info.value.lineno, info.value.colno) == (3, 3)


def test_mask_for_edit_rejects_non_json():
    with pytest.raises(ValueError):
        mask_for_edit(b"not json")


# --------------------------------------------------------------------------- identifiers

ID_PAN = "4111111111111111"


def test_an_id_token_is_shown_in_full_wherever_the_profile_names_an_id() -> None:
    ids = id_tree(("payment_id", "order.id", "items.0.ref"))
    body = {
        "payment_id": "pay_17d5570756950439",  # passes Luhn: an id all the same
        "order": {"id": f"ord-{ID_PAN}"},
        "items": [{"ref": f"r-{ID_PAN}"}, {"ref": f"r-{ID_PAN}"}],  # "r4111...": no card at all
        "note": ID_PAN,  # stands alone under a non-card key: a card number
        "memo": f"pay_{ID_PAN}",  # not an id path: free text
    }
    masked = mask_json(body, ids)
    assert masked["payment_id"] == "pay_17d5570756950439"
    assert masked["order"] == {"id": f"ord-{ID_PAN}"}
    assert masked["items"] == [{"ref": f"r-{ID_PAN}"}, {"ref": "r-411111******1111"}]
    assert masked["note"] == "411111******1111"
    assert masked["memo"] == "pay_411111******1111"
    assert mask_identifier("pay_17d5570756950439") == "pay_17d5570756950439"


def test_an_id_that_is_only_digits_or_holds_spaces_is_masked_like_free_text() -> None:
    ids = id_tree(("payment_id",))
    for value in (ID_PAN, "4111 1111 1111 1111", "4111-1111-1111-1111", int(ID_PAN)):
        assert mask_json({"payment_id": value}, ids) == {"payment_id": "411111******1111"}
    assert mask_identifier(f"pay {ID_PAN}") == "pay 411111******1111"
    assert mask_identifier("1234567890123") == "1234567890123"  # fails Luhn: kept


def test_card_and_cvv_keys_win_over_id_paths_and_cvv_pairs_are_hidden_in_ids() -> None:
    ids = id_tree(("card_number", "cvv", "payment_id"))
    masked = mask_json({"card_number": f"x{ID_PAN}", "cvv": "918"}, ids)
    assert masked == {"card_number": "x411111******1111", "cvv": HIDDEN}
    assert mask_identifier("pay_1;cvv=918") == f"pay_1;cvv={HIDDEN}"
