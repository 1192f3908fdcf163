"""healthd.core.swarm: the Swarm's decision rows and the leader rules, along timelines.

A `Cluster` plays the shell and the engine: each tick it asks ``swarm.decide`` for a plan,
applies what acts the way the engine would (a scale writes the labels with the replicas,
a rollback moves ``UpdateStatus``, a drain marks the node) and keeps the windows. Two
healthd (one per manager) can tick on the same cluster; ``now`` is a value, nothing sleeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from healthd.core import config, decide, labels, scale, settings, swarm
from healthd.core.model import (
    Action,
    ActionRecord,
    Classification,
    ContainerState,
    Decision,
    Failure,
    Health,
    Outcome,
    Resource,
)
from healthd.core.settings import Config, ScalingSettings
from healthd.core.swarm import HostReport, Node, Service, SwarmView, Task

T0 = 1_700_000_000.0
TICK = 5.0
FAST = ScalingSettings(scale_up_window_s=10.0, scale_down_window_s=30.0, cooldown_s=20.0,
                       target_cpu=0.5)


def conf(**swarm_kw: object) -> Config:
    c = Config()
    return dataclasses.replace(c, scaling=FAST,
                               swarm=dataclasses.replace(c.swarm, **swarm_kw))  # type: ignore[arg-type]


def nodes(leader: str = "n1", n: int = 3) -> tuple[Node, ...]:
    return tuple(Node(f"n{i}", hostname=f"node{i}", addr=f"127.0.0.{i + 1}", role="manager",
                      leader=f"n{i}" == leader) for i in range(1, n + 1))


def web(replicas: int = 1, lo: int = 1, hi: int = 3, **kw: object) -> Service:
    lab = ((labels.REPLICAS_MIN, str(lo)), (labels.REPLICAS_MAX, str(hi)))
    base: dict[str, object] = {"id": "s-web", "name": "web", "version": 10,
                               "replicas": replicas, "labels": lab}
    base.update(kw)
    return Service(**base)  # type: ignore[arg-type]


def tasks(svc: Service, n: int, node_of: Mapping[int, str] | None = None) -> tuple[Task, ...]:
    return tuple(Task(f"{svc.name}-t{i}", svc.id, node_id=(node_of or {}).get(i, f"n{i % 3 + 1}"),
                      slot=i, state="running", created_at=T0 - 100) for i in range(1, n + 1))


@dataclasses.dataclass
class Cluster:
    """The engine's side: services and nodes change only through applied decisions."""

    services: dict[str, Service]
    node_list: tuple[Node, ...]
    cpu: float = 0.9  # every running task's CPU, fraction of its limit
    log: list[tuple[float, str, Decision]] = dataclasses.field(default_factory=list)

    def view(self, me: str, at: float = 0.0) -> SwarmView:
        """The cluster as listed at ``at`` (epoch seconds)."""
        ts: list[Task] = []
        for s in self.services.values():
            n = s.replicas if s.mode == swarm.REPLICATED else len(self.node_list)
            ts.extend(tasks(s, n or 0))
        return SwarmView(me, self.node_list, tuple(self.services.values()), tuple(ts), at)

    def apply(self, d: Decision, now: float, by: str) -> None:
        svc = next((s for s in self.services.values() if s.id == d.target_id), None)
        if d.action in (Action.SCALE_UP, Action.SCALE_DOWN) and svc and d.replicas:
            self.services[svc.name] = dataclasses.replace(
                svc, replicas=d.replicas, version=svc.version + 1,
                labels=tuple(swarm.scale_labels(svc, d.replicas, now, by).items()))
        elif d.action is Action.ROLLBACK and svc:
            self.services[svc.name] = dataclasses.replace(svc, update_state="rollback_started")
        elif d.action in (Action.DRAIN, Action.ACTIVATE):
            self.node_list = tuple(
                dataclasses.replace(n, availability="drain" if d.action is Action.DRAIN
                                    else "active",
                                    labels=tuple(swarm.node_labels(
                                        n, d.action is Action.DRAIN, now, by).items()))
                if n.id == d.target_id else n for n in self.node_list)


@dataclasses.dataclass
class Healthd:
    """One node's healthd: its own windows and ledger; acts when the plan says so."""

    node: str
    cfg: Config = dataclasses.field(default_factory=conf)
    windows: Mapping[str, scale.Window] = dataclasses.field(default_factory=dict)
    history: list[ActionRecord] = dataclasses.field(default_factory=list)
    hosts: Mapping[str, HostReport] | None = None

    def tick(self, c: Cluster, now: float) -> list[Decision]:
        view = c.view(self.node, now - 0.5)  # listed half a second before the tick
        pressure = {t.id: scale.ReplicaPressure(t.id, cpu=c.cpu) for t in view.tasks}
        hosts = self.hosts if self.hosts is not None else {
            n.id: HostReport(False, ok_since=T0 - 1000) for n in c.node_list}
        plan = swarm.decide(swarm.Inputs(view, self.cfg, now, pressure, hosts, self.windows,
                                         self.history))
        self.windows = plan.windows
        for d in plan.decisions:
            if d.acts or (d.action is Action.ALERT and d.suppressed_by is None):
                self.history.append(ActionRecord(d.target_name, d.action, now,
                                                 Outcome.SUCCEEDED, rule=d.rule))
            if d.acts:
                c.log.append((now - T0, self.node, d))
                c.apply(d, now, self.node)
        return list(plan.decisions)

    def run(self, c: Cluster, start_s: float, until_s: float) -> None:
        t = start_s
        while t <= until_s:
            self.tick(c, T0 + t)
            t += TICK


def acted(c: Cluster) -> list[tuple[float, str, str, int | None]]:
    return [(t, who, d.action.value, d.replicas) for t, who, d in c.log]


# --- scaling ------------------------------------------------------------------------------


def test_sustained_pressure_scales_up_to_max_and_no_further_then_down_after_the_window() -> None:
    c = Cluster({"web": web(1)}, nodes())
    h = Healthd("n1")
    h.run(c, 0, 120)
    # up window 10 s, cooldown 20 s: 1 -> 2 at 10 s, 2 -> 3 at 30 s, then held at max
    assert acted(c) == [(10.0, "n1", "scale_up", 2), (30.0, "n1", "scale_up", 3)]
    held = h.tick(c, T0 + 125)
    assert held and held[0].suppressed_by and held[0].suppressed_by.startswith("at-max")
    c.cpu = 0.05
    h.run(c, 130, 260)
    downs = [a for a in acted(c) if a[2] == "scale_down"]
    # The down window (30 s) counts from the first idle tick; after a step, a whole fresh
    # window (its first entry after the step, 165 s) again.
    assert downs == [(160.0, "n1", "scale_down", 2), (195.0, "n1", "scale_down", 1)]
    assert c.services["web"].replicas == 1


def test_scale_down_stops_at_the_operators_own_count() -> None:
    c = Cluster({"web": web(2, hi=4)}, nodes())
    h = Healthd("n1")
    h.run(c, 0, 60)
    assert c.services["web"].replicas == 4
    assert c.services["web"].label(labels.SWARM_BASE) == "2"
    c.cpu = 0.0
    h.run(c, 65, 400)
    assert c.services["web"].replicas == 2


def test_the_operator_changing_replicas_becomes_the_new_base() -> None:
    svc = dataclasses.replace(web(3), labels=(*web(3).labels, (labels.SWARM_SCALED_TO, "3"),
                                               (labels.SWARM_BASE, "1")))
    assert swarm.operator_replicas(svc) == 1
    assert swarm.operator_replicas(dataclasses.replace(svc, replicas=5)) == 5


def test_a_global_service_and_a_job_are_never_scaled() -> None:
    g = web(None, id="s-g", name="agent", mode=swarm.GLOBAL)
    j = web(1, id="s-j", name="once", mode=swarm.JOB)
    c = Cluster({"agent": g, "once": j}, nodes())
    h = Healthd("n1")
    h.run(c, 0, 120)
    assert c.log == []
    assert all(not d.acts for d in h.tick(c, T0 + 125))


def test_a_service_its_operator_scaled_to_zero_is_left_paused() -> None:
    c = Cluster({"web": web(0)}, nodes())
    Healthd("n1").run(c, 0, 120)
    assert c.log == []


def test_a_service_without_replicas_max_is_not_scaled() -> None:
    c = Cluster({"web": dataclasses.replace(web(1), labels=())}, nodes())
    Healthd("n1").run(c, 0, 120)
    assert c.log == []


def test_a_task_without_pressure_is_unknown_never_idle() -> None:
    c = Cluster({"web": web(3)}, nodes())
    view = c.view("n1")
    # Only two of three tasks reported (the third's node did not answer), both idle.
    pressure = {t.id: scale.ReplicaPressure(t.id, cpu=0.0) for t in view.tasks[:2]}
    windows: Mapping[str, scale.Window] = {}
    for i in range(20):
        plan = swarm.decide(swarm.Inputs(view, conf(), T0 + i * TICK, pressure, {}, windows))
        windows = plan.windows
        assert [d for d in plan.decisions if d.action is Action.SCALE_DOWN] == []


def test_no_step_while_tasks_are_still_starting() -> None:
    c = Cluster({"web": web(2)}, nodes())
    view = dataclasses.replace(c.view("n1"), tasks=c.view("n1").tasks[:1])  # 1 of 2 running
    windows: Mapping[str, scale.Window] = {}
    for i in range(10):
        plan = swarm.decide(swarm.Inputs(view, conf(), T0 + i * TICK, {}, {}, windows))
        windows = plan.windows
        assert plan.decisions == ()


def test_bad_replica_labels_are_reported_and_config_wins() -> None:
    svc = dataclasses.replace(web(1), labels=((labels.REPLICAS_MAX, "many"),))
    b, problems = swarm.bounds(svc, Config())
    assert b is None and "healthd.replicas.max='many'" in problems[0]
    cfg = dataclasses.replace(Config(), dependencies=(
        settings.DependencySpec("swarm/web", replicas_max=5),))
    b, _ = swarm.bounds(web(1, hi=3), cfg)
    assert b is not None and b.max == 5


# --- the leader rules ---------------------------------------------------------------------


def test_only_the_leader_acts_and_two_healthd_never_both_act() -> None:
    c = Cluster({"web": web(1)}, nodes(leader="n2"))
    a, b = Healthd("n1"), Healthd("n2")
    t, held = 0.0, []
    while t <= 60:
        held += a.tick(c, T0 + t)
        b.tick(c, T0 + t)
        t += TICK
    assert {who for _, who, _ in c.log} == {"n2"} and len(c.log) == 2
    assert not any(d.acts for d in held)
    assert "not-leader: the leader (node2) acts, not this node" in {d.suppressed_by
                                                                   for d in held}


def test_no_leader_no_action() -> None:
    c = Cluster({"web": web(1)}, tuple(dataclasses.replace(n, leader=False) for n in nodes()))
    Healthd("n1").run(c, 0, 60)
    assert c.log == []


def test_a_new_leader_honours_the_cooldown_the_old_one_started() -> None:
    slow = dataclasses.replace(FAST, cooldown_s=120.0)
    c = Cluster({"web": web(1)}, nodes(leader="n1"))
    old = Healthd("n1", cfg=dataclasses.replace(conf(), scaling=slow))
    old.run(c, 0, 10)
    assert acted(c) == [(10.0, "n1", "scale_up", 2)]
    # The old leader's engine stops; n2 leads with an empty ledger and no window.
    c.node_list = nodes(leader="n2")
    new = Healthd("n2", cfg=dataclasses.replace(conf(), scaling=slow))
    seen = []
    t = 15.0
    while t < 130:
        seen += new.tick(c, T0 + t)
        t += TICK
    assert acted(c) == [(10.0, "n1", "scale_up", 2)]
    assert any(d.suppressed_by and d.suppressed_by.startswith("cooldown") for d in seen)
    new.run(c, 130, 140)
    assert acted(c)[-1] == (130.0, "n2", "scale_up", 3)


def test_dry_run_and_in_flight_hold() -> None:
    c = Cluster({"web": web(1)}, nodes())
    view = c.view("n1")
    hot = {t.id: scale.ReplicaPressure(t.id, cpu=0.9) for t in view.tasks}
    busy = swarm.Inputs(view, conf(), T0, hot, busy=frozenset({"swarm/web"}),
                        windows={"swarm/web": ((T0 - 20, 2),)})
    (d,) = swarm.decide(busy).decisions
    assert d.suppressed_by and d.suppressed_by.startswith("in-flight")
    dry = dataclasses.replace(busy, busy=frozenset(), dry_run=True)
    (d,) = swarm.decide(dry).decisions
    assert d.suppressed_by == "dry-run: would scale up"


def test_a_listing_older_than_healthds_own_action_is_not_acted_on_again() -> None:
    c = Cluster({}, nodes())
    h = Healthd("n3", hosts=hosts({"n3"}))
    c.node_list = nodes(leader="n3")
    h.tick(c, T0)
    assert acted(c) == [(0.0, "n3", "drain", None)]
    stale = dataclasses.replace(c.view("n3", T0 - 1), nodes=nodes(leader="n3"))
    (d,) = swarm.decide(swarm.Inputs(stale, h.cfg, T0 + 0.1, hosts=hosts({"n3"}),
                                     history=h.history)).decisions
    assert d.action is Action.DRAIN
    assert d.suppressed_by and d.suppressed_by.startswith("settling")


# --- rollback -----------------------------------------------------------------------------


def failing_update(state: str = "paused", previous: bool = True, failed: int = 1) -> Cluster:
    svc = web(3, hi=3, update_state=state, update_started_at=T0 - 30,
              update_message="update paused due to failure", has_previous=previous)
    c = Cluster({"web": svc}, nodes())
    return c


@pytest.mark.parametrize("state", ["paused", "updating"])
def test_a_failing_update_is_rolled_back_once(state: str) -> None:
    c = failing_update(state)
    h = Healthd("n1")
    view = c.view("n1")
    bad = Task("bad1", "s-web", "n1", state="failed", error="task: non-zero exit (1)",
               created_at=T0 - 20)
    view = dataclasses.replace(view, tasks=(*view.tasks, bad))
    plan = swarm.decide(swarm.Inputs(view, h.cfg, T0, history=h.history))
    (d,) = plan.decisions
    assert (d.action, d.rule, d.acts) == (Action.ROLLBACK, "update_failed.critical", True)
    assert "non-zero exit (1)" in d.explain()
    # The engine has not moved its state yet: the ledger says it was done.
    done = [ActionRecord("swarm/web", Action.ROLLBACK, T0, Outcome.SUCCEEDED)]
    (d,) = swarm.decide(swarm.Inputs(view, h.cfg, T0 + 5, history=done)).decisions
    assert d.suppressed_by and d.suppressed_by.startswith("once")
    # Once Swarm reports the rollback, nothing more: not even on another healthd.
    for st in ("rollback_started", "rollback_completed"):
        moved = dataclasses.replace(view, services=(dataclasses.replace(
            view.services[0], update_state=st),))
        assert swarm.decide(swarm.Inputs(moved, h.cfg, T0 + 10)).decisions == ()


def test_a_completed_update_whose_new_tasks_crash_is_rolled_back_within_the_watch() -> None:
    c = failing_update("completed")
    view = c.view("n1")
    bad = Task("bad1", "s-web", "n1", state="failed", error="task: non-zero exit (3)",
               created_at=T0 - 20)
    short = dataclasses.replace(view, tasks=(*view.tasks[:2], bad))  # 2 of 3 running
    (d,) = swarm.decide(swarm.Inputs(short, conf(), T0)).decisions
    assert d.action is Action.ROLLBACK and "completed with 2 of 3 tasks running" in d.explain()
    late = swarm.Inputs(short, conf(update_watch_s=10.0), T0)
    assert [x for x in swarm.decide(late).decisions if x.action is Action.ROLLBACK] == []
    whole = dataclasses.replace(view, tasks=(*view.tasks, bad))  # 3 of 3: it recovered
    assert [x for x in swarm.decide(swarm.Inputs(whole, conf(), T0)).decisions
            if x.action is Action.ROLLBACK] == []


def test_an_update_swarm_may_still_pause_is_given_the_wait() -> None:
    c = failing_update("updating")
    view = c.view("n1")
    bad = Task("bad1", "s-web", "n1", state="failed", created_at=T0 - 8, at=T0 - 5)
    view = dataclasses.replace(view, tasks=(*view.tasks, bad))
    assert swarm.decide(swarm.Inputs(view, conf(), T0)).decisions == ()
    (d,) = swarm.decide(swarm.Inputs(view, conf(), T0 + 10)).decisions
    assert d.action is Action.ROLLBACK


def test_an_update_still_going_well_is_not_rolled_back() -> None:
    c = failing_update("updating")
    assert swarm.decide(swarm.Inputs(c.view("n1"), conf(), T0)).decisions == ()
    c2 = failing_update("completed")
    assert all(d.action is not Action.ROLLBACK
               for d in swarm.decide(swarm.Inputs(c2.view("n1"), conf(), T0)).decisions)


def test_a_failed_rollback_alerts_once_never_loops() -> None:
    c = failing_update("rollback_paused")
    h = Healthd("n1")
    first = h.tick(c, T0)
    assert [(d.action, d.rule, d.suppressed_by) for d in first] == [
        (Action.ALERT, "rollback_failed.critical", None)]
    again = h.tick(c, T0 + 5)
    assert again[0].suppressed_by and again[0].suppressed_by.startswith("alert-repeat")
    assert c.log == []


def test_nothing_to_roll_back_to_alerts() -> None:
    c = failing_update("paused", previous=False)
    (d,) = swarm.decide(swarm.Inputs(c.view("n1"), conf(), T0)).decisions
    assert d.action is Action.ALERT and "no previous spec" in d.explain()


def test_a_failing_update_of_a_global_service_is_rolled_back_too() -> None:
    g = web(None, mode=swarm.GLOBAL, update_state="paused", has_previous=True)
    (d,) = swarm.decide(swarm.Inputs(Cluster({"web": g}, nodes()).view("n1"), conf(),
                                     T0)).decisions
    assert d.action is Action.ROLLBACK


def test_a_non_leader_does_not_roll_back() -> None:
    c = failing_update("paused")
    (d,) = swarm.decide(swarm.Inputs(c.view("n3"), conf(), T0)).decisions
    assert d.suppressed_by and d.suppressed_by.startswith("not-leader")


# --- drain and active ---------------------------------------------------------------------


def hosts(exhausted: set[str], ok_since: float = T0 - 1000,
          unknown: frozenset[str] = frozenset()) -> dict[str, HostReport]:
    return {f"n{i}": HostReport(f"n{i}" in exhausted, "host memory full in 90 s"
                                if f"n{i}" in exhausted else "",
                                None if f"n{i}" in exhausted else ok_since)
            for i in (1, 2, 3) if f"n{i}" not in unknown}


def test_an_exhausted_node_is_drained_then_made_active_after_the_window() -> None:
    c = Cluster({}, nodes())
    h = Healthd("n1", cfg=conf(drain_recovered_s=60.0), hosts=hosts({"n3"}))
    h.tick(c, T0)
    assert acted(c) == [(0.0, "n1", "drain", None)]
    assert c.node_list[2].drained_by_healthd
    assert c.node_list[2].label(labels.SWARM_DRAINED_BY) == "n1"
    h.hosts = hosts(set(), ok_since=T0 + 30)
    h.run(c, 5, 85)
    assert acted(c)[1:] == []
    h.run(c, 90, 90)
    assert acted(c)[1:] == [(90.0, "n1", "activate", None)]
    assert c.node_list[2].availability == "active" and not c.node_list[2].drained_by_healthd


def test_the_last_active_node_is_never_drained() -> None:
    c = Cluster({}, nodes(n=1))
    h = Healthd("n1", hosts={"n1": HostReport(True, "host disk 97% full")})
    (d,) = h.tick(c, T0)
    assert d.action is Action.DRAIN
    assert d.suppressed_by and d.suppressed_by.startswith("last-active")
    assert c.log == []


def test_only_one_node_is_drained_at_a_time() -> None:
    c = Cluster({}, nodes())
    h = Healthd("n1", hosts=hosts({"n2", "n3"}))
    decided = h.tick(c, T0)
    assert acted(c) == [(0.0, "n1", "drain", None)]
    again = h.tick(c, T0 + 5)
    held = [d for d in again if d.action is Action.DRAIN]
    assert held and held[0].suppressed_by and held[0].suppressed_by.startswith("one-node")
    assert len(decided) == 2


def test_no_drain_when_the_others_are_unknown_and_no_activate_when_it_is() -> None:
    c = Cluster({}, nodes())
    h = Healthd("n1", hosts=hosts({"n3"}, unknown=frozenset({"n1", "n2"})))
    (d,) = h.tick(c, T0)
    assert d.suppressed_by and d.suppressed_by.startswith("last-active")
    drained = dataclasses.replace(c.node_list[2], availability="drain",
                                  labels=((labels.SWARM_DRAINED_AT, "1"),))
    c.node_list = (*c.node_list[:2], drained)
    h.hosts = hosts(set(), unknown=frozenset({"n3"}))
    assert [d for d in h.tick(c, T0 + 999) if d.action is Action.ACTIVATE] == []


def test_a_node_drained_by_the_operator_is_left_drained() -> None:
    c = Cluster({}, tuple(dataclasses.replace(n, availability="drain") if n.id == "n3" else n
                         for n in nodes()))
    Healthd("n1").run(c, 0, 600)
    assert c.log == []


# --- tasks: replaced, never restarted ------------------------------------------------------


def task_container(name: str = "web.1.abc", started: float = T0 - 3600) -> ContainerState:
    return ContainerState(id=f"id-{name}", name=name, status="running", started_at=started,
                          labels=((labels.SWARM_TASK, "abc"), (labels.SWARM_SERVICE, "web")))


PREDICTED = Classification(Failure.PREDICTED_EXHAUSTION, Health.CRITICAL,
                           ("memory full in ~40 s",), resource=Resource.MEMORY)


def decide_task(c: ContainerState, cls: Classification, **kw: object) -> Decision:
    d = decide.decide(c, cls, decide.Context(now=T0, config=Config(), **kw))  # type: ignore[arg-type]
    assert d is not None
    return d


def test_a_task_predicted_to_exhaust_memory_is_replaced_not_restarted() -> None:
    d = decide_task(task_container(), PREDICTED)
    assert (d.action, d.service, d.acts) == (Action.REPLACE_TASK, "swarm/web", True)


def test_one_task_of_a_service_at_a_time() -> None:
    d = decide_task(task_container(), PREDICTED, swarm_tasks={"web": (2, 3)})
    assert d.suppressed_by and d.suppressed_by.startswith("one-at-a-time: 2 of 3")
    d = decide_task(task_container(), PREDICTED, busy_services=frozenset({"swarm/web"}))
    assert d.suppressed_by and d.suppressed_by.startswith("one-at-a-time")
    assert decide_task(task_container(), PREDICTED, swarm_tasks={"web": (3, 3)}).acts


def test_a_replaced_task_starts_the_services_cooldown() -> None:
    done = (ActionRecord("web.2.xyz", Action.REPLACE_TASK, T0 - 10, Outcome.SUCCEEDED),)
    d = decide_task(task_container(), PREDICTED, history=done)
    assert d.suppressed_by and d.suppressed_by.startswith("replace-cooldown")
    other = (ActionRecord("webshop.2.xyz", Action.REPLACE_TASK, T0 - 10, Outcome.SUCCEEDED),)
    assert decide_task(task_container(), PREDICTED, history=other).acts


@pytest.mark.parametrize("failure", [Failure.CRASHED, Failure.OOM_KILLED, Failure.UNHEALTHY],
                         ids=lambda f: f.value)
def test_what_swarm_replaces_by_itself_is_left_to_it(failure: Failure) -> None:
    c = task_container()
    if failure is not Failure.UNHEALTHY:
        c = dataclasses.replace(c, status="exited", exit_code=1, finished_at=T0 - 1)
    d = decide_task(c, Classification(failure, Health.CRITICAL))
    assert d.suppressed_by and d.suppressed_by.startswith("swarm")


def test_a_young_task_gets_its_grace() -> None:
    cfg = dataclasses.replace(Config(), guards=dataclasses.replace(Config().guards,
                                                                   grace_s=60.0))
    d = decide.decide(task_container(started=T0 - 5), PREDICTED,
                      decide.Context(now=T0, config=cfg))
    assert d is not None and d.suppressed_by and d.suppressed_by.startswith("grace")


# --- config -------------------------------------------------------------------------------


def test_swarm_settings_are_checked() -> None:
    with pytest.raises(config.ConfigError) as e:
        config.build({"swarm": {"rollback_failed_tasks": 0, "peer_port": 70000, "nope": 1}})
    text = str(e.value)
    assert "swarm.rollback_failed_tasks" in text and "swarm.peer_port" in text
    assert "swarm.nope: unknown key" in text
    assert config.build({"decisions": {"update_failed": {"critical": "alert"}}}).action_for(
        "update_failed", Health.CRITICAL) is Action.ALERT


# --- this node's host ----------------------------------------------------------------------


def test_host_report_along_a_timeline() -> None:
    def rep(mem: float | None, prev: HostReport | None, now: float,
            alarms: tuple[str, ...] = ()) -> HostReport | None:
        return swarm.host_report(mem, 0.5, alarms, 0.9, 0.95, prev, now)

    a = rep(0.5, None, T0)
    assert a == HostReport(False, ok_since=T0)
    b = rep(0.6, a, T0 + 10)
    assert b is not None and b.ok_since == T0  # fine since the first look
    c = rep(0.93, b, T0 + 20)
    assert c is not None and c.exhausted and "host memory 93% used" in c.why
    d = rep(0.5, c, T0 + 30)
    assert d == HostReport(False, ok_since=T0 + 30)  # the window starts again
    e = rep(0.5, d, T0 + 40, alarms=("host_memory forecast alarm (full in 80 s)",))
    assert e is not None and e.exhausted
    assert swarm.host_report(None, None, (), 0.9, 0.9, None, T0) is None
