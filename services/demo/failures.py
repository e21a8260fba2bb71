"""Why the demo's payments fail: causes with real detail, and a Spring-style recoverer's headers.

A failure's *kind* (acquirer timeout, schema validation, risk engine down,
acquirer outage, settlement retries exhausted) is drawn per payment (see
:mod:`services.demo.simulator`); its *cause* is the text that goes into the
``failed`` event's ``reason``, with the numbers and ids of one occurrence
("acquirer timeout after 3012 ms on acq-7"). Causes of one kind differ only
in numbers and ids, so a fingerprint that strips those puts them in one
group. Every cause is drawn from the payment's own random generator, so a
seeded run repeats them, and stays under the 80 characters the console keeps
of a reason.

The schema-validation failures are dead-lettered the way a Spring AMQP
listener with a ``RepublishMessageRecoverer`` does it: the worker publishes
the message itself, with the recoverer's headers (:func:`spring_recoverer_headers`),
to the dead-letter queue and acks the original. Such a dead letter carries its
cause in ``x-exception-message`` and no ``x-death``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Final

from aio_pika.abc import HeadersType

# Failure kinds; a cause starts with its kind.
ACQUIRER_TIMEOUT: Final = "acquirer timeout"
SCHEMA_INVALID: Final = "schema validation failed"
RISK_DOWN: Final = "risk engine unavailable"
ACQUIRER_OUTAGE: Final = "acquirer outage"
SETTLEMENT_EXHAUSTED: Final = "settlement retries exhausted"
FAILURE_KINDS: Final = (
    (ACQUIRER_TIMEOUT, 0.5),
    (SCHEMA_INVALID, 0.2),
    (RISK_DOWN, 0.3),
)
"""The kinds of the everyday failures (``failure_rate``), with their weights."""
INCIDENT_KINDS: Final = (
    (ACQUIRER_OUTAGE, 0.75),
    (ACQUIRER_TIMEOUT, 0.15),
    (RISK_DOWN, 0.10),
)
"""The kinds of the failures an incident adds (``incident_failure_rate``): the acquirer
refuses connections or answers too late, and the risk engine is down."""

UNREADABLE_BODY: Final = f"{SCHEMA_INVALID}: body is not a JSON payment"
"""The cause of a message whose body is not a payment at all."""

_ACQUIRERS: Final = 9
_RISK_NODES: Final = 3

# Spring AMQP's RepublishMessageRecoverer headers (RepublishMessageRecoverer.X_EXCEPTION_*).
X_EXCEPTION_MESSAGE: Final = "x-exception-message"
X_EXCEPTION_STACKTRACE: Final = "x-exception-stacktrace"
X_ORIGINAL_EXCHANGE: Final = "x-original-exchange"
X_ORIGINAL_ROUTING_KEY: Final = "x-original-routingKey"
SPRING_EXCEPTION: Final = "com.acme.payments.validation.PaymentSchemaException"


def acquirer_timeout(rng: random.Random) -> str:
    """``acquirer timeout after 3012 ms on acq-7``."""
    took_ms, acquirer = rng.randint(2500, 4000), rng.randint(1, _ACQUIRERS)
    return f"{ACQUIRER_TIMEOUT} after {took_ms} ms on acq-{acquirer}"


def schema_invalid(rng: random.Random) -> str:
    """``schema validation failed: amount 12.345 has more than 2 decimals``."""
    amount = f"{rng.randint(1, 499)}.{rng.randint(1, 999):03d}"
    return f"{SCHEMA_INVALID}: amount {amount} has more than 2 decimals"


def risk_down(rng: random.Random) -> str:
    """``risk engine unavailable: HTTP 503 from risk-2 after 1204 ms``."""
    node = rng.randint(1, _RISK_NODES)
    return f"{RISK_DOWN}: HTTP 503 from risk-{node} after {rng.randint(800, 1600)} ms"


def acquirer_outage(rng: random.Random) -> str:
    """``acquirer outage: acq-4 refused the connection (10.20.0.14:8443)``."""
    acquirer = rng.randint(1, _ACQUIRERS)
    address = f"10.20.0.{10 + acquirer}:8443"
    return f"{ACQUIRER_OUTAGE}: acq-{acquirer} refused the connection ({address})"


def settlement_exhausted(attempts: int, rng: random.Random) -> str:
    """``settlement retries exhausted after 4 attempts, last on acq-3``."""
    acquirer = rng.randint(1, _ACQUIRERS)
    return f"{SETTLEMENT_EXHAUSTED} after {attempts} attempts, last on acq-{acquirer}"


def cause_of(kind: str, rng: random.Random) -> str:
    """The cause of a process-worker failure of ``kind`` (:data:`FAILURE_KINDS`,
    :data:`INCIDENT_KINDS`)."""
    makers = {
        ACQUIRER_TIMEOUT: acquirer_timeout,
        SCHEMA_INVALID: schema_invalid,
        RISK_DOWN: risk_down,
        ACQUIRER_OUTAGE: acquirer_outage,
    }
    if kind not in makers:
        raise ValueError(f"not a process-worker failure kind: {kind!r}")
    return makers[kind](rng)


def spring_recoverer_headers(
    headers: Mapping[str, Any] | None,
    cause: str,
    *,
    original_exchange: str,
    original_routing_key: str,
) -> HeadersType:
    """The headers of a message Spring AMQP's ``RepublishMessageRecoverer`` republishes.

    The message's own headers, plus ``x-exception-message`` (the root cause's
    message), ``x-exception-stacktrace``, ``x-original-exchange`` and
    ``x-original-routingKey``, as Spring AMQP 2.x/3.x writes them.
    """
    stacktrace = "\n".join(
        (
            "org.springframework.amqp.rabbit.support.ListenerExecutionFailedException:"
            " Listener method 'public void com.acme.payments.ProcessListener.onPayment"
            "(com.acme.payments.PaymentRequest)' threw exception",
            "\tat org.springframework.amqp.rabbit.listener.adapter.MessagingMessageListenerAdapter"
            ".invokeHandler(MessagingMessageListenerAdapter.java:286)",
            "\tat org.springframework.amqp.rabbit.listener.AbstractMessageListenerContainer"
            ".doInvokeListener(AbstractMessageListenerContainer.java:1663)",
            f"Caused by: {SPRING_EXCEPTION}: {cause}",
            "\tat com.acme.payments.validation.PaymentValidator.validate(PaymentValidator.java:88)",
            "\tat com.acme.payments.ProcessListener.onPayment(ProcessListener.java:57)",
            "\t... 14 common frames omitted",
        )
    )
    return {
        **(headers or {}),
        X_EXCEPTION_STACKTRACE: stacktrace,
        X_EXCEPTION_MESSAGE: cause,
        X_ORIGINAL_EXCHANGE: original_exchange,
        X_ORIGINAL_ROUTING_KEY: original_routing_key,
    }
