"""Swarm wiring: the listing, the peers and the core's Swarm decisions, for the main loop.

Owns: the last ``SwarmView`` this manager's engine listed, the scale windows of its
services, this node's host verdict, this node's report for its peers, and handing each
Swarm decision to ``act.runner`` (a service or node stands in as the target the runner
keeps books on). Everything runs on the main loop's thread except the listing
(``observe.swarm.SwarmWatch``) and the peers (``observe.peers.Peers``).
Must never: decide (``core.swarm`` does) or talk to the engine on the main loop.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from healthd.act.runner import Actions
from healthd.core import labels, scale, swarm, throttle
from healthd.core.model import ContainerState, Decision, Failure, Resource
from healthd.core.settings import Config
from healthd.observe import engine
from healthd.observe.containers import Limits
from healthd.observe.host import DiskUsage, HostMemory
from healthd.observe.memory import Tracked
from healthd.observe.peers import Peers, report_json
from healthd.observe.swarm import SwarmListed, SwarmWatch
from healthd.serve.metrics import Metrics
from healthd.store.ledger import Ledger

log = logging.getLogger("healthd")


class Cluster:
    """Swarm support of one healthd; idle until its engine lists a Swarm it manages."""

    def __init__(self, cfg: Config, eng: engine.Engine, out: queue.Queue[Any],
                 actions: Actions, ledger: Ledger, metrics: Metrics,
                 clock: Callable[[], float], token: str | None = None) -> None:
        self.cfg, self.actions, self.ledger, self.metrics, self.clock = (
            cfg, actions, ledger, metrics, clock)
        self.enabled = cfg.swarm.enabled
        self.view: swarm.SwarmView | None = None
        self.windows: dict[str, scale.Window] = {}
        self.host: swarm.HostReport | None = None
        self.local: dict[str, scale.ReplicaPressure] = {}  # this node's running tasks
        self.targets: dict[str, Tracked] = {}  # service/node id -> the runner's stand-in
        self.decisions: dict[str, str] = {}  # target name -> its last decision, explained
        self.hosts: dict[str, swarm.HostReport] = {}  # node id -> its host, as last told
        # Holds what an operator paused (core.control), set by the daemon; as is, none.
        self.gate: Callable[[Decision], Decision] = lambda d: d
        self.watch = SwarmWatch(eng, out, cfg.swarm.relist_s, clock)
        own_port = int(cfg.daemon.listen.rsplit(":", 1)[-1] or 0)
        self.peers = Peers(token, cfg.swarm.peer_port or own_port, cfg.swarm.peer_timeout_s,
                           cfg.swarm.relist_s, clock)

    def start(self) -> None:
        """Start listing the Swarm and asking peers (when enabled)."""
        if self.enabled:
            self.watch.start()
            self.peers.start()

    def stop(self) -> None:
        """Stop the listing and peer threads."""
        if self.enabled:
            self.watch.stop()
            self.peers.stop()

    # ---- observe ---------------------------------------------------------------------
    def on_listed(self, item: SwarmListed, busy: frozenset[str], dry_run: bool) -> None:
        """A new listing: keep it, point the peers at the other nodes, decide."""
        self.view = item.view
        if self.view is None:
            self.peers.set_targets({})
            self.metrics.swarm_leader.set(0)
            return
        self.peers.set_targets({n.id: n.addr for n in self.view.nodes
                                if n.id != self.view.self_node and n.addr
                                and n.state != "down"})
        self.metrics.swarm_leader.set(1 if self.view.is_leader else 0)
        self.tick(busy, dry_run)

    def observe_node(self, items: Iterable[Tracked], host: Tracked,
                     mem: HostMemory | None, disk: DiskUsage | None) -> None:
        """After a sweep: this node's tasks' pressure and its host's verdict.

        mem, disk: the sweep's host measures, None when not measured this sweep.
        """
        if not self.enabled:
            return
        memory = mem.used_bytes / mem.total_bytes if mem and mem.total_bytes else None
        total = disk.used_bytes + disk.free_bytes if disk else 0
        used = disk.used_bytes / total if disk and total else None
        self.local = {}
        for t in items:
            tid = t.state.label(labels.SWARM_TASK)
            if tid and t.state.running:
                self.local[tid] = scale.ReplicaPressure(
                    tid, cpu=t.usage.cpu_fraction if t.usage else None,
                    memory=t.usage.mem_fraction if t.usage else None,
                    forecast_alarm=any(f.alarm for f in t.forecasts
                                       if f.resource in (Resource.MEMORY, Resource.CPU)))
        alarms = [f"{f.resource.value} forecast alarm (full in {f.eta_s:.0f} s)"
                  for f in host.forecasts if f.alarm and f.eta_s is not None]
        s = self.cfg.swarm
        self.host = swarm.host_report(memory, used, alarms, s.host_memory_critical,
                                      s.host_disk_critical, self.host, self.clock())

    def report(self) -> dict[str, Any]:
        """This node's report for its peers (``GET /swarm/report``)."""
        node = self.view.self_node if self.view else ""
        return report_json(node, self.local, self.host, self.clock())

    def service_states(self, ids: Iterable[str], failing: Mapping[str, Failure]) -> tuple[
            list[tuple[ContainerState, Failure | None]], list[str]]:
        """The services ``ids`` (by id or key ``swarm/<name>``: a verified rollback's or
        task replacement's) as the last listing shows them, for their windows: one is
        well with every task running and no update under way, failing while Swarm paused
        it or while one of its tasks here fails (``failing``: service key -> the failure of
        a local task); ids the listing lacks were removed."""
        view = self.view
        if view is None:
            return [], []
        by_id = {s.id: s for s in view.services}
        by_id.update({s.key: s for s in view.services})
        counts = self.task_counts()
        seen, gone = [], []
        for sid in ids:
            svc = by_id.get(sid)
            if svc is None:
                gone.append(sid)
                continue
            running, desired = counts[svc.name]
            state = svc.update_state
            well = state not in ("updating", "paused", "rollback_started",
                                 "rollback_paused") and running >= desired
            failure = (Failure.ROLLBACK_FAILED if state == "rollback_paused"
                       else Failure.UPDATE_FAILED if state == "paused"
                       else failing.get(svc.key))
            well = well and failure is None
            seen.append((ContainerState(id=sid, name=svc.key,
                                        status="running" if well else "created"), failure))
        return seen, gone

    def asking_more(self, keys: Iterable[str]) -> tuple[dict[str, bool], list[str]]:
        """Whether each Swarm service (by key) still asks for more replicas than it has,
        by its latest recommendation (a scale step's verdict reads it), and the keys the
        listing lacks (removed)."""
        view = self.view
        if view is None:
            return {}, []
        by_key = {s.key: s for s in view.services}
        asking, gone = {}, []
        for key in keys:
            svc = by_key.get(key)
            if svc is None:
                gone.append(key)
                continue
            recs = self.windows.get(key, ())
            if recs and svc.replicas is not None:
                asking[key] = recs[-1][1] > svc.replicas
        return asking, gone

    def task_counts(self) -> dict[str, tuple[int, int]]:
        """Swarm service name -> (running, desired) tasks, for the container rules."""
        if self.view is None:
            return {}
        out = {}
        for svc in self.view.services:
            running = len(self.view.running(svc.id))
            desired = svc.replicas if svc.replicas is not None else len(
                [t for t in self.view.tasks_of(svc.id) if t.desired == "running"])
            out[svc.name] = (running, desired)
        return out

    # ---- decide and act --------------------------------------------------------------
    def tick(self, busy: frozenset[str], dry_run: bool) -> None:
        """Decide on every service and node and hand the decisions to the runner."""
        view = self.view
        if view is None or not self.enabled:
            return
        now = self.clock()
        pressure: dict[str, scale.ReplicaPressure] = dict(self.local)
        hosts: dict[str, swarm.HostReport] = {}
        if self.host is not None:
            hosts[view.self_node] = self.host
        for node, rep in self.peers.reports().items():
            pressure.update(rep.tasks)
            if rep.host is not None:
                hosts[node] = rep.host
        self.hosts = hosts
        horizon = throttle.history_window_s(self.cfg.guards)
        busy = busy | frozenset(self.actions.in_flight)  # service keys and target ids
        plan = swarm.decide(swarm.Inputs(
            view, self.cfg, now, pressure, hosts, self.windows,
            self.ledger.recent(now - horizon), busy, dry_run))
        self.windows = dict(plan.windows)
        for d in map(self.gate, plan.decisions):
            t = self._stand_in(d.target_id, d.target_name)
            self.decisions[d.target_name] = d.explain()
            self.actions.handle(t, d, None)
            if d.acts:
                self.watch.wake()  # see the result as soon as the engine has it

    def _stand_in(self, target_id: str, name: str) -> Tracked:
        t = self.targets.get(target_id)
        if t is None or t.state.name != name:
            t = self.targets[target_id] = Tracked(
                state=ContainerState(id=target_id, name=name), limits=Limits(None, None, None),
                inspected=True)
        return t

    # ---- status ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any] | None:
        """For /status: services with running/desired, update state, tasks' nodes; nodes
        with the leader; who scaled last; the last decision on each."""
        view = self.view
        if view is None:
            return None
        names = {n.id: n.hostname or n.id[:12] for n in view.nodes}
        reports = self.peers.reports()
        services, counts = [], self.task_counts()
        for svc in view.services:
            running, desired = counts[svc.name]
            services.append({
                "service": svc.name, "mode": svc.mode, "running": running,
                "desired": desired, "update_state": svc.update_state or None,
                "tasks": [{"task": t.id[:12], "slot": t.slot, "node": names.get(t.node_id, ""),
                           "state": t.state}
                          for t in view.running(svc.id)],
                "scaled_by": svc.label(labels.SWARM_SCALED_BY),
                "scaled_at": svc.label(labels.SWARM_SCALED_AT),
                "decision": self.decisions.get(svc.key),
            })
        nodes = [{
            "node": names[n.id], "id": n.id[:12], "role": n.role, "state": n.state,
            "availability": n.availability, "leader": n.leader,
            "self": n.id == view.self_node,
            "peer": "self" if n.id == view.self_node else
                    ("answering" if n.id in reports else "unknown"),
            "drained_by": n.label(labels.SWARM_DRAINED_BY),
            "decision": self.decisions.get(f"node/{n.hostname or n.id[:12]}"),
        } for n in view.nodes]
        lead = view.leader
        return {"leader": names.get(lead.id) if lead else None, "is_leader": view.is_leader,
                "services": services, "nodes": nodes}

    def export(self) -> None:
        """The Swarm gauges: replicas running/desired per service."""
        self.metrics.swarm_replicas.clear()
        for name, (running, desired) in self.task_counts().items():
            self.metrics.swarm_replicas.labels(name, "running").set(running)
            self.metrics.swarm_replicas.labels(name, "desired").set(desired)
