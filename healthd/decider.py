"""The decide step of the loop: what the shell knows in, a decision to the actions out.

Owns: a container's decision context (its ledger rows, the stack's health, the guards'
inputs: redeploys, backups, pauses, the ladder's rung), the order containers are decided
in (upstreams first), the pipeline run on each (``core.classify`` → ``core.stack`` →
``core.decide`` → ``core.escalate``), Compose scale decisions, and an operator's approval
decided again. Must never: hold a rule itself (those are ``core``'s), talk to the engine,
or read the clock other than through ``clock``.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from healthd.act.control import Approve, Control
from healthd.act.escalation import Escalation
from healthd.act.notifier import Notifier
from healthd.act.runner import Actions
from healthd.act.verify import Verifier
from healthd.cluster import Cluster
from healthd.core import churn, classify, decide, stack, throttle
from healthd.core.model import Action, Classification
from healthd.core.settings import Config
from healthd.observe.appsignals import AppSignals
from healthd.observe.containers import Event
from healthd.observe.memory import Memory, Tracked
from healthd.observe.stacks import Stacks, scale_candidates
from healthd.store.ledger import Ledger


class Decider:
    """Decides for one container (or a service's scale) at a time, on the main loop."""

    def __init__(self, cfg: Config, clock: Callable[[], float], ledger: Ledger,
                 memory: Memory, stacks: Stacks, actions: Actions, control: Control,
                 escalation: Escalation, verifier: Verifier, signals: AppSignals,
                 cluster: Cluster, notifier: Notifier | None, watch_since: float,
                 started_at: float) -> None:
        """watch_since: deaths before it happened while healthd was not watching."""
        self.cfg, self.clock, self.ledger, self.memory = cfg, clock, ledger, memory
        self.stacks, self.actions, self.control = stacks, actions, control
        self.escalation, self.verifier, self.signals = escalation, verifier, signals
        self.cluster, self.notifier = cluster, notifier
        self.watch_since, self.started_at = watch_since, started_at
        self.dry_run = cfg.daemon.dry_run
        self.image_tags: dict[str, str] = {}  # tag -> image id, as last listed
        # Creates and destroys in projects that healthd did not cause (guards.redeploy_*).
        self.churn: collections.deque[churn.Churn] = collections.deque(maxlen=2000)
        self.backup_running = False  # as of the last sweep

    def note_churn(self, ev: Event) -> None:
        """Keep a create or destroy (a Swarm task's death too) in a project or service that
        healthd is not acting on itself: someone else may be redeploying it."""
        swarm_died = ev.verb == "die" and ev.group.startswith("swarm/")
        if not ev.group or not (ev.verb in ("create", "destroy") or swarm_died):
            return
        if any(s == ev.group or s.startswith(f"{ev.group}/")
               for s in self.actions.busy_services()):
            return
        self.churn.append(churn.Churn(ev.time, ev.group, ev.verb))

    def context(self, now: float, name: str | None = None, **ladder: Any) -> decide.Context:
        """name: a container's decision reads its own rows and the host's last minute only
        (the whole host's would cost more with every action taken, just when many are).
        ladder: the escalation ladder's fields for that container (``act.escalation``)."""
        history = self.ledger.recent(
            now - throttle.history_window_s(self.cfg.guards), container=name,
            everyone_since=None if name is None else now - throttle.GLOBAL_RATE_WINDOW_S)
        window = self.cfg.guards.redeploy_window_s
        while self.churn and now - self.churn[0].at > window:
            self.churn.popleft()
        return decide.Context(
            now=now, config=self.cfg, history=history,
            watch_since=self.watch_since, dry_run=self.dry_run,
            busy_services=self.actions.busy_services(),
            topology=self.stacks.topology, services=self.stacks.health,
            swarm_tasks=self.cluster.task_counts(), started_at=self.started_at,
            redeploys=tuple(self.churn), backup_running=self.backup_running,
            **self.control.context(), **ladder)

    def in_dependency_order(self, items: list[Tracked]) -> list[Tracked]:
        rank = {svc: i for i, svc in enumerate(self.stacks.topology.order())}
        topo = self.stacks.topology
        return sorted(items, key=lambda t: rank.get(topo.service_of(t.state.id) or "", -1))

    def refresh_service(self, t: Tracked) -> None:
        """Fold ``t``'s service's members into its health, after ``t`` changed."""
        topo = self.stacks.topology
        service = topo.service_of(t.state.id)
        if service is None:
            return
        members = []
        for cid in topo.members(service):
            m = self.memory.get(cid)
            if m is not None and m.inspected:
                members.append(stack.Member(
                    m.state, m.failure, in_flight=cid in self.actions.in_flight,
                    started_by_healthd=self.actions.started_by_healthd(cid, m.state.started_at)))
        self.stacks.refresh(service, members, self.clock())

    def scale(self, now: float) -> None:
        """Scale decisions for the compose services that allow it (replicas.max)."""
        ctx = self.context(now)
        for cand in scale_candidates(self.stacks, self.memory, ctx.history,
                                     ctx.busy_services, now):
            v = cand.verdict
            cls = Classification(v.failure, v.severity, v.evidence)
            d = decide.decide_service(cand.target, cls, cand.service, v.desired, ctx,
                                      held=v.held, number=cand.number)
            t = self.memory.get(cand.target.id)
            if t is not None:
                self.control.on_decision(d)
                self.actions.handle(t, d, None)

    def evaluate(self, t: Tracked, trigger: float | None = None) -> None:
        if not t.inspected:
            return  # a placeholder knows no labels or restart policy: wait for its inspect
        now = self.clock()
        sig = self.signals.signals(t.state, now)
        t.assessment, cls = classify.assess(
            t.state, t.usage, (*t.forecasts, *self.signals.forecasts(t.state.id)), now,
            self.cfg.classify, self.cfg.thresholds, sig, self.cfg.signals)
        t.failure = cls.failure if cls else None
        # What an event shows is as of the event: one replayed from before healthd's own
        # restart (after healthd itself restarted) must not read as the problem recurring.
        self.verifier.observe(t.state, t.failure, trigger if trigger is not None else now)
        self.refresh_service(t)
        cls = stack.drift(t.state, cls, self.stacks.topology, self.image_tags)
        if cls is None:
            cls = stack.followed_restart(t.state, self.stacks.topology, self.stacks.health,
                                         now, self.cfg.stacks.settle_s, self.watch_since)
        if cls is None:
            t.last_decision, t.last_recorded = None, None
            self.escalation.recovered(t.state)
            # Notified per incident: "resolved" once a rung's fix held, not at every
            # healthy moment between rungs.
            if self.notifier is not None and not self.verifier.in_incident(t.state.id,
                                                                           t.state.name):
                self.notifier.healthy(t.state)  # resolves what was notified about it
            return
        topo = self.stacks.topology
        d = decide.decide(t.state, cls, self.context(
            now, t.state.name, **self.escalation.context(t.state, cls.failure, topo)))
        if d is None:
            t.last_decision = None
            return
        if d.action is Action.RECREATE:
            d = stack.with_recreate_source(d, t.state, self.stacks.topology,
                                           [m.state for m in self.memory.all()])
        elif d.action is Action.SCALE_UP and d.rung:  # the ladder's, on a container
            d = stack.with_scale_up(d, t.state, topo, [m.state for m in self.memory.all()])
        self.control.on_decision(d)
        self.actions.handle(t, d, trigger)
        self.escalation.decided(d, topo)
        if d.acts:
            self.refresh_service(t)  # in flight now: its dependents wait for it

    def on_approve(self, req: Approve) -> None:
        """An operator approved a pending decision: decide again now, every guard included,
        and act if they all let it through; the HTTP thread waits for the outcome."""
        p = req.pending
        if self.control.find(p.id) is None:
            req.result.set_result(None)  # expired or rejected meanwhile
            return
        self.control.approved[p.key] = req.who
        try:
            t = next((m for m in self.memory.all()
                      if m.state.name == p.target and m.inspected), None)
            if self.control.is_scale(p):
                self.scale(self.clock())
            elif t is not None and t.state.id in self.actions.in_flight:
                req.result.set_result(f"held: an action on {p.target} is in flight; "
                                      "approve again once it is done")
                return
            elif t is not None:
                self.evaluate(t)
            req.result.set_result(self.control.approved_now(p, self.control.seen.get(p.key)))
        finally:
            self.control.approved.clear()
            self.control.seen.clear()
