"""The only module that talks to docker-py.

Owns: the client, and translating docker-py / requests errors into healthd's own
(``ContainerGone``, ``EngineUnavailable``, ``ActionFailed``), raised ``from`` the original.
Must never: decide anything.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import docker
import docker.errors
import requests.exceptions

from healthd.core import labels, scale
from healthd.observe import blueprint, containers
from healthd.observe.blueprint import Blueprint
from healthd.observe.containers import Event, Summary

log = logging.getLogger(__name__)

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


class VersionConflict(ActionFailed):
    """A Swarm object changed since its version was read ("update out of sequence")."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


# The container events healthd acts on. Filtering at the engine keeps the healthchecks'
# exec_create/exec_start/exec_die (three per check per container) off the wire. create
# (with destroy) tells a redeploy by someone else (healthd.core.churn).
EVENTS = ("start", "die", "oom", "kill", "health_status", "create", "destroy", "restart",
          "stop", "pause", "unpause", "update")

# Shared with observe.swarmapi: what "the engine did not answer" looks like from docker-py.
CONN_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, OSError)


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
        except (*CONN_ERRORS, docker.errors.APIError):
            return False

    def info(self) -> dict[str, Any]:
        """``docker info`` as a dict."""
        try:
            return dict(self.api.info())
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(str(exc)) from exc

    def list(self) -> list[Summary]:
        """All containers, running or not."""
        try:
            rows = self.api.containers(all=True)
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"listing containers: {exc}") from exc
        return [containers.from_list(r) for r in rows]

    def image_tags(self) -> dict[str, str]:
        """Every local image tag and the image id (sha256:...) it names now."""
        try:
            rows = self.api.images()
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"listing images: {exc}") from exc
        return containers.image_tags(rows)

    def inspect(self, cid: str) -> dict[str, Any]:
        """Raw inspect JSON of one container."""
        try:
            return dict(self.api.inspect_container(cid))
        except docker.errors.NotFound as exc:
            raise ContainerGone(cid) from exc
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
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
        except (*CONN_ERRORS, docker.errors.DockerException) as exc:
            raise EngineUnavailable(f"stats of {cid[:12]}: {exc}") from exc

    def first_running(self) -> tuple[str, str] | None:
        """(id, cgroup parent) of one running container, to probe the cgroup layout."""
        try:
            rows = self.api.containers(limit=1)
        except (*CONN_ERRORS, docker.errors.DockerException) as exc:
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
        except CONN_ERRORS as exc:
            raise ActionFailed(f"engine unreachable: {exc}", retryable=True) from exc

    # -- replicas: scale up, scale down, recreate ----------------------------------------

    def image_id_of_tag(self, tag: str) -> str | None:
        """The id (sha256:…) of the local image ``tag`` names now, None when there is none."""
        try:
            return str(self.api.inspect_image(tag)["Id"])
        except docker.errors.NotFound:
            return None
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"inspecting image {tag}: {exc}") from exc

    def create_replica(self, template_id: str, number: int, *,
                       created_at: float | None = None) -> str:
        """Create and start replica ``number`` of ``template_id``'s compose service; its id.

        Made as Compose v1 makes one (``project_service_N``, same config, labels and
        networks; see healthd.observe.blueprint), labelled healthd.created=true and
        healthd.created.at (``created_at``, epoch seconds; default now). A replica that
        fails to start is removed again. Raises ContainerGone (no template), ActionFailed.
        """
        tpl = self._inspect_for(template_id)
        tpl_labels = (tpl.get("Config") or {}).get("Labels") or {}
        try:
            tpl_number = int(tpl_labels.get(labels.COMPOSE_NUMBER, ""))
        except ValueError as exc:
            raise ActionFailed(f"{_name(tpl)} is not a compose replica (no container number)",
                               retryable=False) from exc
        name = scale.replica_name(_name(tpl), tpl_number, number)
        if name is None:
            raise ActionFailed(f"{_name(tpl)} has a custom container name: its service cannot "
                               "have more than one replica", retryable=False)
        made = blueprint.for_replica(
            tpl, name=name, number=number, image=self._image_like(tpl),
            created_at=time.time() if created_at is None else created_at)
        return self._create_and_start(made)

    def remove_replica(self, container_id: str, stop_timeout_s: int) -> None:
        """Stop (SIGTERM, SIGKILL after the timeout) and remove a replica healthd created,
        with its anonymous volumes. Already gone counts as done. Refuses (ActionFailed, not
        retryable) a container without the healthd.created=true label."""
        try:
            c = self.inspect(container_id)
        except ContainerGone:
            return
        own = (c.get("Config") or {}).get("Labels") or {}
        if str(own.get(labels.CREATED, "")).lower() != "true":
            raise ActionFailed(f"{_name(c)} was not created by healthd: not removing it",
                               retryable=False)
        try:
            self.api.stop(container_id, timeout=stop_timeout_s)
            self.api.remove_container(container_id, v=True)
        except docker.errors.NotFound:
            return
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise failed(f"removing {_name(c)}", exc) from exc

    def recreate(self, container_id: str, template_id: str, stop_timeout_s: int) -> str:
        """Replace ``container_id`` by a container made from ``template_id``'s config; new id.

        ``template_id`` may be the container itself: it is then made again from its own
        config with the image its tag names now. Name, container number, healthd's
        ownership labels and anonymous volumes are kept. Steps as compose: stop, rename to
        ``<name>_healthd_old``, create, start, remove the old one; when creating or starting
        fails, the new one is removed and the old one renamed back and started again.
        """
        old = self._inspect_for(container_id)
        tpl = old if template_id in (container_id, old.get("Id")) else \
            self._inspect_for(template_id)
        same = tpl.get("Id") == old.get("Id")  # also when named by name or short id
        if same:
            tag = str((old.get("Config") or {}).get("Image") or "")
            if not tag or tag.startswith("sha256:") or self.image_id_of_tag(tag) is None:
                raise ActionFailed(f"{_name(old)}: its image {tag!r} is not a tag found "
                                   "locally", retryable=False)
            image = tag
        else:
            image = self._image_like(tpl)
        made = blueprint.for_recreate(tpl, old, image=image)
        old_id, name = str(old["Id"]), _name(old)
        was_running = bool((old.get("State") or {}).get("Running"))
        try:
            self.api.stop(old_id, timeout=stop_timeout_s)
            self.api.rename(old_id, f"{name}_healthd_old")
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            self._restore(old_id, name, was_running)
            raise failed(f"recreating {name}: setting the old container aside", exc) from exc
        try:
            new_id = self._create_and_start(made)
        except ActionFailed:
            self._restore(old_id, name, was_running)
            raise
        try:
            self.api.remove_container(old_id, v=False)  # its anonymous volumes moved over
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            log.warning("recreated %s, but removing the old container %s failed: %s",
                        name, old_id[:12], exc)
        return new_id

    def _inspect_for(self, cid: str) -> dict[str, Any]:
        """Inspect for an action: ContainerGone, or ActionFailed(retryable) when unreachable."""
        try:
            return self.inspect(cid)
        except EngineUnavailable as exc:
            raise ActionFailed(str(exc), retryable=True) from exc

    def _image_like(self, tpl: Mapping[str, Any]) -> str:
        """The template's tag while it still names the template's image, else the image id."""
        tag = str((tpl.get("Config") or {}).get("Image") or "")
        image_id = str(tpl.get("Image") or "")
        try:
            if tag and self.image_id_of_tag(tag) == image_id:
                return tag
        except EngineUnavailable as exc:
            raise ActionFailed(str(exc), retryable=True) from exc
        return image_id or tag

    def _create_and_start(self, made: Blueprint) -> str:
        """Create, connect the further networks, start; remove it again on failure."""
        try:
            cid = str(self.api.create_container_from_config(made.body, made.name)["Id"])
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise failed(f"creating {made.name}", exc) from exc
        try:
            for net, ep in made.networks:
                ipam = ep.get("IPAMConfig") or {}
                self.api.connect_container_to_network(
                    cid, net, aliases=ep.get("Aliases"), links=ep.get("Links"),
                    driver_opt=ep.get("DriverOpts"), ipv4_address=ipam.get("IPv4Address"),
                    ipv6_address=ipam.get("IPv6Address"),
                    link_local_ips=ipam.get("LinkLocalIPs"))
            self.api.start(cid)
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            try:
                self.api.remove_container(cid, force=True, v=True)
            except (*CONN_ERRORS, docker.errors.APIError) as cleanup:
                log.warning("could not remove the half-made %s (%s): %s", made.name,
                            cid[:12], cleanup)
            raise failed(f"starting {made.name}", exc) from exc
        return cid

    def _restore(self, old_id: str, name: str, was_running: bool) -> None:
        """Undo a recreate's first steps: the old container under its name, running again."""
        try:
            if _name(self.inspect(old_id)) != name:
                self.api.rename(old_id, name)
            if was_running:
                self.api.start(old_id)
        except (EngineError, *CONN_ERRORS, docker.errors.APIError) as exc:
            log.error("could not restore %s (%s) after a failed recreate: %s", name,
                      old_id[:12], exc)

    def events(self, since_ns: int | None) -> tuple[Iterator[Event | None], Any]:
        """Container events from ``since_ns`` on; returns (events, stream to close)."""
        since = None
        if since_ns:
            since = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
        try:
            stream = self.api.events(since=since, decode=True,
                                     filters={"type": ["container"], "event": list(EVENTS)})
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"subscribing to events: {exc}") from exc

        def gen() -> Iterator[Event | None]:
            try:
                for raw in stream:
                    yield containers.from_event(raw) if isinstance(raw, dict) else None
            except (*CONN_ERRORS, docker.errors.APIError, ValueError) as exc:
                raise EngineUnavailable(f"events stream dropped: {exc}") from exc
            raise EngineUnavailable("events stream ended")

        return gen(), stream

    def logs(self, cid: str, since: float) -> tuple[Iterator[bytes], Any]:
        """Follow a container's stdout and stderr from epoch ``since`` on; returns (chunks
        of bytes, stream to close). The chunks end when the container stops."""
        try:
            stream = self.api.logs(cid, stream=True, follow=True, since=max(since, 1.0),
                                   timestamps=False)
        except docker.errors.NotFound as exc:
            raise ContainerGone(cid) from exc
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"following the logs of {cid[:12]}: {exc}") from exc

        def gen() -> Iterator[bytes]:
            try:
                for chunk in stream:
                    yield bytes(chunk)
            except (*CONN_ERRORS, docker.errors.APIError, ValueError) as exc:
                raise EngineUnavailable(f"log stream of {cid[:12]} dropped: {exc}") from exc

        return gen(), stream

    def stop(self, cid: str, stop_timeout_s: int) -> None:
        """Stop a container: SIGTERM, then SIGKILL after the timeout."""
        try:
            self.api.stop(cid, timeout=stop_timeout_s)
        except docker.errors.NotFound as exc:
            raise ActionFailed(f"container {cid[:12]} is gone", retryable=False) from exc
        except (*CONN_ERRORS, docker.errors.APIError) as exc:
            raise failed(f"stopping {cid[:12]}", exc) from exc

    def close(self) -> None:
        """Release the client's connections."""
        self.client.close()


def _name(c: Mapping[str, Any]) -> str:
    return str(c.get("Name", "")).lstrip("/")


def failed(what: str, exc: Exception) -> ActionFailed:
    """An engine error as ActionFailed: 4xx answers are not retryable, the rest are."""
    if isinstance(exc, docker.errors.APIError):
        retryable = exc.status_code is None or exc.status_code >= 500
        return ActionFailed(f"{what}: {exc.explanation or exc}", retryable=retryable)
    return ActionFailed(f"{what}: engine unreachable: {exc}", retryable=True)


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
