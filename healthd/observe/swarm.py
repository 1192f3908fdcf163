"""The Swarm as the engine lists it: parsed into ``core.swarm`` values, kept current.

Owns: reading the Swarm API's services, tasks and nodes into one ``SwarmView`` (pure
parsers, tested on bodies recorded from a real engine), and the thread that re-lists them
on every ``service`` or ``node`` event of a manager's engine and at least every
``swarm.relist_s``, handing each view to the main loop as a ``SwarmListed``.
Must never: decide, act, or list on the main loop's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from healthd.core.swarm import GLOBAL, JOB, REPLICATED, Node, Service, SwarmView, Task
from healthd.observe import swarmapi
from healthd.observe.containers import parse_time
from healthd.observe.engine import Engine, EngineUnavailable

log = logging.getLogger(__name__)


def _d(obj: Any, key: str) -> dict[str, Any]:
    v = obj.get(key) if isinstance(obj, Mapping) else None
    return dict(v) if isinstance(v, Mapping) else {}


def _labels(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def _version(obj: Mapping[str, Any]) -> int:
    try:
        return int(_d(obj, "Version").get("Index", 0))
    except (TypeError, ValueError):
        return 0


def service_from(raw: Mapping[str, Any]) -> Service:
    """One entry of ``GET /services``."""
    spec = _d(raw, "Spec")
    mode = _d(spec, "Mode")
    replicas: int | None = None
    if "Replicated" in mode:
        kind = REPLICATED
        try:
            replicas = int(_d(mode, "Replicated").get("Replicas", 1))
        except (TypeError, ValueError):
            replicas = None
    elif "Global" in mode:
        kind = GLOBAL
    else:
        kind = JOB  # ReplicatedJob, GlobalJob
    upd = _d(raw, "UpdateStatus")
    return Service(
        id=str(raw.get("ID", "")), name=str(spec.get("Name", "")), version=_version(raw),
        mode=kind, replicas=replicas, labels=_labels(spec.get("Labels")),
        update_state=str(upd.get("State", "")), update_message=str(upd.get("Message", "")),
        update_started_at=parse_time(upd.get("StartedAt")),
        has_previous=bool(raw.get("PreviousSpec")))


def task_from(raw: Mapping[str, Any]) -> Task:
    """One entry of ``GET /tasks``."""
    status = _d(raw, "Status")
    slot = raw.get("Slot")
    return Task(
        id=str(raw.get("ID", "")), service_id=str(raw.get("ServiceID", "")),
        node_id=str(raw.get("NodeID", "")), slot=slot if isinstance(slot, int) else None,
        desired=str(raw.get("DesiredState", "")), state=str(status.get("State", "")),
        container_id=str(_d(status, "ContainerStatus").get("ContainerID", "")),
        error=str(status.get("Err", "")), at=parse_time(status.get("Timestamp")),
        created_at=parse_time(raw.get("CreatedAt")))


def node_from(raw: Mapping[str, Any]) -> Node:
    """One entry of ``GET /nodes``."""
    spec, status, mgr = _d(raw, "Spec"), _d(raw, "Status"), _d(raw, "ManagerStatus")
    # A manager's advertised address names it; Status.Addr is where the leader saw it come
    # from (on one machine, 127.0.0.1 for every node that joined).
    advertised = str(mgr.get("Addr", "")).rpartition(":")[0].strip("[]")
    return Node(
        id=str(raw.get("ID", "")), hostname=str(_d(raw, "Description").get("Hostname", "")),
        addr=advertised or str(status.get("Addr", "")), role=str(spec.get("Role", "worker")),
        availability=str(spec.get("Availability", "active")),
        state=str(status.get("State", "unknown")), leader=mgr.get("Leader") is True,
        labels=_labels(spec.get("Labels")), version=_version(raw))


def view_from(swarm_info: Mapping[str, Any], services: Sequence[Any], tasks: Sequence[Any],
              nodes: Sequence[Any], at: float) -> SwarmView:
    """The whole Swarm from one listing; ``swarm_info`` is ``GET /info``'s Swarm section."""
    return SwarmView(
        self_node=str(swarm_info.get("NodeID", "")),
        nodes=tuple(node_from(n) for n in nodes if isinstance(n, Mapping)),
        services=tuple(service_from(s) for s in services if isinstance(s, Mapping)),
        tasks=tuple(task_from(t) for t in tasks if isinstance(t, Mapping)),
        at=at)


@dataclass(frozen=True)
class SwarmListed:
    """A listing handed to the main loop; ``view`` None when this engine manages no Swarm."""

    view: SwarmView | None


class SwarmWatch:
    """Re-lists the Swarm on its events and every ``relist_s``, in two daemon threads."""

    def __init__(self, eng: Engine, out: queue.Queue[Any], relist_s: float,
                 clock: Callable[[], float]) -> None:
        self.engine, self.out, self.relist_s, self.clock = eng, out, relist_s, clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stream: Any = None
        self._threads = [threading.Thread(target=self._list_loop, name="swarm-list", daemon=True),
                         threading.Thread(target=self._event_loop, name="swarm-events",
                                          daemon=True)]

    def start(self) -> None:
        """Start listing and following events."""
        for t in self._threads:
            t.start()

    def wake(self) -> None:
        """List again now (after healthd's own action, say)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop both threads."""
        self._stop.set()
        self._wake.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def list_now(self) -> SwarmListed | None:
        """One listing, on the caller's thread; None when the engine did not answer."""
        at = self.clock()  # before the request: what it shows is at least this fresh
        try:
            lists = swarmapi.lists(self.engine)
        except EngineUnavailable as exc:
            log.info("cannot list the swarm: %s", exc)
            return None
        if lists is None:
            return SwarmListed(None)
        return SwarmListed(view_from(*lists, at=at))

    def _list_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.relist_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            listed = self.list_now()
            if listed is not None:
                self.out.put(listed)
            # Events come in bursts (a scale: one per task and service change): one more
            # listing a moment later catches the rest.
            self._stop.wait(0.2)

    def _event_loop(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                events, self._stream = swarmapi.events(self.engine)
                delay = 0.5
                for _ in events:
                    if self._stop.is_set():
                        return
                    self._wake.set()
            except EngineUnavailable as exc:
                if self._stop.is_set():
                    return
                log.debug("swarm events: %s; again in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
