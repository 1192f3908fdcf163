"""Swarm actions: scale and roll back services, drain and activate nodes, replace a task.

Owns: carrying a Swarm decision out on the engine. A service or node action first asks
the engine whether this node still leads (``ManagerStatus.Leader``, read again right
before the update) and refuses otherwise; it reads the object's spec and version, writes
healthd's guard state (``core.swarm.scale_labels`` / ``node_labels``) in the same update,
and reads again on a version conflict. A replaced task is its container stopped on this
node (Swarm starts another). Must never: decide, or update a Swarm object at a version it
did not just read.
"""

from __future__ import annotations

import logging
from typing import Any

from healthd.core import swarm
from healthd.core.model import Decision
from healthd.observe import engine, swarmapi
from healthd.observe.swarm import node_from, service_from

log = logging.getLogger("healthd")

_TRIES = 3  # reads and updates before a version conflict is reported as a failure


def _leading(eng: engine.Engine) -> str:
    """This node's hostname when its engine reports it as the leader; else ActionFailed."""
    try:
        node_id = str((eng.info().get("Swarm") or {}).get("NodeID", ""))
    except engine.EngineUnavailable as exc:
        raise engine.ActionFailed(f"engine unreachable: {exc}", retryable=True) from exc
    if not node_id:
        raise engine.ActionFailed("this engine is in no swarm", retryable=False)
    raw = swarmapi.inspect(eng, "node", node_id)
    if (raw.get("ManagerStatus") or {}).get("Leader") is not True:
        raise engine.ActionFailed("this node is not the swarm leader any more",
                                  retryable=False)
    return node_from(raw).hostname or node_id[:12]


def _spec(raw: dict[str, Any]) -> dict[str, Any]:
    return dict(raw.get("Spec") or {})


def scale(eng: engine.Engine, d: Decision) -> None:
    """Set a replicated service's replicas to ``d.replicas``, with the scale labels."""
    if d.replicas is None:
        raise engine.ActionFailed("a scale decision without a replica count", retryable=False)
    for _ in range(_TRIES):
        by = _leading(eng)
        raw = swarmapi.inspect(eng, "service", d.target_id)
        svc = service_from(raw)
        if svc.mode != swarm.REPLICATED:
            raise engine.ActionFailed(f"{svc.key} is not a replicated service", retryable=False)
        if svc.replicas == d.replicas:
            return  # already there (another try of ours went through, or the operator)
        spec = _spec(raw)
        spec["Mode"] = {"Replicated": {"Replicas": d.replicas}}
        spec["Labels"] = swarm.scale_labels(svc, d.replicas, d.at, by)
        try:
            swarmapi.update(eng, "service", svc.id, svc.version, spec)
            return
        except engine.VersionConflict as exc:
            log.info("%s changed under the scale (%s); reading it again", svc.key, exc)
    raise engine.ActionFailed(f"{d.target_name} kept changing under the scale", retryable=True)


def rollback(eng: engine.Engine, d: Decision) -> None:
    """Swarm's own rollback of a service to its previous spec (``rollback=previous``)."""
    for _ in range(_TRIES):
        _leading(eng)
        raw = swarmapi.inspect(eng, "service", d.target_id)
        svc = service_from(raw)
        if svc.update_state not in ("updating", "paused"):
            log.info("%s: update state is %r now; no rollback needed", svc.key,
                     svc.update_state)
            return
        try:
            swarmapi.update(eng, "service", svc.id, svc.version, _spec(raw), rollback=True)
            return
        except engine.VersionConflict as exc:
            log.info("%s changed under the rollback (%s); reading it again", svc.key, exc)
    raise engine.ActionFailed(f"{d.target_name} kept changing under the rollback",
                              retryable=True)


def _availability(eng: engine.Engine, d: Decision, drain: bool) -> None:
    for _ in range(_TRIES):
        by = _leading(eng)
        raw = swarmapi.inspect(eng, "node", d.target_id)
        node = node_from(raw)
        if node.availability == ("drain" if drain else "active"):
            return  # already so (another try of ours went through, or the operator)
        spec = _spec(raw)
        spec["Availability"] = "drain" if drain else "active"
        spec["Labels"] = swarm.node_labels(node, drain, d.at, by)
        try:
            swarmapi.update(eng, "node", node.id, node.version, spec)
            return
        except engine.VersionConflict as exc:
            log.info("node %s changed under the update (%s); reading it again",
                     node.hostname, exc)
    raise engine.ActionFailed(f"{d.target_name} kept changing under the update", retryable=True)


def drain(eng: engine.Engine, d: Decision) -> None:
    """Drain a node (Swarm moves its tasks), marked as healthd's drain."""
    _availability(eng, d, drain=True)


def activate(eng: engine.Engine, d: Decision) -> None:
    """Make a node healthd drained active again, removing healthd's mark."""
    _availability(eng, d, drain=False)


def replace_task(eng: engine.Engine, d: Decision) -> None:
    """Stop a task's container on this node; Swarm's restart policy starts a new task."""
    eng.stop(d.target_id, d.stop_timeout_s)
