"""Identifiers are not card numbers: a digit run inside a longer alphanumeric token (a hex
trace id, a uuid without dashes, a base64-ish id) is left alone, while a card number that
stands on its own - in free text, JSON, headers, the hex dump - is masked everywhere.

Every path that masks message data goes through the one candidate pattern
(``services.masking.text``): the tap's failure reasons, the parker's causes, headers and
bodies, the hex dump. The ids are generated to hold a Luhn-valid run of 13-19 digits, the
case that was garbled (``…359340****8760bd``).
"""

from __future__ import annotations

import random
import string

import pytest

from services.masking.json import mask_json, mask_sensitive_text, mask_untrusted_text
from services.masking.message import mask_untrusted
from services.masking.text import luhn_valid, mask_text
from services.workbench.body_format import mask_card_bytes
from services.workbench.cause import clean_cause

CARDS = ("4111111111111111", "5555555555554444", "378282246310005", "4012888888881881")
HEX = "0123456789abcdef"
B64 = string.ascii_letters + string.digits


def _luhn_run(rng: random.Random) -> str:
    """A Luhn-valid run of 13-19 digits (a card number, were it on its own)."""
    while True:
        run = "".join(rng.choice(string.digits) for _ in range(rng.randint(13, 19)))
        if luhn_valid(run):
            return run


def _ids(count: int) -> list[str]:
    """Hex trace ids, uuids without dashes and base64-ish ids, each with a Luhn-valid
    digit run inside it, at its start, its end or in the middle."""
    rng = random.Random(1205)
    ids: list[str] = []
    for index in range(count):
        run = _luhn_run(rng)
        alphabet = HEX if index % 3 else B64
        letters = [c for c in alphabet if not c.isdigit()]
        left = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        right = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        where = index % 3
        if where == 0 or not left:  # glued at the start: a letter right after the run
            token = run + rng.choice(letters) + right
        elif where == 1 or not right:  # glued at the end: a letter right before the run
            token = left + rng.choice(letters) + run
        else:
            token = left + rng.choice(letters) + run + rng.choice(letters) + right
        ids.append(token)
    return ids


IDS = _ids(600)


def _in_text(card: str, index: int) -> str:
    grouped = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    dashed = "-".join(card[i : i + 4] for i in range(0, len(card), 4))
    return [
        f"card {grouped} declined",
        f"pan={card}",
        f"charge of 12.50 on {dashed} failed",
        f'{{"note": "{card}"}}',
        f"card:{card}; retry later",
        f"({card})",
        f"ref INC-9 {card} x",
    ][index % 7]


def test_generated_ids_are_never_masked_anywhere() -> None:
    for token in IDS:
        assert any(luhn_valid(token[i:j]) for i in range(len(token)) for j in range(i + 13, i + 20))
        text = f"trace_id={token} upstream timeout"
        assert mask_text(token) == token
        assert mask_text(text) == text
        assert mask_sensitive_text(text) == text
        assert mask_untrusted_text(token) == token
        assert clean_cause(text) == text  # the parker's causes
        assert mask_json({"trace_id": token, "note": text}) == {"trace_id": token, "note": text}
        headers = {"x-trace-id": token, "traceparent": f"00-{token}-01"}
        assert mask_untrusted(headers) == headers
        assert mask_card_bytes(text.encode()) == text.encode()  # the hex dump


@pytest.mark.parametrize("card", CARDS)
def test_cards_standing_on_their_own_are_masked_everywhere(card: str) -> None:
    for index in range(7):
        text = _in_text(card, index)
        for masked in (
            mask_text(text),
            mask_sensitive_text(text),
            mask_untrusted_text(text),
            clean_cause(text),
            mask_json({"note": text})["note"],
            mask_untrusted({"x-note": text})["x-note"],
            mask_card_bytes(text.encode()).decode(),
        ):
            digits = "".join(c for c in masked if c.isdigit())
            assert card not in digits, (text, masked)
            assert card[:6] in digits and "*" in masked
