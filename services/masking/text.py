"""Card-number masking: PANs never leave the process unmasked.

A PAN is 13–19 digits (optionally grouped by single spaces or dashes) that
passes the Luhn check and stands on its own: no letter or digit right before or after
it. A digit run inside a longer alphanumeric token (a hex trace id, a uuid without
dashes, a base64-ish id) is part of an identifier, not a card number: identifiers are
not card numbers. A card number in free text (``card 4111 1111 1111 1111 declined``,
``pan=4111111111111111``, ``"4111-1111-1111-1111"``) is one. It is shown as its first 6
and last 4 digits at most (PCI DSS 3.4), the rest replaced by ``*``.

:data:`PAN_CANDIDATE_PATTERN` is the one statement of where a card number may sit: the
text masking here (and so every caller: the tap, the parker, the snapshot, the views)
and the byte masking of the hex dump (:data:`PAN_CANDIDATE_BYTES`) compile it.
"""

from __future__ import annotations

import logging
import re

PAN_CANDIDATE_PATTERN = r"(?<![^\W_])\d(?:[ -]?\d){12,18}(?![^\W_])"
"""13-19 digits, single spaces or dashes between them, with no letter or digit (``[^\\W_]``)
right before or after: a card number stands on its own, not inside an identifier."""
_PAN_CANDIDATE = re.compile(PAN_CANDIDATE_PATTERN)
PAN_CANDIDATE_BYTES = re.compile(PAN_CANDIDATE_PATTERN.encode("ascii"))
"""The same candidates in bytes (ASCII letters and digits are the boundary there)."""
_GLUED_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
"""Candidates in a value known to be card data: a letter beside the digits does not matter."""
MIN_PAN_DIGITS = 13
"""The fewest digits a card number has."""
MAX_PAN_DIGITS = 19
"""The most digits a card number has."""
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_THIRTEEN_DIGITS = b"0" * MIN_PAN_DIGITS


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def mask_pan(digits: str) -> str:
    """Mask one PAN (digits only): first 6 and last 4 kept."""
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


_SEPARATOR = re.compile(r"([ -])")


def _mask_match(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = text.replace(" ", "").replace("-", "")  # the separators the pattern allows
    if luhn_valid(digits):
        return mask_pan(digits)
    return _mask_inner_pan(text)


def card_span(candidate: str) -> tuple[int, int] | None:
    """Where the card number is in a candidate (a ``PAN_CANDIDATE_PATTERN`` match), or None.

    The whole candidate when it passes Luhn; else it may hold a card number between its
    separators ("INC-9 4111 1111 1111 1111": the "9 " is not part of it): the longest run
    of whole digit groups that is one.
    """
    if luhn_valid(candidate.replace(" ", "").replace("-", "")):
        return 0, len(candidate)
    parts = _SEPARATOR.split(candidate)  # digit groups at even positions, separators between
    groups = parts[0::2]
    best: tuple[int, int] | None = None
    for start in range(len(groups)):
        count = 0
        for end in range(start, len(groups)):
            count += len(groups[end])
            if count > 19:
                break
            if count >= MIN_PAN_DIGITS and (start, end) != (0, len(groups) - 1):
                width = end - start
                if (best is None or width > best[1] - best[0]) and luhn_valid(
                    "".join(groups[start : end + 1])
                ):
                    best = (start, end)
    if best is None:
        return None
    start, end = best
    return len("".join(parts[: 2 * start])), len(candidate) - len("".join(parts[2 * end + 1 :]))


def _mask_inner_pan(text: str) -> str:
    """A candidate that fails Luhn as a whole with the card number inside it masked."""
    span = card_span(text)
    if span is None:
        return text
    start, end = span
    return text[:start] + mask_pan(text[start:end].replace(" ", "").replace("-", "")) + text[end:]


def mask_text(text: str) -> str:
    """Mask every Luhn-valid card number in free text."""
    if len(text) < MIN_PAN_DIGITS:
        return text
    if type(text) is str and text.isascii() and not may_hold_pan(text):
        return text  # the substitution would find nothing and return text itself
    return _PAN_CANDIDATE.sub(_mask_match, text)


def mask_card_field_text(text: str) -> str:
    """Mask every Luhn-valid card number in the text of a card-number field (``pan``,
    ``card_number``): there a run glued to letters (``x4111111111111111``) is one too."""
    return _GLUED_CANDIDATE.sub(_mask_match, text)


def may_hold_pan(ascii_text: str) -> bool:
    """False when an ASCII text cannot hold a ``_PAN_CANDIDATE`` (two C passes, no regex).

    A candidate is 13+ digits with at most one space or dash between two of them: with every
    space and dash dropped, 13 digits in a row. In ASCII text ``\\d`` is 0-9 only.
    """
    digits_as_zeros = ascii_text.encode("ascii").translate(_DIGITS_TO_ZERO, b" -")
    return _THIRTEEN_DIGITS in digits_as_zeros


class MaskingFilter(logging.Filter):
    """Masks card numbers in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
