"""The ``payops`` command line: the console and the headless operations."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import redis.exceptions

from app.cli import arg_types, exit_codes
from app.cli.collect import add_collect_command
from app.cli.dlq import add_dlq_commands
from app.cli.logging_setup import setup_logging
from app.cli.progress import overwrite_line
from app.cli.runner import (
    LoginRefused,
    Unreachable,
    amqp_failure,
    fail,
    profile_from,
    redis_client,
)
from app.cli.snapshot import add_snapshot_command
from app.cli.trace import add_trace_command
from services.config import ConfigError, Profile, user_config_path
from services.links.urls import redact_url
from services.time_range import format_local_time

if TYPE_CHECKING:
    from services.demo.simulator import SimulationOptions

log = logging.getLogger("payops")

Handler = Callable[[argparse.Namespace], int]


def _common_options() -> argparse.ArgumentParser:
    """--config, --profile and -v, accepted by every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML config file (default: $PAYOPS_CONFIG, then the user config file)",
    )
    common.add_argument(
        "--profile",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="profile in the config file (default: $PAYOPS_PROFILE, then the file's default)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    return common


def seconds_until(moment: dt.time, now: dt.datetime | None = None) -> float:
    """Seconds from ``now`` (local) to ``moment`` today; ValueError when it has passed."""
    now = now or dt.datetime.now().astimezone()
    target = now.replace(
        hour=moment.hour, minute=moment.minute, second=moment.second, microsecond=0
    )
    if target < now:
        raise ValueError(f"{moment.isoformat()} has already passed today")
    return (target - now).total_seconds()


def _add_simulation_options(parser: argparse.ArgumentParser, *, with_duration: bool) -> None:
    parser.add_argument(
        "--rate",
        type=arg_types.positive(float),
        default=20.0,
        help="payments per second (default 20)",
    )
    parser.add_argument(
        "--failure-rate",
        type=arg_types.fraction,
        default=0.03,
        help="share of payments that fail, e.g. 0.03 or 3%% (default 3%%)",
    )
    parser.add_argument(
        "--incident", action="store_true", help="stage an acquirer outage: a burst of failures"
    )
    parser.add_argument(
        "--incident-after",
        type=arg_types.not_negative,
        default=30.0,
        metavar="SECONDS",
        help="when the incident starts, after the start (default 30 s)",
    )
    parser.add_argument(
        "--incident-at",
        type=arg_types.clock_time,
        default=None,
        metavar="HH:MM",
        help="start the incident at this time of day (local); implies --incident",
    )
    parser.add_argument(
        "--incident-duration",
        type=arg_types.positive(float),
        default=60.0,
        metavar="SECONDS",
        help="how long the incident lasts (default 60 s)",
    )
    if with_duration:
        parser.add_argument(
            "--duration",
            type=arg_types.positive(float),
            default=None,
            metavar="SECONDS",
            help="stop after this long (default: until Ctrl+C)",
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="random seed, for repeatable runs"
        )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="payops",
        description="PayOps Console: watch payment flows on RabbitMQ and handle failed payments.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    console = sub.add_parser("console", parents=[common], help="open the console (the default)")
    console.add_argument(
        "--read-only", action="store_true", help="disable every action (requeue, retry, cancel)"
    )
    console.set_defaults(handler=_cmd_console)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="declare the demo topology, start the simulator and open the console",
    )
    _add_simulation_options(demo, with_duration=False)
    demo.set_defaults(handler=_cmd_demo)

    simulate = sub.add_parser(
        "simulate", parents=[common], help="run the demo payment flow headless"
    )
    _add_simulation_options(simulate, with_duration=True)
    simulate.set_defaults(handler=_cmd_simulate)

    topology = sub.add_parser("topology", parents=[common], help="the demo topology")
    topology_sub = topology.add_subparsers(dest="topology_command", metavar="ACTION", required=True)
    declare = topology_sub.add_parser(
        "declare", parents=[common], help="declare the demo exchanges and queues"
    )
    declare.set_defaults(handler=_cmd_topology_declare)

    config = sub.add_parser("config", parents=[common], help="show the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_sub.add_parser(
        "show", parents=[common], help="print the chosen profile, secrets removed"
    )
    show.set_defaults(handler=_cmd_config_show)
    path = config_sub.add_parser("path", parents=[common], help="print the user config file path")
    path.set_defaults(handler=_cmd_config_path)
    add_dlq_commands(sub, common)
    add_snapshot_command(sub, common)
    add_collect_command(sub, common)
    add_trace_command(sub, common)
    return parser


def amqp_unavailable(profile: Profile, exc: BaseException) -> int:
    """Say (on a line of its own) that RabbitMQ cannot be reached (exit 3) or refused
    the login (exit 4)."""
    print(file=sys.stderr)
    problem = amqp_failure(profile, exc)
    code = exit_codes.LOGIN_REFUSED if isinstance(problem, LoginRefused) else exit_codes.UNAVAILABLE
    return fail(problem, code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``payops`` and ``python -m app``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    handler: Handler = getattr(args, "handler", _cmd_console)
    try:
        return handler(args)
    except ConfigError as exc:
        return fail(exc, exit_codes.USAGE)
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED


def _cmd_console(args: argparse.Namespace) -> int:
    from app.console import run_console  # Qt is loaded only for the GUI

    return run_console(
        getattr(args, "config", None),
        getattr(args, "profile", None),
        demo_simulator=None,
        read_only=getattr(args, "read_only", False),
    )


def _simulation_options(args: argparse.Namespace) -> SimulationOptions:
    from services.demo.simulator import SimulationOptions

    incident_after_s = args.incident_after
    if args.incident_at is not None:
        try:
            incident_after_s = seconds_until(args.incident_at)
        except ValueError as exc:
            raise ConfigError(f"--incident-at: {exc}") from None
    return SimulationOptions(
        rate=args.rate,
        failure_rate=args.failure_rate,
        duration_s=getattr(args, "duration", None),
        incident=args.incident or args.incident_at is not None,
        incident_after_s=incident_after_s,
        incident_duration_s=args.incident_duration,
        seed=getattr(args, "seed", None),
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from app.console import run_console
    from services.demo.topology import declare_demo_topology_at

    profile = profile_from(args)
    _simulation_options(args)  # refuse a bad option (an --incident-at that has passed) now
    try:
        asyncio.run(declare_demo_topology_at(profile.amqp_endpoint))
    except OSError as exc:
        return amqp_unavailable(profile, exc)
    simulator = [
        sys.executable,
        "-m",
        "app",
        "simulate",
        "--rate",
        str(args.rate),
        "--failure-rate",
        str(args.failure_rate),
        "--incident-after",
        str(args.incident_after),
        "--incident-duration",
        str(args.incident_duration),
    ]
    if args.incident:
        simulator.append("--incident")
    if args.incident_at is not None:
        simulator += ["--incident-at", args.incident_at.isoformat()]
    for option in ("config", "profile"):
        if getattr(args, option, None):
            simulator += [f"--{option}", getattr(args, option)]
    print(f"payops: demo on {profile.amqp_display_url} (profile '{profile.name}')", file=sys.stderr)
    return run_console(
        getattr(args, "config", None), getattr(args, "profile", None), demo_simulator=simulator
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    from services.demo.simulator import SimulationStats, run_simulation

    profile = profile_from(args)
    options = _simulation_options(args)

    def progress(stats: SimulationStats) -> None:
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_status.items()))
        overwrite_line(
            f"{stats.elapsed_s:6.0f} s  published {stats.published}  "
            f"dead-lettered {stats.dead_lettered_total}  {by_status}"
        )

    async def simulate() -> SimulationStats:
        # The workers record captured payments in the profile's Redis (idempotency).
        async with redis_client(profile) as client:
            return await run_simulation(
                profile.amqp_endpoint,
                options,
                on_progress=progress,
                redis=client,
                redis_prefix=profile.redis_prefix,
            )

    print(
        f"payops: simulating on {profile.amqp_display_url}; Ctrl+C to stop",
        file=sys.stderr,
    )
    if options.incident:
        begins = time.time() + options.incident_after_s
        ends = begins + options.incident_duration_s
        print(
            f"payops: incident (acquirer outage) from {format_local_time(begins, date=False)}"
            f" to {format_local_time(ends, date=False)}",
            file=sys.stderr,
        )
    try:
        asyncio.run(simulate())
    except LoginRefused as exc:
        return fail(exc, exit_codes.LOGIN_REFUSED)
    except Unreachable as exc:
        return fail(exc, exit_codes.UNAVAILABLE)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        print(file=sys.stderr)
        return fail(f"lost Redis at {profile.redis_display_url}: {exc}", exit_codes.UNAVAILABLE)
    except OSError as exc:
        return amqp_unavailable(profile, exc)
    except KeyboardInterrupt:
        print("\npayops: simulation stopped", file=sys.stderr)
        return exit_codes.OK
    print(file=sys.stderr)
    return exit_codes.OK


def _cmd_topology_declare(args: argparse.Namespace) -> int:
    from services.demo.topology import declare_demo_topology_at

    profile = profile_from(args)
    try:
        topology = asyncio.run(declare_demo_topology_at(profile.amqp_endpoint))
    except OSError as exc:
        return amqp_unavailable(profile, exc)
    print(f"declared the demo topology on {profile.amqp_display_url}:")
    print(topology.describe())
    return exit_codes.OK


_SHOWN_APART: Final = frozenset({"name", "source", "alert_rules", "failure_group_alert", "fields"})
"""Profile fields ``config show`` prints in a form of their own (a header, the rules)."""


def _setting(profile: Profile, name: str) -> str:
    """``name = value`` as in force, with a comment where the value is a default's."""
    from services.workbench.actions.service import default_operator

    value = getattr(profile, name)
    if name in ("amqp_url", "redis_url"):
        value = profile.amqp_display_url if name == "amqp_url" else profile.redis_display_url
    if name == "amqp_urls":
        value = [redact_url(url) for url in value]
    if value is None and ("tls_" in name or name == "redis_sentinel_master"):
        return f"{name} = ''  # not set"
    if name == "tap_exchanges":
        value = [str(binding) for binding in value]
    if name == "operator" and value is None:
        return f"operator = {default_operator(profile)!r}  # not set: the OS user"
    if name == "cancel_exchange" and value is None:
        return "cancel_exchange = ''  # not set: cancel publishes no event"
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return f"{name} = {str(value).lower()}"
    if isinstance(value, float):
        return f"{name} = {value:g}"
    return f"{name} = {value!r}"


def _cmd_config_show(args: argparse.Namespace) -> int:
    profile = profile_from(args)
    print(f"# profile '{profile.name}' from {profile.source}")
    for item in dataclasses.fields(profile):
        if item.name not in _SHOWN_APART:
            print(_setting(profile, item.name))
    for name, value in vars(profile.fields).items():
        print(f"fields.{name} = {value!r}")
    if profile.cancel_exchange is None:
        print("# cancel: marks entries cancelled and publishes no event")
    else:
        print(
            f"# cancel: publishes payment.cancelled to exchange '{profile.cancel_exchange}'"
            f" with routing key '{profile.cancel_routing_key}'"
        )
    origin = "defaults" if profile.alert_rules is None else "configured"
    print(f"# alert rules ({origin})")
    for rule in (*profile.alerts, profile.failure_group_alert):
        if rule is None:
            print("alert new_failure_group: off")
            continue
        settings = ", ".join(
            f"{key}={value!r}" for key, value in vars(rule).items() if key != "name"
        )
        print(f"alert {rule.name}: {settings}")
    return exit_codes.OK


def _cmd_config_path(args: argparse.Namespace) -> int:
    print(user_config_path())
    return exit_codes.OK
