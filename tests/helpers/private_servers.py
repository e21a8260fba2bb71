"""A RabbitMQ node and a Redis server of a test's own, to kill, restart and fill up.

Fault tests never touch the shared servers on 5672 and 6379: each starts its
own on free ports, with its data under the test's temporary folder, so a
``kill -9`` and a restart keep what the server had written to disk (quorum
queues, durable queues with persistent messages, Redis AOF when asked for).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from tests.helpers.tcp_proxy import free_port

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def servers_available() -> bool:
    """Whether this machine can start private servers (RabbitMQ and Redis installed)."""
    return Path(RABBITMQ_SERVER).exists() and shutil.which("redis-server") is not None


def _wait_port(port: int, timeout_s: float, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it listened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout_s:.0f} s")


def _kill_group(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    """Signal the server's whole process group and wait until every process in it is gone."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the script is gone; its children may not be yet
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise RuntimeError(f"process group {process.pid} outlived {sig.name} by 30 s")


@dataclass(frozen=True)
class ServerTls:
    """A server's TLS files: its certificate and key, and the CA its clients must be
    signed by (clients without a certificate are refused)."""

    cert: Path
    key: Path
    ca: Path


class PrivateRedis:
    """``redis-server`` on a free port; ``extra`` are more command-line settings.

    With ``tls``, it also listens with TLS on :attr:`tls_port` (mutual TLS: clients
    need a certificate signed by ``tls.ca``).
    """

    def __init__(
        self,
        directory: Path,
        *extra: str,
        port: int | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.tls = tls
        self.tls_port = free_port() if tls else None
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def tls_url(self) -> str:
        """The TLS listener (``rediss://``)."""
        assert self.tls_port is not None, "started without tls"
        return f"rediss://127.0.0.1:{self.tls_port}/0"

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            "--tls-port", str(self.tls_port), "--tls-cert-file", str(self.tls.cert),
            "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
            "--tls-auth-clients", "yes",
        ]  # fmt: skip

    def start(self) -> None:
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--save", "", "--appendonly", "no",
            *self._tls_args(), *self.extra,
        ]  # fmt: skip
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait_port(self.port, 20, "redis-server", self.process)
        if self.tls_port is not None:
            _wait_port(self.tls_port, 20, "redis-server (TLS)", self.process)

    def kill(self) -> None:
        """``kill -9``: whatever was not on disk is gone."""
        _kill_group(self.process, signal.SIGKILL)

    def stop(self) -> None:
        _kill_group(self.process, signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()


class PrivateRabbit:
    """A RabbitMQ node of its own (name, ports, data folder) on the machine's Erlang.

    The node keeps its name and data folder across :meth:`kill` and
    :meth:`start`, so durable queues and quorum queues come back.
    """

    def __init__(
        self, directory: Path, *, port: int | None = None, tls: ServerTls | None = None
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.dist_port = free_port()
        self.tls_port = free_port() if tls else None
        self.nodename = f"payops-test-{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        lines = [f"listeners.tcp.local = 127.0.0.1:{self.port}", "loopback_users = none"]
        if tls is not None:  # mutual TLS: a client without a certificate of ``tls.ca`` is refused
            lines += [
                f"listeners.ssl.default = 127.0.0.1:{self.tls_port}",
                f"ssl_options.cacertfile = {tls.ca}",
                f"ssl_options.certfile = {tls.cert}",
                f"ssl_options.keyfile = {tls.key}",
                "ssl_options.verify = verify_peer",
                "ssl_options.fail_if_no_peer_cert = true",
            ]
        (directory / "rabbitmq.conf").write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def tls_url(self) -> str:
        """The TLS listener (``amqps://``)."""
        assert self.tls_port is not None, "started without tls"
        return f"amqps://guest:guest@127.0.0.1:{self.tls_port}/"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.directory / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.directory / "log"),
            RABBITMQ_CONFIG_FILE=str(self.directory / "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.directory / "enabled_plugins"),
            RABBITMQ_ENABLED_PLUGINS="",
        )
        return env

    def start(self, timeout_s: float = 90) -> None:
        log = (self.directory / "server.out").open("ab")
        self.process = subprocess.Popen(
            [RABBITMQ_SERVER],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.port, timeout_s, f"RabbitMQ node {self.nodename}", self.process)
        # The listener opens before the vhosts and queues have recovered.
        self.ctl("await_startup", "--timeout", str(int(timeout_s)))
        if self.tls_port is not None:
            _wait_port(self.tls_port, timeout_s, f"{self.nodename} (TLS)", self.process)

    def is_running(self) -> bool:
        """Whether the node's process is alive."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """``kill -9`` of the whole node: unacked deliveries go back to their queues."""
        _kill_group(self.process, signal.SIGKILL)

    def stop(self) -> None:
        _kill_group(self.process, signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()

    def ctl(self, *args: str) -> str:
        """Run ``rabbitmqctl`` against this node and return what it printed."""
        done = subprocess.run(
            [RABBITMQCTL, "-n", self.nodename, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout


class PrivateRabbitCluster:
    """A RabbitMQ cluster of ``size`` private nodes on this machine (``name@localhost``, own
    ports and data folders, the user's Erlang cookie): the others join the first with
    ``rabbitmqctl join_cluster``. A node keeps its membership across :meth:`PrivateRabbit.kill`
    and :meth:`PrivateRabbit.start`."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.nodes = [PrivateRabbit(directory / f"node-{n}") for n in range(size)]

    @property
    def urls(self) -> list[str]:
        """Every node's AMQP URL, the first node's first."""
        return [node.url for node in self.nodes]

    def start(self, timeout_s: float = 180) -> None:
        first, *others = self.nodes
        first.start(timeout_s)
        for node in others:
            node.start(timeout_s)
            node.ctl("stop_app")
            node.ctl("reset")
            node.ctl("join_cluster", first.nodename)
            node.ctl("start_app")
            node.ctl("await_startup", "--timeout", str(int(timeout_s)))
        self.wait_running(len(self.nodes), timeout_s)

    def running(self, via: PrivateRabbit | None = None) -> list[str]:
        """The names of the nodes the cluster runs on now, as ``via`` (a running node) sees."""
        node = via or next(n for n in self.nodes if n.is_running())
        status = json.loads(node.ctl("cluster_status", "--formatter", "json"))
        return sorted(status.get("running_nodes", []))

    def wait_running(self, count: int, timeout_s: float = 120) -> None:
        """Until ``count`` nodes run in the cluster."""
        deadline = time.monotonic() + timeout_s
        while len(self.running()) != count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not run on {count} nodes in {timeout_s} s")
            time.sleep(0.5)

    def node_named(self, name: str) -> PrivateRabbit:
        return next(node for node in self.nodes if node.nodename == name)

    def leader_of(self, queue: str, vhost: str = "/") -> PrivateRabbit:
        """The node that leads quorum queue ``queue`` now."""
        node = next(n for n in self.nodes if n.is_running())
        rows = json.loads(
            node.ctl("list_queues", "-p", vhost, "name", "leader", "--formatter", "json")
        )
        leader = next(row["leader"] for row in rows if row["name"] == queue)
        return self.node_named(leader)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


class PrivateRedisCluster:
    """A Redis Cluster of ``masters`` private ``redis-server`` nodes (no replicas), its
    slots spread by ``redis-cli --cluster create``."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        settings = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        settings += ["--cluster-node-timeout", "2000"]
        self.nodes = [
            PrivateRedis(directory / f"node-{n}", *settings, "--cluster-port", str(free_port()))
            for n in range(masters)
        ]

    @property
    def url(self) -> str:
        """The first node: a seed the client discovers the others from."""
        return self.nodes[0].url

    def start(self, timeout_s: float = 30) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:  # every node must see every slot served
            while "cluster_state:ok" not in self._cluster_info(node.port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster was not ready within {timeout_s:.0f} s")
                time.sleep(0.05)

    @staticmethod
    def _cluster_info(port: int) -> str:
        return _redis_cli(port, "cluster", "info")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class PrivateSentinel:
    """A private Redis master with ``replicas`` replicas (one by default), watched by one
    ``redis-sentinel`` (quorum 1) under the name ``master_name``; it fails over about a
    second after the master stops answering."""

    def __init__(self, directory: Path, master_name: str = "payops", replicas: int = 1) -> None:
        self.master_name = master_name
        self.directory = directory
        self.master = PrivateRedis(directory / "master")
        self.replicas = [
            PrivateRedis(
                directory / ("replica" if n == 0 else f"replica-{n}"),
                "--replicaof",
                "127.0.0.1",
                str(self.master.port),
            )
            for n in range(replicas)
        ]
        self.replica = self.replicas[0]
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def sentinel(self) -> str:
        """``host:port`` of the sentinel."""
        return f"127.0.0.1:{self.port}"

    @property
    def servers(self) -> list[PrivateRedis]:
        """The master first, then the replicas."""
        return [self.master, *self.replicas]

    def start(self, timeout_s: float = 30) -> None:
        self.master.start()
        for replica in self.replicas:
            replica.start()
        self.wait_for_replicas(len(self.replicas), timeout_s)
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {self.master_name} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.master_name} 1000\n"
            f"sentinel failover-timeout {self.master_name} 10000\n"
        )
        log = (self.directory / "sentinel.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", str(config), "--sentinel"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.port, timeout_s, "redis-sentinel", self.process)
        self._wait_for(
            lambda: f"slaves={len(self.replicas)}" in _redis_cli(self.port, "info", "sentinel"),
            timeout_s,
            "the sentinel to know the replicas",
        )

    def connected_replicas(self, server: PrivateRedis | None = None) -> int:
        """How many replicas are connected to ``server`` (the master) and in sync."""
        info = _redis_cli((server or self.master).port, "info", "replication")
        return sum(
            1 for line in info.splitlines() if line.startswith("slave") and "state=online" in line
        )

    def wait_for_replicas(
        self, count: int, timeout_s: float = 30, server: PrivateRedis | None = None
    ) -> None:
        """Until ``count`` replicas are connected to ``server`` (the master) and in sync."""
        self._wait_for(
            lambda: self.connected_replicas(server) == count,
            timeout_s,
            f"{count} replica(s) to be in sync",
        )

    def master_port(self) -> int | None:
        """The port of the master the sentinel names now."""
        reply = _redis_cli(self.port, "sentinel", "get-master-addr-by-name", self.master_name)
        lines = reply.split()
        return int(lines[1]) if len(lines) == 2 else None

    def current_master(self) -> PrivateRedis:
        """The server the sentinel names as the master now."""
        port = self.master_port()
        return next(server for server in self.servers if server.port == port)

    @staticmethod
    def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(0.05)

    def wait_for_failover(self, timeout_s: float = 30) -> PrivateRedis:
        """Until the sentinel names a replica as the master, is connected to it (clients
        are told "no master" until then) and it accepts writes; that replica."""
        ports = {replica.port: replica for replica in self.replicas}

        def promoted() -> bool:
            state = _redis_cli(self.port, "sentinel", "master", self.master_name).split("\n")
            flags = state[state.index("flags") + 1] if "flags" in state else ""
            port = self.master_port()
            return (
                port in ports
                and flags == "master"
                and "role:master" in _redis_cli(port, "info", "replication")
            )

        self._wait_for(promoted, timeout_s, "the sentinel to promote a replica")
        return ports[cast(int, self.master_port())]

    def stop(self) -> None:
        _kill_group(self.process, signal.SIGTERM)
        for replica in self.replicas:
            replica.stop()
        self.master.stop()


def _redis_cli(port: int, *command: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *command],
        check=False,
        capture_output=True,
        text=True,
        timeout=10,
    )
    return done.stdout
