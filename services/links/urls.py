"""Broker and Redis URLs as they may be shown or logged: no password, no credentials.

Parsed with ``yarl`` (aio-pika's own URL library), so IPv6 hosts keep their
brackets (``amqp://u:***@[::1]:5672/``). A URL that does not parse is shown as
``<unparseable URL>``, never as typed (it may hold a password).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote, urlencode

from yarl import URL

UNPARSEABLE: Final = "<unparseable URL>"
_SECRET_QUERY: Final = re.compile(r"pass|secret|token|auth|cred|key", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; user, host and port kept."""
    try:
        parsed = URL(url)
    except ValueError:
        return UNPARSEABLE
    if parsed.raw_password is None:
        return url
    return str(parsed.with_password("***"))


def url_without_credentials(url: str) -> str:
    """``url`` with no user, no password, no fragment and no secret-looking query parameter."""
    try:
        parsed = URL(url)
        port = parsed.explicit_port
    except ValueError:
        return UNPARSEABLE
    host = parsed.host_subcomponent or ""
    netloc = f"{host}:{port}" if port is not None else host
    query = urlencode([(k, v) for k, v in parsed.query.items() if not _SECRET_QUERY.search(k)])
    text = f"{parsed.scheme}://{netloc}{parsed.relative().raw_path}"
    return f"{text}?{query}" if query else text


def host_port(url: str, default_port: int) -> str:
    """``host:port`` of a URL, for messages (``[::1]:5672`` for an IPv6 host)."""
    try:
        parsed = URL(url)
        port = parsed.explicit_port or default_port
    except ValueError:
        return UNPARSEABLE
    return f"{parsed.host_subcomponent or 'localhost'}:{port}"


def url_user(url: str, default: str) -> str:
    """The user name in ``url`` (percent-decoded), or ``default`` when it names none."""
    try:
        return URL(url).user or default
    except ValueError:
        return default


def url_password(url: str) -> str | None:
    """The password in ``url`` as written (percent-encoded), or None."""
    try:
        return URL(url).raw_password or None
    except ValueError:
        return None


def scrub(text: str, password: str | None) -> str:
    """Replace ``password`` (raw and percent-decoded) in ``text`` with ``***``."""
    if password:
        for secret in {password, unquote(password)}:
            if secret:
                text = text.replace(secret, "***")
    return text
