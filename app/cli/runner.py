"""Running a command: its profile, its Redis, and the message and exit code of each failure.

A command body raises :class:`Unreachable` (exit 3), :class:`LoginRefused`
(exit 4), :class:`Refused` (exit 2) or :class:`Failed` (exit 1) with a message
for people; :func:`run_command`
prints it as ``payops: <message>`` on stderr and returns the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from app.cli import exit_codes
from services.config import Profile, load_profile
from services.links.endpoints import node_target
from services.links.redis_client import make_redis_client
from services.links.tls import describe_tls_error
from services.links.urls import host_port, url_password, url_user
from services.workbench.actions.pika_link import AmqpLoginRefused, AmqpUnavailable
from services.workbench.actions.service import ActionRefused


class Unreachable(Exception):
    """RabbitMQ or Redis could not be reached (exit 3)."""

    @classmethod
    def at(cls, service: str, where: str, exc: BaseException) -> Unreachable:
        """``cannot reach Redis at redis://host:6379/0: <why>``."""
        return cls(f"cannot reach {service} at {where}: {exc}")


class LoginRefused(Exception):
    """RabbitMQ or Redis answered and refused the login (exit 4); never names the password."""

    @classmethod
    def amqp(cls, profile: Profile) -> LoginRefused:
        """``RabbitMQ at host:5672 refused the login for user ops``."""
        where = node_target(profile.amqp_url)
        user = url_user(profile.amqp_url, "guest")
        return cls(
            f"RabbitMQ at {where} refused the login for user {user}:"
            " check the user and password of amqp_url (or PAYOPS_AMQP_URL)"
        )

    @classmethod
    def redis(cls, profile: Profile) -> LoginRefused:
        """``Redis at host:6379 refused the login for user default`` (or: asks for one)."""
        where = host_port(profile.redis_url, 6379)
        if url_password(profile.redis_url) is None:
            return cls(
                f"Redis at {where} requires a password and redis_url gives none:"
                " put it in redis_url (or PAYOPS_REDIS_URL) as redis://:PASSWORD@host"
            )
        user = url_user(profile.redis_url, "default")
        return cls(
            f"Redis at {where} refused the login for user {user}:"
            " check the user and password of redis_url (or PAYOPS_REDIS_URL)"
        )


def amqp_failure(profile: Profile, exc: BaseException) -> Exception:
    """What an AMQP connect error of aio-pika means: a refused login or an unreachable broker."""
    import aiormq.exceptions

    refused = (
        aiormq.exceptions.AuthenticationError,
        aiormq.exceptions.ProbableAuthenticationError,
        AmqpLoginRefused,
    )
    if isinstance(exc, refused):
        return LoginRefused.amqp(profile)
    endpoint = profile.amqp_endpoint
    tls_failure = describe_tls_error(
        exc, "RabbitMQ", endpoint.tls, node_target(endpoint.url), connecting=True
    )
    if tls_failure is not None:
        return Unreachable(tls_failure)
    return Unreachable.at("RabbitMQ", profile.amqp_display_url, exc)


class Refused(Exception):
    """The command refuses to go on (exit 2)."""


class Failed(Exception):
    """The command ran and failed (exit 1)."""


def profile_from(args: argparse.Namespace) -> Profile:
    """The profile chosen by --config/--profile and the environment."""
    return load_profile(getattr(args, "config", None), getattr(args, "profile", None))


def fail(message: object, code: int) -> int:
    """Print ``payops: <message>`` on stderr; ``code``."""
    print(f"payops: {message}", file=sys.stderr)
    return code


@contextlib.asynccontextmanager
async def redis_client(profile: Profile) -> AsyncIterator[aioredis.Redis]:
    """The profile's Redis, answering a PING (else :class:`Unreachable`, or
    :class:`LoginRefused` when it refuses the password); closed afterwards."""
    settings = profile.redis_settings
    client = make_redis_client(settings, socket_connect_timeout=5)
    try:
        try:
            await client.ping()
        except redis.exceptions.AuthenticationError:
            raise LoginRefused.redis(profile) from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            tls_failure = describe_tls_error(
                exc, "Redis", settings.tls, settings.target, connecting=True
            )
            if tls_failure is not None:
                raise Unreachable(tls_failure) from None
            where = settings.target if settings.mode == "sentinel" else profile.redis_display_url
            raise Unreachable.at("Redis", where, exc) from None
        yield client
    finally:
        await client.aclose()


def run_command(
    profile: Profile, work: Coroutine[Any, Any, int], *, interrupted: str | None = None
) -> int:
    """Run ``work`` on a new event loop: its exit code, or the one of its failure.

    Ctrl+C prints ``interrupted`` and exits 130 when given; otherwise it
    reaches the caller (``main`` exits 130 quietly).
    """
    try:
        return asyncio.run(work)
    except AmqpLoginRefused:
        return fail(LoginRefused.amqp(profile), exit_codes.LOGIN_REFUSED)
    except LoginRefused as exc:
        return fail(exc, exit_codes.LOGIN_REFUSED)
    except (Unreachable, AmqpUnavailable) as exc:
        return fail(exc, exit_codes.UNAVAILABLE)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        return fail(f"lost Redis at {profile.redis_display_url}: {exc}", exit_codes.UNAVAILABLE)
    except (ActionRefused, Refused) as exc:
        return fail(exc, exit_codes.USAGE)
    except Failed as exc:
        return fail(exc, exit_codes.FAILED)
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        return fail(interrupted, exit_codes.INTERRUPTED)
