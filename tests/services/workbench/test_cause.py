"""Causes and failure groups: where a cause comes from, how causes group, what is masked."""

from __future__ import annotations

import random
import uuid

import pytest

from services.config import FieldPaths
from services.workbench.cause import (
    MAX_CAUSE_CHARS,
    MAX_GROUP_CHARS,
    Cause,
    FlowFailure,
    failure_group,
    message_cause,
    resolve,
)
from services.workbench.codec import MessageRecord
from services.workbench.model import summarize

PAN = "4111111111111111"


def test_causes_that_differ_only_in_numbers_and_ids_are_one_group() -> None:
    assert failure_group("timeout after 3012 ms on acq-7") == "timeout after # ms on acq-#"
    assert failure_group("timeout after 2999 ms on acq-2") == "timeout after # ms on acq-#"
    assert failure_group("schema validation failed: amount") == "schema validation failed: amount"
    assert (
        failure_group("payment pay_17d5570756950439 declined at 2026-12-03T10:02:03.123Z")
        == "payment pay_# declined at #"
    )
    assert failure_group("refund of EUR 12.50 (was 1,000.00) refused") == (
        "refund of EUR # (was #) refused"
    )
    assert failure_group("trace 550e8400-e29b-41d4-a716-446655440000 span deadbeefcafe") == (
        "trace # span #"
    )
    # Words stay words: different causes stay different groups.
    assert failure_group("risk engine unavailable") != failure_group("acquirer unavailable")
    assert failure_group("") == "unknown"


def _variant(rng: random.Random, template: str) -> str:
    """``template`` with every ``{n}``/``{id}``/``{hex}``/``{uuid}``/``{amount}``/``{ts}`` drawn."""
    values = {
        "n": lambda: str(rng.randint(0, 10 ** rng.randint(1, 9))),
        "id": lambda: f"{rng.getrandbits(rng.choice([8, 32, 64])):x}{rng.randint(0, 9)}",
        "hex": lambda: f"{rng.getrandbits(64) | (1 << 63):x}",
        "uuid": lambda: str(uuid.UUID(int=rng.getrandbits(128))),
        "amount": lambda: f"{rng.uniform(0, 99999):.2f}",
        "ts": lambda: (
            f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        ),
    }
    out = template
    for name, draw in values.items():
        while "{" + name + "}" in out:
            out = out.replace("{" + name + "}", draw(), 1)
    return out


TEMPLATES = [
    "acquirer timeout after {n} ms on acq-{id}",
    "payment pay_{id} declined by issuer {n} at {ts}",
    "order tx{id} failed",
    "HTTP {n} from risk engine (request {uuid})",
    "amount {amount} EUR exceeds limit {amount} for merchant m-{id}",
    "lock {hex} held by worker {n} since {ts}",
    "schema validation failed: amount",
]


def test_property_any_numbers_and_ids_in_a_cause_give_the_same_group() -> None:
    rng = random.Random(1010)
    groups_per_template = []
    for template in TEMPLATES:
        groups = {failure_group(_variant(rng, template)) for _ in range(300)}
        assert len(groups) == 1, (template, sorted(groups)[:5])
        group = groups.pop()
        assert not any(c.isdigit() for c in group), group
        groups_per_template.append(group)
    # ... and different templates never collapse into one group.
    assert len(set(groups_per_template)) == len(TEMPLATES)


def test_property_a_group_is_stable_bounded_and_never_holds_a_card_number() -> None:
    rng = random.Random(77)
    alphabet = "abcXYZ 0123456789-_.:/#*()[]{}é€\t\n"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        if rng.random() < 0.2:
            text += f" card {PAN} "
        cause = Cause.of(text, "message")
        assert len(cause.text) <= MAX_CAUSE_CHARS
        assert len(cause.group) <= MAX_GROUP_CHARS
        assert PAN not in cause.text and PAN not in cause.group
        assert "\n" not in cause.text and "\n" not in cause.group
        assert failure_group(cause.group) == cause.group  # normalising twice changes nothing


def test_card_numbers_in_causes_are_masked() -> None:
    cause = Cause.of(f"card {PAN} refused, cvv=123", "flow")
    assert PAN not in cause.text
    assert "411111******1111" in cause.text
    assert "123" not in cause.text
    spaced = Cause.of("card 4111 1111 1111 1111 refused", "message")
    assert "4111 1111 1111 1111" not in spaced.text and "1111 1111" not in spaced.text


def test_message_cause_from_profile_headers_body_paths_and_framework_headers() -> None:
    body = {"error": {"message": "body says no"}}
    headers: dict[str, object] = {
        "x-exception-message": b"Listener threw: acquirer down",
        "custom-error": "profile header",
    }
    assert message_cause(headers, body, ["custom-error"], ["error.message"]) == "profile header"
    assert message_cause(headers, body, [], ["error.message"]) == "body says no"
    assert message_cause(headers, body) == "Listener threw: acquirer down"
    assert message_cause({"MT-Fault-Message": "mt fault"}, None) == "mt fault"
    assert message_cause({"NServiceBus.ExceptionInfo.Message": "nsb fault"}, None) == "nsb fault"
    trace = "\njava.lang.IllegalStateException: risk engine unavailable\n\tat com.x.Y(Y.java:1)"
    assert message_cause({"x-exception-stacktrace": trace}, None) == (
        "java.lang.IllegalStateException: risk engine unavailable"
    )
    assert message_cause({"x-exception-message": "  "}, {"error": 3}, [], ["error"]) is None


def test_the_flow_comes_first_then_the_message_then_the_dead_letter_reason() -> None:
    headers = {"x-exception-message": "message cause"}
    flow = FlowFailure("acquirer timeout after 3012 ms on acq-7", 1)
    assert resolve(headers, None, "rejected", flow=flow) == Cause(
        "acquirer timeout after 3012 ms on acq-7", "flow", "acquirer timeout after # ms on acq-#"
    )
    assert resolve(headers, None, "rejected", flow=FlowFailure(" ", 1)).source == "message"
    assert resolve(headers, None, "rejected").source == "message"
    assert resolve({}, None, "expired") == Cause("expired", "dead_letter", "expired")
    assert resolve({}, None, "") == Cause("unknown", "dead_letter", "unknown")


@pytest.mark.parametrize(
    ("headers", "fields", "expected"),
    [
        ({"x-exception-message": "Spring says no"}, FieldPaths(), ("Spring says no", "message")),
        ({}, FieldPaths(cause_paths=("failure.detail",)), ("detail in body", "message")),
        ({"my-error": b"mine"}, FieldPaths(cause_headers=("my-error",)), ("mine", "message")),
        ({}, FieldPaths(), ("rejected", "dead_letter")),
    ],
)
def test_summarize_keeps_the_message_cause(
    headers: dict[str, object], fields: FieldPaths, expected: tuple[str, str]
) -> None:
    record = MessageRecord(
        body=b'{"payment_id": "pay_1", "failure": {"detail": "detail in body"}}',
        properties={},
        headers={"x-death": [{"count": 1, "reason": "rejected", "queue": "q"}], **headers},
        exchange="",
        routing_key="q",
    )
    summary = summarize("dlq", "e1", record, fields, 1)
    assert (summary.cause, summary.cause_source) == expected
    assert summary.failure_group == failure_group(expected[0])
