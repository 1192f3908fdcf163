"""The Swarm as one value: nodes, services, tasks, and healthd's state kept in their labels.

Owns: the frozen records the Swarm API is read into (``observe.swarm`` parses them), a
node's host verdict, and the labels that carry healthd's guard state across a leader
change: a scale's ``healthd.swarm.scaled_at/from/to/by`` and ``base`` on the service, a
drain's ``healthd.swarm.drained_at/by`` on the node. ``core.swarm`` decides from these.
Must never: do I/O or read the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from healthd.core import labels
from healthd.core.model import Action, ActionRecord, Outcome

REPLICATED, GLOBAL, JOB = "replicated", "global", "job"


@dataclass(frozen=True)
class Node:
    """One Swarm node. ``addr`` is the address the node reports (its peers' healthd
    are asked there); ``leader`` from its ``ManagerStatus.Leader``."""

    id: str
    hostname: str = ""
    addr: str = ""
    role: str = "worker"  # manager or worker
    availability: str = "active"  # active, pause, drain
    state: str = "ready"  # ready, down, unknown, disconnected
    leader: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    version: int = 0

    def label(self, key: str) -> str | None:
        """Return the value of label ``key`` or None."""
        return dict(self.labels).get(key)

    @property
    def drained_by_healthd(self) -> bool:
        """True while healthd's drain holds (drained, with healthd's mark on it)."""
        return self.availability == "drain" and self.label(labels.SWARM_DRAINED_AT) is not None


@dataclass(frozen=True)
class Task:
    """One task: where it should be and where it is. ``at``: epoch seconds of its status."""

    id: str
    service_id: str
    node_id: str = ""
    slot: int | None = None
    desired: str = "running"
    state: str = "new"  # new ... running, complete, shutdown, failed, rejected, orphaned
    container_id: str = ""
    error: str = ""
    at: float = 0.0
    created_at: float = 0.0


@dataclass(frozen=True)
class Service:
    """One service's spec as last read, with its update state."""

    id: str
    name: str
    version: int = 0
    mode: str = REPLICATED  # replicated, global or job
    replicas: int | None = None  # the spec's count (replicated only)
    labels: tuple[tuple[str, str], ...] = ()
    update_state: str = ""  # "" never updated, or UpdateStatus.State
    update_message: str = ""
    update_started_at: float = 0.0
    has_previous: bool = False  # a PreviousSpec to roll back to

    def label(self, key: str) -> str | None:
        """Return the value of label ``key`` or None."""
        return dict(self.labels).get(key)

    @property
    def key(self) -> str:
        """The service key healthd uses everywhere (topology, ledger): ``swarm/<name>``."""
        return f"swarm/{self.name}"


@dataclass(frozen=True)
class SwarmView:
    """The Swarm as this manager's engine sees it; ``self_node`` is this engine's node."""

    self_node: str
    nodes: tuple[Node, ...] = ()
    services: tuple[Service, ...] = ()
    tasks: tuple[Task, ...] = ()
    at: float = 0.0  # when it was listed

    @property
    def leader(self) -> Node | None:
        """The node the engines report as the raft leader, None while there is none."""
        return next((n for n in self.nodes if n.leader), None)

    @property
    def is_leader(self) -> bool:
        """True when this engine's node is the leader."""
        lead = self.leader
        return lead is not None and lead.id == self.self_node

    def node(self, node_id: str) -> Node | None:
        """The node with that id, None when not listed."""
        return next((n for n in self.nodes if n.id == node_id), None)

    def tasks_of(self, service_id: str) -> tuple[Task, ...]:
        """Every listed task of a service, any state."""
        return tuple(t for t in self.tasks if t.service_id == service_id)

    def running(self, service_id: str) -> tuple[Task, ...]:
        """Tasks of a service that run and should."""
        return tuple(t for t in self.tasks_of(service_id)
                     if t.state == "running" and t.desired == "running")

    def service_named(self, name: str) -> Service | None:
        """The service called ``name``, None when not listed."""
        return next((s for s in self.services if s.name == name), None)


@dataclass(frozen=True)
class HostReport:
    """One node's host as its healthd reports it. A node without one is unknown."""

    exhausted: bool  # host memory or disk exhausted, or predicted to be
    why: str = ""
    ok_since: float | None = None  # epoch seconds since when it has not been exhausted


# --- guard state kept on the service ------------------------------------------------------


def _number(raw: str | None) -> float | None:
    try:
        v = float(raw) if raw is not None else None
    except ValueError:
        return None
    return v if v is not None and 0 <= v < 1e12 else None


def scale_history(svc: Service) -> tuple[ActionRecord, ...]:
    """The service's last scale as the labels written with it say (whoever led then)."""
    at = _number(svc.label(labels.SWARM_SCALED_AT))
    frm = _number(svc.label(labels.SWARM_SCALED_FROM))
    to = _number(svc.label(labels.SWARM_SCALED_TO))
    if at is None or frm is None or to is None:
        return ()
    action = Action.SCALE_UP if to > frm else Action.SCALE_DOWN
    return (ActionRecord(svc.key, action, at, Outcome.SUCCEEDED, rule="labels"),)


def operator_replicas(svc: Service) -> int:
    """The operator's own replica count: healthd's recorded base while the spec still holds
    healthd's last count, else the spec's count (the operator changed it since)."""
    current = svc.replicas or 0
    to, base = _number(svc.label(labels.SWARM_SCALED_TO)), _number(svc.label(labels.SWARM_BASE))
    if to is not None and base is not None and int(to) == current:
        return int(base)
    return current


def scale_labels(svc: Service, replicas: int, now: float, by: str) -> dict[str, str]:
    """The service's labels after healthd scales it to ``replicas`` (written with it)."""
    out = dict(svc.labels)
    out.update({
        labels.SWARM_SCALED_AT: f"{now:.3f}",
        labels.SWARM_SCALED_FROM: str(svc.replicas or 0),
        labels.SWARM_SCALED_TO: str(replicas),
        labels.SWARM_SCALED_BY: by,
        labels.SWARM_BASE: str(operator_replicas(svc)),
    })
    return out


def node_labels(node: Node, drain: bool, now: float, by: str) -> dict[str, str]:
    """The node's labels after healthd drains it (marked) or makes it active (unmarked)."""
    out = {k: v for k, v in node.labels
           if k not in (labels.SWARM_DRAINED_AT, labels.SWARM_DRAINED_BY)}
    if drain:
        out.update({labels.SWARM_DRAINED_AT: f"{now:.3f}", labels.SWARM_DRAINED_BY: by})
    return out


def host_report(memory: float | None, disk: float | None, alarms: Sequence[str],
                memory_critical: float, disk_critical: float, previous: HostReport | None,
                now: float) -> HostReport | None:
    """This node's host verdict. memory, disk: fractions used (None unknown); alarms: the
    host forecasts' alarm texts; previous: the last verdict (it carries ``ok_since``).
    None when nothing about the host is known."""
    if memory is None and disk is None and not alarms:
        return None
    why = [*alarms]
    if memory is not None and memory >= memory_critical:
        why.append(f"host memory {memory * 100:.0f}% used (critical {memory_critical * 100:.0f}%)")
    if disk is not None and disk >= disk_critical:
        why.append(f"host disk {disk * 100:.0f}% used (critical {disk_critical * 100:.0f}%)")
    if why:
        return HostReport(True, "; ".join(why))
    since = previous.ok_since if previous is not None and not previous.exhausted else None
    return HostReport(False, ok_since=since if since is not None else now)
