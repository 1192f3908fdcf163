"""Swarm mode on throwaway engines, for the integration tests and benches.

Owns: turning a `tests.engine.Engine` into a one-node Swarm (its own engine: the suite's
shared one stays out of swarm mode), creating services by the docker CLI and removing them,
reading services and tasks, and leaving the Swarm in the order the notes give (services
first, then their containers gone, then ``swarm leave --force``), before the engine stops.
Must never: touch an engine it was not given, or listen beyond 127.0.0.x.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import docker

from tests.engine import Engine, wait_for


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def init_single(eng: Engine) -> str:
    """``swarm init`` on 127.0.0.1 (a free port); returns this node's id."""
    port = _free_port()
    eng.cli("swarm", "init", "--advertise-addr", f"127.0.0.1:{port}",
            "--listen-addr", f"127.0.0.1:{port}")
    return str(eng.client.api.info()["Swarm"]["NodeID"])


class Services:
    """Services created for one test through one manager; removed afterwards."""

    def __init__(self, eng: Engine) -> None:
        self.engine = eng
        self.names: list[str] = []

    def create(self, hint: str, *args: str, command: tuple[str, ...] = ()) -> str:
        """``docker service create -d`` the test image; returns the service's name.

        args: flags (``--replicas 3``, ``--limit-cpu 0.2``...); command: what the tasks run.
        """
        name = self.engine.name(hint)
        self.engine.cli("service", "create", "-d", "--name", name, "--stop-grace-period", "1s",
                        *args, self.engine.image, *command)
        self.names.append(name)
        return name

    def inspect(self, name: str) -> dict[str, Any]:
        """The service as the engine has it."""
        return dict(self.engine.client.api.inspect_service(name))

    def replicas(self, name: str) -> int:
        """The spec's replica count."""
        return int(self.inspect(name)["Spec"]["Mode"]["Replicated"]["Replicas"])

    def tasks(self, name: str, running: bool = True) -> list[dict[str, Any]]:
        """The service's tasks (only running ones that should run, by default)."""
        rows = self.engine.client.api.tasks(filters={"service": name})
        if running:
            rows = [t for t in rows if t["Status"]["State"] == "running"
                    and t["DesiredState"] == "running"]
        return list(rows)

    def running(self, name: str) -> int:
        """How many of its tasks run."""
        return len(self.tasks(name))

    def remove_all(self) -> None:
        """Remove this test's services and wait for their containers to go."""
        api = self.engine.client.api
        for name in self.names:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_service(name)
        self.names.clear()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not api.containers(
                all=True, filters={"label": "com.docker.swarm.task.id"}), 30,
                what="task containers gone")


def leave(eng: Engine) -> None:
    """Remove every service, wait for their containers, and leave the Swarm (teardown)."""
    if eng.proc is None or eng.proc.poll() is not None:
        return
    api = eng.client.api
    with contextlib.suppress(docker.errors.DockerException, OSError):
        for s in api.services():
            with contextlib.suppress(docker.errors.DockerException):
                api.remove_service(s["ID"])
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not api.containers(
                all=True, filters={"label": "com.docker.swarm.task.id"}), 30,
                what="task containers gone")
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        eng.cli("swarm", "leave", "--force", check=False, timeout=60)


@contextlib.contextmanager
def single_node() -> Iterator[Engine]:
    """A started throwaway engine in a one-node Swarm; torn down in the notes' order."""
    eng = Engine()
    try:
        eng.start()
        init_single(eng)
        yield eng
    finally:
        leave(eng)
        eng.stop()


class MultiNode:
    """Three managers on one machine: engines under ``unshare --uts`` named node1..node3,
    advertising 127.0.0.2:2378, 127.0.0.3:2379 and 127.0.0.4:2380 (as in the notes).

    Start with `start`; `stop` tears down in the notes' order: services through a live
    manager, their containers gone on every node, ``swarm leave --force`` on each, then
    the engines (containers, dockerd, mounts, folders).
    """

    ADDRS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    PORTS = (2378, 2379, 2380)

    def __init__(self) -> None:
        self.engines = [Engine(hostname=f"node{i + 1}") for i in range(3)]

    def start(self) -> MultiNode:
        """Start the engines (the image imported on each), init on node1, join the rest."""
        for e in self.engines:
            e.start()
        first = self.engines[0]
        a, p = self.ADDRS[0], self.PORTS[0]
        first.cli("swarm", "init", "--advertise-addr", f"{a}:{p}", "--listen-addr",
                  f"{a}:{p}", "--data-path-port", "4790")
        token = first.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        for e, a, p in zip(self.engines[1:], self.ADDRS[1:], self.PORTS[1:], strict=True):
            e.cli("swarm", "join", "--token", token, "--advertise-addr", f"{a}:{p}",
                  "--listen-addr", f"{a}:{p}", f"{self.ADDRS[0]}:{self.PORTS[0]}")
        wait_for(lambda: len([n for n in first.client.api.nodes()
                              if n["Status"]["State"] == "ready"]) == 3, 60,
                 what="three ready nodes")
        return self

    def alive(self) -> list[Engine]:
        """The engines still running."""
        return [e for e in self.engines if e.proc is not None and e.proc.poll() is None]

    def leader(self) -> Engine | None:
        """The engine whose node the live managers report as the leader."""
        for e in self.alive():
            with contextlib.suppress(docker.errors.DockerException, OSError, KeyError):
                me = e.client.api.info()["Swarm"]["NodeID"]
                if (e.client.api.inspect_node(me).get("ManagerStatus") or {}).get("Leader"):
                    return e
        return None

    def stop(self) -> None:
        """Tear everything down (idempotent)."""
        live = self.alive()
        if live:
            api = live[0].client.api
            with contextlib.suppress(docker.errors.DockerException, OSError):
                for s in api.services():
                    with contextlib.suppress(docker.errors.DockerException):
                        api.remove_service(s["ID"])
        for e in live:
            with contextlib.suppress(AssertionError):
                wait_for(lambda e=e: not e.client.api.containers(
                    all=True, filters={"label": "com.docker.swarm.task.id"}), 30,
                    what="task containers gone")
        for e in live:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                e.cli("swarm", "leave", "--force", check=False, timeout=60)
        for e in self.engines:
            e.stop()
