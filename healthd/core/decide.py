"""The decision table and the guards between a decision and the engine (pure).

Owns: the staged pipeline plan → inhibit → silence → throttle → dry-run (the throttle's
budgets and rates are ``core.throttle``). Each stage takes the
candidate Decision and returns it, held back with a reason when a guard says so: a
candidate is never dropped silently. Must never: do I/O or read the clock (``now`` is an
argument), so every guard is testable along a timeline of values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from healthd.core import churn, control, escalate, fixrate, labels, ladder, stack, swarm
from healthd.core import throttle as throttling
from healthd.core.model import (
    Action,
    ActionRecord,
    Classification,
    ContainerState,
    Decision,
    Failure,
)
from healthd.core.settings import Config, table_row

# Actions on one container (the checks of its state apply); scale actions act on a service.
_CONTAINER_ACTIONS = (Action.RESTART, Action.RECREATE)
_TOUCHING = (*_CONTAINER_ACTIONS, Action.STOP)  # ... and the quarantine of label action=stop
# What a container's healthd.action / autoheal.action label makes of a restart.
_LABEL_ACTIONS = {"stop": (Action.STOP, "quarantine: stop it and leave it stopped"),
                  "notify": (Action.ALERT, "notify only, touch nothing")}
# Failures that the container's own restart policy takes care of.
_ENGINE_RESTARTS = (Failure.CRASHED, Failure.OOM_KILLED)
# How long a running container counts as draining after a stop's signal: past the stop
# timeouts people set (the engine's default is 10 s), so one that ignored the signal heals.
_DRAIN_HOLD_S = 600.0


@dataclass(frozen=True)
class Context:
    """Everything the pipeline may look at besides the container itself."""

    now: float
    config: Config
    # Recent actions, any order: at least the decided container's (or service's) own within
    # ``throttle.history_window_s``, and every container's within
    # ``throttle.GLOBAL_RATE_WINDOW_S`` (the host-wide rate limit).
    history: Sequence[ActionRecord] = ()
    watch_since: float = 0.0  # deaths before this happened while healthd was not watching
    dry_run: bool = False
    busy_services: frozenset[str] = frozenset()  # services with a pre-emptive restart in flight
    topology: stack.Topology | None = None  # None: no stack rules (a lone container)
    services: Mapping[str, stack.ServiceHealth] = field(default_factory=dict)
    # Swarm service name -> (running, desired) tasks, as this manager lists them; empty on a
    # worker or outside a Swarm (then one-at-a-time rests on this node's own actions).
    swarm_tasks: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # Operators' say (core.control): pauses (any, expired ones are ignored), decisions
    # waiting for approval by (target, action), the ones approved just now, and the id a
    # new pending decision gets.
    maintenance: Sequence[control.Maintenance] = ()
    pending: Mapping[tuple[str, Action], control.Pending] = field(default_factory=dict)
    approved: Mapping[tuple[str, Action], str] = field(default_factory=dict)  # -> who
    new_pending_id: str = ""
    started_at: float = 0.0  # when healthd started (guards.start_period_s counts from it)
    redeploys: Sequence[churn.Churn] = ()  # recent creates/destroys of projects' containers
    backup_running: bool = False  # docker-volume-backup is stopping its containers
    # The escalation ladder (core.escalate): the target's facts, its steps for the failure
    # decided on (verdicts included), and the fix rates; None: no ladder for this decision.
    ladder_target: ladder.Target | None = None
    steps: Sequence[ladder.Step] = ()
    tallies: Mapping[fixrate.Key, fixrate.Tally] = field(default_factory=dict)


Stage = Callable[[Decision, ContainerState, Classification, Context], Decision]


def plan(c: ContainerState, cls: Classification, ctx: Context) -> Decision:
    """Look the classification up in the decision table."""
    row = table_row(cls.failure, cls.resource)
    action = ctx.config.action_for(row, cls.severity)
    policy = labels.parse(c.labels)
    stop = policy.stop_timeout_s
    d = Decision(
        action=action,
        target_id=c.id,
        target_name=c.name,
        rule=f"{row}.{cls.severity.value}",
        failure=cls.failure,
        severity=cls.severity,
        evidence=cls.evidence,
        at=ctx.now,
        stop_timeout_s=stop if stop is not None else ctx.config.guards.stop_timeout_s,
        notes=policy.problems,
    )
    return _by_label(d, policy)


def _by_label(d: Decision, policy: labels.LabelPolicy) -> Decision:
    """A container's own say in what healing it means (healthd.action, autoheal.action):
    the table's restart (or recreate) becomes a stop, an alert, or a hold. Rows that do
    not touch the container (alerts, scaling) stay as the table says."""
    if policy.action is None or policy.action == "restart" or d.action not in _CONTAINER_ACTIONS:
        return d
    said = f"label {policy.action_label}={policy.action}"
    rule = f"{d.rule}.label_{policy.action}"
    if policy.action == "none":
        return dataclasses.replace(d, rule=rule,
                                   suppressed_by=f"label-action: {said}: healthd leaves it alone")
    action, what = _LABEL_ACTIONS[policy.action]
    return dataclasses.replace(d, action=action, rule=rule,
                               notes=(*d.notes, f"{said}: {what}"))


def inhibit(d: Decision, c: ContainerState, cls: Classification, ctx: Context) -> Decision:
    """Hold a container whose upstream is failing or settling: the root cause goes first."""
    if ctx.topology is None:
        return d
    held = stack.inhibit(d, c, ctx.topology, ctx.services, ctx.now,
                         ctx.config.stacks.settle_s)
    if held is d:
        return d
    # The table's dependency_failure row says what to do meanwhile: hold the action (its
    # default), raise an alert instead, or nothing at all.
    action = ctx.config.action_for(table_row(Failure.DEPENDENCY_FAILURE, None), d.severity)
    if action is Action.ALERT:
        return dataclasses.replace(held, action=Action.ALERT, suppressed_by=None,
                                   notes=(*held.notes, held.suppressed_by or ""))
    if action is Action.NONE:
        return dataclasses.replace(held, action=Action.NONE)
    return held


def silence(d: Decision, c: ContainerState, cls: Classification, ctx: Context) -> Decision:
    """Hold back what healthd must not touch at all."""
    policy = labels.parse(c.labels)
    if c.is_self:
        return d.held("self", "healthd never acts on its own container")
    if policy.enable is False:
        return d.held("opted-out", "label healthd.enable=false (or autoheal=false)")
    if ctx.config.watch.mode == "opt-in" and policy.enable is not True and not _opted_in(c, ctx):
        return d.held("not-opted-in", "watch.mode is opt-in and " + " or ".join(
            f"{k}=true" for k in dict.fromkeys(("healthd.enable", ctx.config.watch.opt_in_label))
            if k) + " is not set")
    threshold = policy.unhealthy_threshold or ctx.config.guards.unhealthy_threshold
    if cls.failure is Failure.UNHEALTHY and c.health_failing_streak < threshold:
        return d.held("threshold", f"{c.health_failing_streak} of {threshold} consecutive "
                     "failed health checks")
    if d.action not in _TOUCHING:
        return d
    held = _others_at_work(d, c, policy, ctx)
    if held is not None:
        return held
    if policy.swarm_task:
        d = _as_replace(d, c, cls, policy, ctx)
        if d.suppressed_by is not None:
            return d
    if c.stopped_on_purpose and not c.running:
        return d.held("stopped-on-purpose", "stopped or killed through the engine API")
    if cls.failure in _ENGINE_RESTARTS and _engine_will_restart(c):
        return d.held("restart-policy", f"its restart policy {c.restart_policy!r} restarts it")
    if cls.failure in _ENGINE_RESTARTS and c.finished_at and c.finished_at < ctx.watch_since:
        return d.held("before-watch", "it died before healthd was watching")
    grace = max(
        ctx.config.guards.grace_s,
        policy.grace_s if policy.grace_s is not None else 0.0,
        c.healthcheck_start_period_s,
    )
    if c.running and c.started_at and ctx.now - c.started_at < grace:
        left = grace - (ctx.now - c.started_at)
        return d.held("grace", f"started {ctx.now - c.started_at:.0f} s ago, {left:.0f} s left")
    if cls.failure is Failure.PREDICTED_EXHAUSTION and (
            policy.service in ctx.busy_services or d.service in ctx.busy_services):
        return d.held("one-at-a-time", f"another replica of {policy.service} is being restarted")
    return d


def _opted_in(c: ContainerState, ctx: Context) -> bool:
    label = ctx.config.watch.opt_in_label
    return bool(label) and (c.label(label) or "").strip().lower() in ("true", "1", "yes", "on")


def _others_at_work(d: Decision, c: ContainerState, policy: labels.LabelPolicy,
                    ctx: Context) -> Decision | None:
    """Holds for what is not healthd's to touch right now: not running (only_running),
    healthd just started (start_period_s), a redeploy or a backup under way."""
    g = ctx.config.guards
    if ctx.config.watch.only_running and c.status != "running":
        return d.held("not-running", f"it is {c.status} and watch.only_running is set")
    if d.action is Action.STOP and not c.running:
        return d.held("stopped", "already stopped (quarantined)")
    if c.running and c.started_at < c.stop_requested_at and \
            ctx.now - c.stop_requested_at < _DRAIN_HOLD_S:
        # Servers fail their healthchecks while draining: restarting one would undo the stop.
        return d.held("stopping", f"a stop through the engine API signalled it "
                     f"{ctx.now - c.stop_requested_at:.0f} s ago and it has not exited yet")
    if ctx.now - ctx.started_at < g.start_period_s:
        left = g.start_period_s - (ctx.now - ctx.started_at)
        return d.held("start-period", f"healthd started {ctx.now - ctx.started_at:.0f} s "
                     f"ago, {left:.0f} s left")
    why = churn.redeploy_hold(ctx.redeploys, churn.group_of(c.labels), ctx.now,
                              g.redeploy_window_s, g.redeploy_hold)
    if why is not None:
        return d.held(*why.split(": ", 1))
    if policy.volume_backup and ctx.backup_running:
        return d.held("backup", "docker-volume-backup is backing up (it stops and starts "
                     f"containers labelled {labels.VOLUME_BACKUP_STOP})")
    return None


def _as_replace(d: Decision, c: ContainerState, cls: Classification,
                policy: labels.LabelPolicy, ctx: Context) -> Decision:
    """A Swarm task is never restarted: one that still runs but fails is replaced (its
    container stopped, Swarm starts another), one task of its service at a time; a dead
    one is left to Swarm."""
    if cls.failure not in swarm.REPLACEABLE or not c.running or not policy.service:
        return d.held("swarm", "a Swarm task: the orchestrator replaces it")
    d = dataclasses.replace(d, action=Action.REPLACE_TASK, service=f"swarm/{policy.service}")
    running, desired = ctx.swarm_tasks.get(policy.service, (None, None))
    why = swarm.replace_guard(policy.service, running, desired, ctx.history, ctx.now,
                              ctx.config.swarm.replace_cooldown_s)
    if why is not None:
        return d.held(*why.split(": ", 1))
    return d


def _engine_will_restart(c: ContainerState) -> bool:
    if c.restart_policy in ("always", "unless-stopped"):
        return not c.stopped_on_purpose
    if c.restart_policy == "on-failure":
        return c.restart_policy_max == 0 or c.restart_count < c.restart_policy_max
    return False


def throttle(d: Decision, c: ContainerState, cls: Classification, ctx: Context) -> Decision:
    """Budget (circuit breaker), cooldown, back-off, global rate; alerts are de-duplicated
    (``core.throttle``)."""
    return throttling.throttle(d, c, ctx.history, ctx.now, ctx.config.guards)


def dry_run(d: Decision, c: ContainerState, cls: Classification, ctx: Context) -> Decision:
    """In dry-run mode every decision is recorded but none is sent."""
    if ctx.dry_run and d.acts:
        return d.held("dry-run", f"would {d.action.value.replace('_', ' ')}")
    return d


def maintain(d: Decision, c: ContainerState, cls: Classification, ctx: Context) -> Decision:
    """Hold everything about a paused target (the host, its stack, service or itself)."""
    return paused(d, ctx.maintenance, ctx.now, c.labels)


def paused(d: Decision, pauses: Sequence[control.Maintenance], now: float,
           container_labels: tuple[tuple[str, str], ...] = ()) -> Decision:
    """``d`` held when a pause in force reaches it; also for the decisions the Swarm
    leader's own table makes outside these stages (a service's or node's)."""
    if d.action is Action.NONE or d.suppressed_by is not None or not pauses:
        return d
    m = control.covering(pauses, control.names_of(d.target_name, d.service, container_labels),
                         now)
    return d if m is None else d.held(control.MAINTENANCE, m.why())


def approval(d: Decision, c: ContainerState, cls: Classification, ctx: Context) -> Decision:
    """Last: an action the guards let through waits for a person where approval says so.
    It is checked after every other guard, so approving it later re-checks them all."""
    if not d.acts:
        return d
    mode, source = control.approval_mode(ctx.config.approval, d.action, c.labels)
    if mode is control.ApprovalMode.AUTO:
        return d
    if mode is control.ApprovalMode.OFF:
        return d.held(control.OFF, f"{d.action.value} is off ({source})")
    key = (d.target_name, d.action)
    p = ctx.pending.get(key)
    if key in ctx.approved and (p is None or not p.rejected_by):
        return dataclasses.replace(d, notes=(*d.notes, f"approved by {ctx.approved[key]}"))
    if p is None:
        p = control.Pending(ctx.new_pending_id, d.action, d.target_name, d.target_id, d.rule,
                            d.explain(), ctx.now, ctx.now + ctx.config.approval.expire_s)
    guard = control.REJECTED if p.rejected_by else control.AWAITING
    return d.held(guard, control.awaiting_why(p, ctx.now))


STAGES: tuple[Stage, ...] = (maintain, inhibit, silence, throttle, dry_run, approval)


def decide(c: ContainerState, cls: Classification | None, ctx: Context) -> Decision | None:
    """Run the pipeline for one container; None when there is nothing to decide."""
    if cls is None:
        return None
    d = plan(c, cls, ctx)
    if ctx.ladder_target is not None:
        d = escalate.climb(d, c, ctx.config.ladder, ctx.ladder_target, ctx.steps, ctx.tallies,
                           ctx.config.verify.default_s)
    for stage in STAGES:
        if d.suppressed_by is not None:
            break
        d = stage(d, c, cls, ctx)
    return d


def decide_service(
    c: ContainerState, cls: Classification, service: str, replicas: int,
    ctx: Context, held: str | None = None, number: int | None = None,
) -> Decision:
    """A scale decision for ``service``: the table's action for ``cls``, acting on ``c``
    (the replica to copy, or the one to remove), through the same stages.

    held: "guard: why" when the scaler itself holds it (at its maximum, cooldown).
    """
    d = dataclasses.replace(plan(c, cls, ctx), target_name=service, service=service,
                            replicas=replicas, number=number,
                            source_id=c.id if number is not None else None)
    if held is not None:
        return dataclasses.replace(d, suppressed_by=held)
    for stage in STAGES:
        if d.suppressed_by is not None:
            break
        d = stage(d, c, cls, ctx)
    return d
