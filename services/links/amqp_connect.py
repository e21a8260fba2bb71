"""The one place AMQP connections are made from an :class:`~services.links.endpoints.AmqpEndpoint`,
for aio-pika and pika alike: the first node that answers, TLS included."""

from __future__ import annotations

from typing import Any

import aio_pika
import pika
from aio_pika.abc import AbstractConnection

from services.links.endpoints import AmqpEndpoint, AmqpTarget, amqp_uses_tls, as_endpoint
from services.links.tls import TlsFiles


async def connect_aio_pika(
    target: AmqpTarget, *, timeout: float | None = None, **options: Any
) -> AbstractConnection:
    """An aio-pika connection to the first node that answers (``options`` go to
    :func:`aio_pika.connect`); the last node's failure when none does."""
    endpoint = as_endpoint(target)
    context = endpoint.ssl_context()
    failure: BaseException | None = None
    for url in endpoint.urls:
        try:
            connection: AbstractConnection = await aio_pika.connect(
                url, timeout=timeout, ssl_context=context, **options
            )
            return connection
        except Exception as exc:
            failure = exc
    assert failure is not None  # an endpoint has at least one URL
    raise failure


def pika_parameters(endpoint: AmqpEndpoint, url: str) -> pika.URLParameters:
    """pika's parameters for the node at ``url``, with TLS when it is ``amqps://``.

    Raises ValueError (and friends) for a URL pika cannot parse, :class:`ssl.SSLError`
    or :class:`OSError` for TLS files it cannot load.
    """
    params = pika.URLParameters(url)
    if amqp_uses_tls(url):
        context = (endpoint.tls or TlsFiles()).ssl_context()
        params.ssl_options = pika.SSLOptions(context, params.host)
    return params
