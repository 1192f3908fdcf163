"""The only module that talks to docker-py.

Owns: the client, and translating docker-py / requests errors into healthd's own
(``ContainerGone``, ``EngineUnavailable``, ``ActionFailed``), raised ``from`` the original.
Must never: decide anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests.exceptions

from healthd.observe import containers
from healthd.observe.containers import Event, Summary

_HEX64 = re.compile(r"[0-9a-f]{64}")


class EngineError(Exception):
    """Base of the engine errors healthd handles."""


class ContainerGone(EngineError):
    """The container vanished (removed between list and inspect, say)."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached right now (restarting, socket gone)."""


class ActionFailed(EngineError):
    """The engine refused or failed an action; ``retryable`` says whether trying again helps."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


# The container events healthd acts on. Filtering at the engine keeps the healthchecks'
# exec_create/exec_start/exec_die (three per check per container) off the wire.
EVENTS = ("start", "die", "oom", "kill", "health_status", "destroy", "restart", "stop")

_CONN_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, OSError)


class Engine:
    """A thin wrapper around one docker-py client."""

    def __init__(self, docker_host: str, timeout: float = 30.0, pool_size: int = 10) -> None:
        self.docker_host = docker_host
        if not _reachable_quickly(docker_host):
            raise EngineUnavailable(f"cannot reach the Docker engine at {docker_host}")
        try:
            # version="auto": docker-py's default API version is newer than many engines.
            self.client = docker.DockerClient(base_url=docker_host, version="auto",
                                              timeout=timeout, max_pool_size=pool_size)
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"cannot reach the Docker engine at {docker_host}: {exc}") \
                from exc
        self._one_shot = True

    @property
    def api(self) -> Any:
        """The low-level docker-py APIClient."""
        return self.client.api

    def ping(self) -> bool:
        """True when the engine answers."""
        try:
            return bool(self.api.ping())
        except (*_CONN_ERRORS, docker.errors.APIError):
            return False

    def info(self) -> dict[str, Any]:
        """``docker info`` as a dict."""
        try:
            return dict(self.api.info())
        except (*_CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(str(exc)) from exc

    def list(self) -> list[Summary]:
        """All containers, running or not."""
        try:
            rows = self.api.containers(all=True)
        except (*_CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"listing containers: {exc}") from exc
        return [containers.from_list(r) for r in rows]

    def inspect(self, cid: str) -> dict[str, Any]:
        """Raw inspect JSON of one container."""
        try:
            return dict(self.api.inspect_container(cid))
        except docker.errors.NotFound as exc:
            raise ContainerGone(cid) from exc
        except (*_CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"inspecting {cid[:12]}: {exc}") from exc

    def stats(self, cid: str) -> dict[str, Any]:
        """One stats API body: one-shot where the engine has it (API >= 1.41)."""
        try:
            if self._one_shot:
                try:
                    return dict(self.api.stats(cid, stream=False, one_shot=True))
                except docker.errors.InvalidVersion:
                    # Older engines lack one-shot and answer after two collector cycles.
                    self._one_shot = False
            return dict(self.api.stats(cid, stream=False))
        except docker.errors.NotFound as exc:
            raise ContainerGone(cid) from exc
        except (*_CONN_ERRORS, docker.errors.DockerException) as exc:
            raise EngineUnavailable(f"stats of {cid[:12]}: {exc}") from exc

    def first_running(self) -> tuple[str, str] | None:
        """(id, cgroup parent) of one running container, to probe the cgroup layout."""
        try:
            rows = self.api.containers(limit=1)
        except (*_CONN_ERRORS, docker.errors.DockerException) as exc:
            raise EngineUnavailable(f"listing containers: {exc}") from exc
        if not rows:
            return None
        parent = (rows[0].get("HostConfig") or {}).get("CgroupParent", "") or ""
        return str(rows[0]["Id"]), str(parent)

    def restart(self, cid: str, stop_timeout_s: int) -> None:
        """Restart a container: stop (SIGTERM, then SIGKILL after the timeout) and start."""
        try:
            self.api.restart(cid, timeout=stop_timeout_s)
        except docker.errors.NotFound as exc:
            raise ActionFailed(f"container {cid[:12]} is gone", retryable=False) from exc
        except docker.errors.APIError as exc:
            retryable = exc.status_code is None or exc.status_code >= 500
            raise ActionFailed(str(exc.explanation or exc), retryable=retryable) from exc
        except _CONN_ERRORS as exc:
            raise ActionFailed(f"engine unreachable: {exc}", retryable=True) from exc

    def events(self, since_ns: int | None) -> tuple[Iterator[Event | None], Any]:
        """Container events from ``since_ns`` on; returns (events, stream to close)."""
        since = None
        if since_ns:
            since = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
        try:
            stream = self.api.events(since=since, decode=True,
                                     filters={"type": ["container"], "event": list(EVENTS)})
        except (*_CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"subscribing to events: {exc}") from exc

        def gen() -> Iterator[Event | None]:
            try:
                for raw in stream:
                    yield containers.from_event(raw) if isinstance(raw, dict) else None
            except (*_CONN_ERRORS, docker.errors.APIError, ValueError) as exc:
                raise EngineUnavailable(f"events stream dropped: {exc}") from exc
            raise EngineUnavailable("events stream ended")

        return gen(), stream

    def close(self) -> None:
        """Release the client's connections."""
        self.client.close()


def _reachable_quickly(docker_host: str) -> bool:
    # A missing unix socket would otherwise surface as a confusing version-negotiation error.
    if docker_host.startswith("unix://"):
        return os.path.exists(docker_host[len("unix://"):])
    return True


def own_container_ids() -> frozenset[str]:
    """Container ids healthd itself may be running in (empty on a plain host)."""
    found: set[str] = set()
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as fh:
            found.update(_HEX64.findall(fh.read()))
    except OSError:
        pass
    if not os.path.exists("/.dockerenv"):
        return frozenset(found)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split()
                # Only the bind mount of /etc/hostname names *our* container; a host's
                # mountinfo lists other containers' shm mounts too.
                if len(fields) > 4 and fields[4] == "/etc/hostname":
                    found.update(_HEX64.findall(fields[3]))
    except OSError:
        pass
    return frozenset(found)


def is_own(cid: str, own: frozenset[str]) -> bool:
    """True when ``cid`` is the container healthd runs in."""
    return cid in own
