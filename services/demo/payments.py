"""The demo's payments and the messages that carry them.

Merchants and well-known test cards, the generator of payment requests, the
status events every stage publishes, and the headers by which a message an
operator sent back is recognised and carried from one stage to the next.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aio_pika.abc import HeadersType

# Status events.
REQUESTED: Final = "requested"
REVIEW: Final = "review"
AUTHORIZED: Final = "authorized"
CAPTURED: Final = "captured"
DECLINED: Final = "declined"
FAILED: Final = "failed"
DUPLICATE: Final = "duplicate"  # a delivery of a payment already captured, acked unchanged
TERMINAL_STATUSES: Final = (CAPTURED, DECLINED, FAILED, DUPLICATE)

# Why a payment failed: see services.demo.failures. Why one was declined:
DECLINE_REASONS: Final = (
    ("insufficient funds", 0.45),
    ("do not honor", 0.25),
    ("3-D Secure authentication failed", 0.2),
    ("card reported lost", 0.1),
)
REASON_SUSPECTED_FRAUD: Final = "suspected fraud"
REASON_ALREADY_CAPTURED: Final = "already captured"

# Headers that mark a message an operator sent back (the console's actions set
# the payops- ones; a requeue keeps x-death). RETRY_MARKER_HEADER is how the
# simulator carries that fact from one stage to the next.
ACTION_ID_HEADER: Final = "payops-action-id"
ATTEMPT_HEADER: Final = "payops-attempt"
RETRY_MARKER_HEADER: Final = "operator-retry"
_PROPAGATED_HEADERS: Final = ("trace_id", ACTION_ID_HEADER, ATTEMPT_HEADER, RETRY_MARKER_HEADER)


@dataclass(frozen=True)
class Merchant:
    """A merchant of the demo, with what its payments typically look like."""

    name: str  # a slug: used in routing keys and in the JSON body
    weight: float  # relative popularity
    median_eur: float  # typical basket, in EUR
    currencies: tuple[tuple[str, float], ...]
    price_points: tuple[str, ...] = ()  # fixed prices (subscriptions), if any


MERCHANTS: Final = (
    Merchant("bluebottle-coffee", 22, 4.8, (("USD", 0.7), ("EUR", 0.3))),
    Merchant("cityhop-rides", 18, 14.0, (("EUR", 0.8), ("GBP", 0.2))),
    Merchant(
        "streamly",
        14,
        12.0,
        (("EUR", 0.5), ("USD", 0.3), ("GBP", 0.2)),
        price_points=("7.99", "11.99", "17.99"),
    ),
    Merchant("hansa-grocer", 11, 38.0, (("EUR", 1.0),)),
    Merchant("pixelforge-games", 8, 19.0, (("USD", 0.6), ("EUR", 0.25), ("GBP", 0.15))),
    Merchant("northwind-books", 7, 24.0, (("GBP", 0.7), ("EUR", 0.3))),
    Merchant("lumen-energy", 5, 89.0, (("EUR", 1.0),)),
    Merchant("greenleaf-pharmacy", 4.5, 22.0, (("GBP", 1.0),)),
    Merchant("fjord-fashion", 3.5, 64.0, (("SEK", 0.6), ("DKK", 0.4))),
    Merchant("alpenhaus-hotels", 2.5, 240.0, (("CHF", 0.5), ("EUR", 0.5))),
    Merchant("nordwind-air", 2.0, 310.0, (("EUR", 0.6), ("USD", 0.25), ("GBP", 0.15))),
    Merchant("tandem-bikes", 1.0, 720.0, (("EUR", 0.7), ("PLN", 0.3))),
)

# Rough EUR exchange rates, to turn a typical basket into local amounts.
_EUR_TO: Final = {
    "EUR": 1.0,
    "USD": 1.08,
    "GBP": 0.86,
    "CHF": 0.95,
    "SEK": 11.4,
    "DKK": 7.46,
    "PLN": 4.3,
}

# Well-known, Luhn-valid test card numbers (they look real; they are not).
TEST_CARDS: Final = (
    ("4111111111111111", 3, 30.0),  # Visa
    ("4012888888881881", 3, 15.0),  # Visa
    ("4000056655665556", 3, 10.0),  # Visa debit
    ("5555555555554444", 3, 20.0),  # Mastercard
    ("5105105105105100", 3, 8.0),  # Mastercard
    ("2223003122003222", 3, 7.0),  # Mastercard 2-series
    ("378282246310005", 4, 6.0),  # American Express
    ("6011111111111117", 3, 4.0),  # Discover
)


@dataclass(frozen=True)
class Payment:
    """One payment request as the gateway publishes it."""

    payment_id: str
    merchant: str
    amount: str  # decimal string in major units, e.g. "42.50"
    currency: str
    card_number: str
    card_expiry: str  # MM/YY
    card_cvv: str
    trace_id: str
    created_at: int  # epoch milliseconds

    def body(self) -> dict[str, Any]:
        """The JSON body of the payment request (it includes the card)."""
        return {
            "payment_id": self.payment_id,
            "merchant": self.merchant,
            "amount": self.amount,
            "currency": self.currency,
            "card": {"number": self.card_number, "expiry": self.card_expiry, "cvv": self.card_cvv},
            "created_at": self.created_at,
        }


class PaymentGenerator:
    """Realistic payment requests; the same seed gives the same sequence."""

    def __init__(self, seed: int | None = None, *, expiry_base_year: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._cum_weights = list(itertools.accumulate(m.weight for m in MERCHANTS))
        self._card_weights = [weight for _, _, weight in TEST_CARDS]
        year = time.gmtime().tm_year if expiry_base_year is None else expiry_base_year
        self._year = year % 100

    def next_payment(self, created_at_ms: int) -> Payment:
        """The next payment, created at ``created_at_ms`` (epoch ms)."""
        rng = self._rng
        merchant = rng.choices(MERCHANTS, cum_weights=self._cum_weights)[0]
        codes = [code for code, _ in merchant.currencies]
        currency = rng.choices(codes, weights=[w for _, w in merchant.currencies])[0]
        if merchant.price_points:
            amount = rng.choice(merchant.price_points)
        else:
            value = rng.lognormvariate(math.log(merchant.median_eur), 0.6) * _EUR_TO[currency]
            amount = f"{max(value, 0.5):.2f}"
        number, cvv_digits, _ = rng.choices(TEST_CARDS, weights=self._card_weights)[0]
        expiry = f"{rng.randint(1, 12):02d}/{(self._year + rng.randint(1, 5)) % 100:02d}"
        return Payment(
            payment_id=f"pay_{rng.getrandbits(64):016x}",
            merchant=merchant.name,
            amount=amount,
            currency=currency,
            card_number=number,
            card_expiry=expiry,
            card_cvv=f"{rng.randrange(10**cvv_digits):0{cvv_digits}d}",
            trace_id=f"{rng.getrandbits(128):032x}",
            created_at=created_at_ms,
        )


def status_event(
    payment: Mapping[str, Any], status: str, event_at_ms: int, reason: str | None = None
) -> dict[str, Any]:
    """The JSON body of a status event: the payment's fields, never its card."""
    event: dict[str, Any] = {
        "payment_id": payment.get("payment_id"),
        "merchant": payment.get("merchant"),
        "amount": payment.get("amount"),
        "currency": payment.get("currency"),
        "status": status,
        "created_at": payment.get("created_at"),
        "event_at": event_at_ms,
    }
    if reason is not None:
        event["reason"] = reason
    return event


def is_operator_retry(headers: Mapping[str, Any] | None) -> bool:
    """Whether a message was sent back by an operator (requeue or retry)."""
    if not headers:
        return False
    return any(
        key in headers for key in ("x-death", ACTION_ID_HEADER, ATTEMPT_HEADER, RETRY_MARKER_HEADER)
    )


def parse_payment(body: bytes) -> dict[str, Any] | None:
    """A payment (or status) body as a dict with a ``payment_id``; None when it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("payment_id"), str):
        return None
    return data


def carried_headers(headers: Mapping[str, Any] | None) -> HeadersType:
    """The headers a stage passes on: trace id and the operator's marks."""
    if not headers:
        return {}
    return {key: headers[key] for key in _PROPAGATED_HEADERS if key in headers}


def delivery_count(headers: Mapping[str, Any] | None) -> int:
    """Unsuccessful earlier deliveries of a quorum-queue message."""
    value = (headers or {}).get("x-delivery-count", 0)
    return value if isinstance(value, int) else 0
