"""The /status snapshot: what ``healthd status`` and the dashboard read.

Owns: the JSON shape of /status, built from the daemon's memory, the stacks and the
ledger's last actions. Must never: decide or change anything; it only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from healthd.core.stack import ServiceHealth
from healthd.core.topology import Topology
from healthd.observe.memory import Tracked
from healthd.store.ledger import Ledger

if TYPE_CHECKING:  # the daemon imports this module: only its type is needed here
    from healthd.daemon import Daemon


def container_rows(items: Iterable[Tracked], ledger: Ledger, topology: Topology,
                   signals: Callable[[str], dict[str, Any] | None] | None = None,
                   ) -> list[dict[str, Any]]:
    """One row per watched container, sorted by name; ``signals`` gives a container's
    application signals by id (probe, error ratio, latency, log errors), if any."""
    rows = []
    for t in sorted(items, key=lambda x: x.state.name):
        last = ledger.last_action_for(t.state.name)
        rows.append({
            "id": t.state.id[:12], "name": t.state.name, "status": t.state.status,
            "service": topology.service_of(t.state.id),
            "health": t.assessment.health.value, "reasons": list(t.assessment.reasons),
            "decision": t.last_decision.explain() if t.last_decision else None,
            "held_by": t.last_decision.suppressed_by if t.last_decision else None,
            "last_action": last.explanation if last else None,
            "last_action_outcome": last.outcome if last else None,
            "last_action_at": last.at if last else None,
            "forecasts": [f._asdict() | {"resource": f.resource.value} for f in t.forecasts],
            "usage": t.usage.__dict__ if t.usage else None,
            "signals": signals(t.state.id) if signals else None,
        })
    return rows


def stacks(topology: Topology, health: Mapping[str, ServiceHealth], problems: Sequence[str],
           items: Iterable[Tracked], ledger: Ledger) -> dict[str, Any]:
    """Services with replicas, health, what they wait on and their last action; the graph."""
    by_id = {t.state.id: t for t in items}
    services = []
    for svc in topology.order():
        members = [by_id[c] for c in topology.members(svc) if c in by_id]
        h = health.get(svc)
        waits = sorted({t.last_decision.suppressed_by for t in members
                        if t.last_decision and t.last_decision.suppressed_by
                        and t.last_decision.suppressed_by.startswith("dependency:")})
        last = None
        for t in members:
            row = ledger.last_action_for(t.state.name)
            if row is not None and (last is None or row.at > last.at):
                last = row
        services.append({
            "service": svc, "stack": svc.split("/", 1)[0] if "/" in svc else None,
            "running": sum(1 for t in members if t.state.running),
            "desired": len(members),
            "containers": sorted(t.state.name for t in members),
            "failing": h.failing if h else None, "since": h.since if h else None,
            "reason": h.reason if h else "",
            "depends_on": [up for up, _ in topology.upstreams(svc)],
            "waiting": waits,
            "last_action": last.explanation if last else None,
            "last_action_at": last.at if last else None,
        })
    graph = topology.as_json()
    return {"services": services, "graph": graph, "problems": list(problems)}


def with_held_dependents(incidents: Sequence[dict[str, Any]], items: Iterable[Tracked],
                         topology: Topology) -> list[dict[str, Any]]:
    """Open incidents with the containers held for them now (``held_dependents``): those
    whose decision waits on the incident's target's service (``core.stack.inhibit``: "depends
    on S," or "waits for S to settle"). Their hold is part of the incident: they are not
    acted on while it lasts."""
    items = list(items)
    service_of_name = {t.state.name: topology.service_of(t.state.id) for t in items}
    held: dict[str, list[str]] = {}
    for t in items:
        why = (t.last_decision.suppressed_by or "") if t.last_decision else ""
        if why.startswith("dependency: "):
            held.setdefault(why, []).append(t.state.name)
    out = []
    for i in incidents:
        svc = service_of_name.get(str(i.get("target")))
        names = sorted(n for why, ns in held.items() for n in ns if svc is not None
                       and (f"depends on {svc}," in why or f"waits for {svc} " in why))
        out.append({**i, "held_dependents": names})
    return out


def status(d: Daemon) -> dict[str, Any]:
    """The /status body: one row per watched container, the stacks, the host's forecasts,
    the ledger's health, the Swarm, what is being verified, incidents and outcomes."""
    items = d.memory.all()
    return {
        "now": d.clock(), "started_at": d.started_at, "dry_run": d.dry_run,
        "engine_connected": d.watcher.connected, "stats_path": d.sampler.path,
        "containers": container_rows(items, d.ledger, d.stacks.topology, d.signals.row),
        "stacks": stacks(d.stacks.topology, d.stacks.health, d.stacks.problems(), items,
                         d.ledger),
        "host": d.foresight.host_rows(),
        "ledger": d.ledger.health().as_dict(),
        "swarm": d.cluster.snapshot(),
        "verifying": d.verifier.open_rows(),
        "incidents": with_held_dependents(d.verifier.incident_rows(), items,
                                          d.stacks.topology),
        "outcomes": d.verifier.outcome_rows(d.cfg.ladder),
        **d.control.snapshot(),
    }
