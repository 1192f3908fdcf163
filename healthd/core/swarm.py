"""The Swarm's decision rows (pure), on the Swarm as one value (``core.swarmview``).

Owns: the service and node decisions the leader's healthd takes from a ``SwarmView``:
SCALE_UP / SCALE_DOWN of a replicated service (through ``core.scale``, the same windows and
steps as Compose scaling), ROLLBACK of a failing update once, DRAIN of an exhausted node
and ACTIVATE of a recovered one; and the guard of a task's replacement.
Must never: do I/O or read the clock; never decide an action for a global service's
replica count or a job; never let a node that is not the leader act.

Guard state that must outlive a leader change lives in the Swarm itself:
- a scale writes ``healthd.swarm.scaled_at/from/to/by`` and ``base`` (the operator's own
  count) on the service in the same update that changes its replicas; the next leader's
  healthd reads its cooldown and fresh-window start from them (``scale_history``);
- a rollback is Swarm's own ``UpdateStatus``: ``rollback_*`` states are never rolled back
  again (a failed rollback raises an alert), so "once" holds whoever leads;
- a drain writes ``healthd.swarm.drained_at/by`` on the node with its availability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from healthd.core import labels, scale
from healthd.core.model import (
    ENGINE_ACTIONS,
    Action,
    ActionRecord,
    Decision,
    Failure,
    Health,
    Outcome,
)
from healthd.core.settings import Config, table_row
from healthd.core.swarmview import GLOBAL as GLOBAL
from healthd.core.swarmview import JOB as JOB
from healthd.core.swarmview import REPLICATED as REPLICATED
from healthd.core.swarmview import HostReport as HostReport
from healthd.core.swarmview import Node as Node
from healthd.core.swarmview import Service as Service
from healthd.core.swarmview import SwarmView as SwarmView
from healthd.core.swarmview import Task as Task
from healthd.core.swarmview import host_report as host_report
from healthd.core.swarmview import node_labels as node_labels
from healthd.core.swarmview import operator_replicas as operator_replicas
from healthd.core.swarmview import scale_history as scale_history
from healthd.core.swarmview import scale_labels as scale_labels

# UpdateStatus.State values (lower case as the API gives them); "" when never updated.
_IN_UPDATE = ("updating", "paused", "rollback_started", "rollback_paused")
_ROLLBACK_STATES = ("rollback_started", "rollback_paused", "rollback_completed")
_TASK_FAILED = ("failed", "rejected")
_COUNTED = (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.PENDING, Outcome.ABANDONED)


@dataclass(frozen=True)
class Inputs:
    """Everything a Swarm tick decides from.

    pressure: task id -> its latest pressure; a running task missing here is unknown (its
      node's healthd did not answer), never idle.
    hosts: node id -> its host report; a node missing here is unknown.
    windows: service key -> its earlier scale recommendations (core.scale.Window).
    history: this healthd's own recent actions (the ledger).
    busy: service keys and node ids with an action in flight.
    """

    view: SwarmView
    config: Config
    now: float
    pressure: Mapping[str, scale.ReplicaPressure] = field(default_factory=dict)
    hosts: Mapping[str, HostReport] = field(default_factory=dict)
    windows: Mapping[str, scale.Window] = field(default_factory=dict)
    history: Sequence[ActionRecord] = ()
    busy: frozenset[str] = frozenset()
    dry_run: bool = False


@dataclass(frozen=True)
class Plan:
    """A tick's decisions (held ones too, each with its reason) and the new windows."""

    decisions: tuple[Decision, ...] = ()
    windows: Mapping[str, scale.Window] = field(default_factory=dict)


def bounds(svc: Service, cfg: Config) -> tuple[scale.Bounds | None, tuple[str, ...]]:
    """``healthd.replicas.min``/``max`` of the service's labels, or ``[dependencies."swarm/x"]``
    in config.toml (config wins); None when it may not be scaled, with label problems."""
    spec = next((d for d in cfg.dependencies if d.service == svc.key), None)
    problems: list[str] = []
    values: dict[str, int] = {}
    for key, name in ((labels.REPLICAS_MIN, "min"), (labels.REPLICAS_MAX, "max")):
        raw = svc.label(key)
        if raw is None:
            continue
        try:
            v = int(raw)
        except ValueError:
            v = 0
        if v < 1:
            problems.append(f"{svc.key}: label {key}={raw!r} ignored: expected a whole number"
                            " >= 1")
        else:
            values[name] = v
    lo = spec.replicas_min if spec and spec.replicas_min else values.get("min", 1)
    hi = spec.replicas_max if spec and spec.replicas_max else values.get("max")
    if hi is None:
        return None, tuple(problems)
    if hi < lo:
        return None, (*problems, f"{svc.key}: replicas max {hi} is below min {lo}")
    return scale.Bounds(lo, hi, operator_replicas(svc)), tuple(problems)


# --- the decision rows --------------------------------------------------------------------


def _decision(inp: Inputs, action: Action | None, failure: Failure, severity: Health,
              target_id: str, target_name: str, evidence: Sequence[str],
              service: str | None = None, replicas: int | None = None,
              version: int | None = None) -> Decision:
    """A Decision from the table's cell for ``failure``; ``action`` only where the table
    has no say (an alert instead of a rollback that has nothing to roll back to)."""
    row = table_row(failure, None)
    chosen = inp.config.action_for(row, severity) if action is None else action
    return Decision(action=chosen, target_id=target_id, target_name=target_name,
                    rule=f"{row}.{severity.value}", failure=failure, severity=severity,
                    evidence=tuple(evidence), at=inp.now, service=service,
                    replicas=replicas, version=version)


def _rollback(svc: Service, inp: Inputs) -> Decision | None:
    """ROLLBACK of an update whose new tasks fail (or that Swarm paused), once; an alert
    when the rollback itself fails. None while the update is fine or there is none."""
    state, key, v = svc.update_state, svc.key, svc.version
    if state == "rollback_paused":
        return _decision(inp, None, Failure.ROLLBACK_FAILED, Health.CRITICAL, svc.id, key,
                         ["the rollback paused: " + (svc.update_message or "no message")],
                         service=key, version=v)
    if state in _ROLLBACK_STATES or state not in ("updating", "paused", "completed"):
        return None  # never a second rollback: Swarm's own state says one was made
    failed = [t for t in inp.view.tasks_of(svc.id)
              if t.state in _TASK_FAILED and t.created_at >= svc.update_started_at]
    if state != "paused" and len(failed) < inp.config.swarm.rollback_failed_tasks:
        return None
    # Swarm's own failure_action pauses an update within its monitor period; healthd steps
    # in only when it has not (a rollback sent mid-update did not always complete here).
    first = min((t.at for t in failed), default=inp.now)
    if state != "paused" and inp.now - first < inp.config.swarm.rollback_wait_s:
        return None
    if state == "completed":
        # Swarm may call an update completed while its new tasks crash (moby/moby#37972):
        # within update_watch_s of its start, short of tasks and failing, it is failing.
        running = len(inp.view.running(svc.id))
        desired = svc.replicas if svc.replicas is not None else len(
            [t for t in inp.view.tasks_of(svc.id) if t.desired == "running"])
        if inp.now - svc.update_started_at > inp.config.swarm.update_watch_s \
                or running >= desired:
            return None
        state = f"completed with {running} of {desired} tasks running"
    evidence = [f"update {state}" + (f": {svc.update_message}" if svc.update_message else "")]
    if failed:
        errs = sorted({t.error for t in failed if t.error})
        evidence.append(f"{len(failed)} new task(s) failed" + (f" ({'; '.join(errs)})"
                                                              if errs else ""))
    if not svc.has_previous:
        return _decision(inp, Action.ALERT, Failure.UPDATE_FAILED, Health.CRITICAL, svc.id,
                         key, [*evidence, "no previous spec to roll back to"],
                         service=key, version=v)
    d = _decision(inp, None, Failure.UPDATE_FAILED, Health.CRITICAL, svc.id, key, evidence,
                  service=key, version=v)
    mine = [r for r in inp.history if r.container == svc.key and r.action is Action.ROLLBACK
            and r.outcome in _COUNTED and r.at >= svc.update_started_at]
    if mine:
        return d.held("once", f"rolled back {inp.now - mine[-1].at:.0f} s ago")
    return d


def _scale(svc: Service, inp: Inputs, windows: dict[str, scale.Window]) -> Decision | None:
    """SCALE_UP / SCALE_DOWN of a replicated service from its tasks' pressure (core.scale)."""
    if svc.mode != REPLICATED or svc.replicas is None:
        return None  # global services and jobs are never scaled
    b, _ = bounds(svc, inp.config)
    if b is None:
        return None
    settings = inp.config.scaling
    running = inp.view.running(svc.id)
    pressure = [inp.pressure.get(t.id, scale.ReplicaPressure(t.id)) for t in running]
    current = svc.replicas
    rec = scale.recommend(pressure, current, settings)
    if len(running) < current:
        # Mid-step: tasks still starting (or failing). Judge the next step on a whole set.
        windows[svc.key] = ()
        return None
    # The labels say what any leader did; this healthd's own ledger also knows what it sent
    # that the listing may not show yet.
    mine = [r for r in inp.history if r.container == svc.key
            and r.action in (Action.SCALE_UP, Action.SCALE_DOWN)]
    verdict = scale.scale(pressure, current, b, windows.get(svc.key, ()),
                          (*scale_history(svc), *mine), settings, inp.now, rec)
    windows[svc.key] = scale.remember(windows.get(svc.key, ()), inp.now, rec.desired, settings)
    if verdict is None:
        return None
    d = _decision(inp, None, verdict.failure, verdict.severity, svc.id, svc.key,
                  verdict.evidence, service=svc.key, replicas=verdict.desired,
                  version=svc.version)
    return d.held(*verdict.held.split(": ", 1)) if verdict.held else d


def _nodes(inp: Inputs) -> list[Decision]:
    """DRAIN an exhausted node while another active one can take its tasks, one node at a
    time, never the last; ACTIVATE a node healthd drained once its host was fine a window."""
    view, out = inp.view, []
    active = [n for n in view.nodes if n.availability == "active" and n.state == "ready"]
    drained = [n for n in view.nodes if n.drained_by_healthd]
    for n in view.nodes:  # in list order; a drain decided here counts for the next ones
        rep = inp.hosts.get(n.id)
        name = f"node/{n.hostname or n.id[:12]}"
        if rep is None:
            continue  # its healthd did not answer: unknown, neither exhausted nor recovered
        if rep.exhausted and n.availability == "active":
            d = _decision(inp, None, Failure.NODE_EXHAUSTED, Health.CRITICAL, n.id, name,
                          [rep.why or "host exhausted"], version=n.version)
            takers = [o for o in active if o.id != n.id and o.id in inp.hosts
                      and not inp.hosts[o.id].exhausted]
            if drained:
                d = d.held("one-node", f"node {drained[0].hostname or drained[0].id[:12]} "
                          "is drained by healthd already")
            elif not takers:
                d = d.held("last-active", "no other active node with a known, healthy host "
                          f"to take its tasks ({len(active)} active)")
            else:
                drained.append(n)
            out.append(d)
        elif n.drained_by_healthd and not rep.exhausted and rep.ok_since is not None:
            fine = inp.now - rep.ok_since
            window = inp.config.swarm.drain_recovered_s
            d = _decision(inp, None, Failure.NODE_RECOVERED, Health.DEGRADED, n.id, name,
                          [f"host fine for {fine:.0f} s (window {window:.0f} s)"],
                          version=n.version)
            if fine < window:
                d = d.held("recovering", f"{window - fine:.0f} s of the window left")
            out.append(d)
    return out


def _guard(d: Decision, inp: Inputs) -> Decision:
    """The guards every Swarm action passes: leader, one step at a time, dry-run; an alert
    is raised once per ``guards.alert_repeat_s``."""
    if d.action is Action.ALERT and d.suppressed_by is None:
        said = [r.at for r in inp.history if r.container == d.target_name
                and r.action is Action.ALERT and r.rule == d.rule
                and r.outcome is Outcome.SUCCEEDED]
        if said and inp.now - max(said) < inp.config.guards.alert_repeat_s:
            return d.held("alert-repeat", f"same alert raised {inp.now - max(said):.0f} s ago")
    if not d.acts:
        return d
    lead = inp.view.leader
    if not inp.view.is_leader:
        who = (lead.hostname or lead.id[:12]) if lead else "none"
        return d.held("not-leader", f"the leader ({who}) acts, not this node")
    if d.service in inp.busy or d.target_id in inp.busy:
        return d.held("in-flight", "its last action is still in flight")
    # The listing this decision read was taken before healthd's own last action on it:
    # wait for one that shows the result, or the same step would be taken twice.
    since = [r.at for r in inp.history if r.container == d.target_name
             and r.action in ENGINE_ACTIONS and r.outcome in _COUNTED and r.at >= inp.view.at]
    if since:
        return d.held("settling", f"acted {inp.now - max(since):.0f} s ago, after the last "
                     "listing of the swarm")
    if inp.dry_run:
        return d.held("dry-run", f"would {d.action.value.replace('_', ' ')}")
    return d


def decide(inp: Inputs) -> Plan:
    """Every service and node decision of this tick (held ones with their reason)."""
    windows: dict[str, scale.Window] = dict(inp.windows)
    out: list[Decision] = []
    for svc in inp.view.services:
        if svc.mode == JOB:
            continue  # one-off work: left alone
        d = _rollback(svc, inp)
        if d is None and svc.update_state not in _IN_UPDATE:
            d = _scale(svc, inp, windows)
        if d is not None:
            out.append(d)
    out.extend(_nodes(inp))
    keys = {s.key for s in inp.view.services}
    windows = {k: w for k, w in windows.items() if k in keys}
    return Plan(tuple(_guard(d, inp) for d in out), windows)


# --- tasks: the container rule on every node ---------------------------------------------

# A Swarm task's failures that healthd replaces (its container stopped, Swarm starts a new
# one): those Swarm does not see, the container still running. A dead task, or one its
# healthcheck calls unhealthy, Swarm replaces by itself.
REPLACEABLE = (Failure.PREDICTED_EXHAUSTION, Failure.RESOURCE_PRESSURE,
               Failure.APPLICATION_ERROR, Failure.LATENCY_DEGRADED)


def replace_guard(service: str, running: int | None, desired: int | None,
                  history: Sequence[ActionRecord], now: float, cooldown_s: float) -> str | None:
    """Why a task of ``service`` (its Swarm name) may not be replaced now, or None.

    running/desired: the service's running and desired tasks when this node can see them
      (a manager); None on a worker. history: this healthd's actions; now: epoch seconds.
    """
    if running is not None and desired is not None and running < desired:
        return f"one-at-a-time: {running} of {desired} tasks of {service} running"
    prefix = f"{service}."
    done = [r.at for r in history if r.action is Action.REPLACE_TASK
            and r.container.lstrip("/").startswith(prefix) and r.outcome in _COUNTED]
    if done and now - max(done) < cooldown_s:
        return (f"replace-cooldown: a task of {service} replaced {now - max(done):.0f} s ago "
                f"(cooldown {cooldown_s:.0f} s)")
    return None
