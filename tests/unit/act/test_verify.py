"""healthd.act.verify with the real verdict store (in memory) and metrics: a window opens
after a restart, observations close it with a verdict, a resumed window is judged too."""

from __future__ import annotations

from healthd.act.verify import Verifier
from healthd.core.model import Action, ContainerState, Decision, Failure
from healthd.core.outcomeconfig import LadderSettings, VerifySettings
from healthd.core.verdict import Kind
from healthd.serve.metrics import Metrics
from healthd.store.verdicts import Record, VerdictStore


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def decision(action: Action = Action.RESTART) -> Decision:
    return Decision(action=action, target_id="c1", target_name="api", rule="crashed.critical",
                    failure=Failure.CRASHED, at=1000.0)


def verdict_count(m: Metrics, kind: str) -> float:
    v = m.registry.get_sample_value("healthd_action_verdicts_total",
                                    {"action": "restart", "classification": "crashed",
                                     "verdict": kind})
    return v or 0.0


def test_a_restart_that_stays_well_for_its_window_is_fixed() -> None:
    clock, store, m = Clock(1001.0), VerdictStore(None), Metrics()
    v = Verifier(VerifySettings(default_s=10.0), store, m, clock)
    c = ContainerState(id="c1", name="api")
    v.opened(decision(), c)
    assert [w["container"] for w in v.open_rows()] == ["api"]
    for t in range(1002, 1013, 2):
        clock.t = float(t)
        v.observe(c, None, clock.t)
        v.tick()
    assert v.windows == {}
    (r,) = store.for_container("api").values()
    assert r.kind == "fixed" and r.decided_at == 1000.0 and r.acted_at == 1001.0
    assert verdict_count(m, "fixed") == 1.0


def test_a_label_sets_the_window_and_a_crash_after_well_is_recurred() -> None:
    clock, store, m = Clock(1001.0), VerdictStore(None), Metrics()
    v = Verifier(VerifySettings(default_s=600.0), store, m, clock)
    c = ContainerState(id="c1", name="api", labels=(("healthd.verify.window", "30"),))
    v.opened(decision(), c)
    assert v.open_rows()[0]["window_s"] == 30.0
    clock.t = 1003.0
    v.observe(c, None, clock.t)
    clock.t = 1007.0
    v.observe(ContainerState(id="c1", name="api", status="exited"), Failure.CRASHED, clock.t)
    v.tick()
    (r,) = store.for_container("api").values()
    assert (r.kind, r.after_s) == ("recurred", 6.0)


def test_a_recreate_is_watched_on_the_container_it_made() -> None:
    clock, store = Clock(1001.0), VerdictStore(None)
    v = Verifier(VerifySettings(default_s=10.0), store, Metrics(), clock)
    v.opened(decision(Action.RECREATE), None, service="shop/api", watched_id="c2")
    assert list(v.windows) == ["c2"]
    v.gone("c1", 1001.5)  # the old container, removed by the recreate itself
    new = ContainerState(id="c2", name="api")
    for t in range(1002, 1013, 2):
        clock.t = float(t)
        v.observe(new, None, clock.t)
    v.tick()
    (r,) = store.for_container("api").values()
    assert (r.kind, r.watched_id, r.service) == ("fixed", "c2", "shop/api")


def test_a_scale_step_naming_no_service_is_not_watched() -> None:
    v = Verifier(VerifySettings(), VerdictStore(None), Metrics(), Clock(1001.0))
    v.opened(decision(Action.SCALE_UP), None)
    assert v.windows == {}


def test_a_recurrence_settled_before_a_decision_is_a_step_of_the_ladder() -> None:
    clock, store, m = Clock(1001.0), VerdictStore(None), Metrics()
    v = Verifier(VerifySettings(default_s=600.0), store, m, clock)
    c = ContainerState(id="c1", name="api")
    v.opened(decision(), c)
    (step,) = v.steps("api", Failure.CRASHED)
    assert (step.action, step.verdict.kind.value) == (Action.RESTART, "pending")
    clock.t = 1003.0
    v.observe(c, None, clock.t)
    clock.t = 1010.0
    v.observe(ContainerState(id="c1", name="api", status="exited"), Failure.CRASHED, clock.t)
    v.settle("c1")  # no tick: the next decision must see the verdict already
    (step,) = v.steps("api", Failure.CRASHED)
    assert step.verdict.kind.value == "recurred"
    assert v.steps("api", Failure.UNHEALTHY) == []


def test_a_hold_is_kept_and_released_and_not_counted_as_a_fix_rate() -> None:
    clock, store = Clock(2000.0), VerdictStore(None)
    v = Verifier(VerifySettings(), store, Metrics(), clock)
    hold = Decision(action=Action.ALERT, target_id="c1", target_name="api",
                    rule="crashed.critical.ladder_hold", failure=Failure.CRASHED, at=2000.0)
    v.hold(hold, None)
    assert "api" in v.held
    again = Verifier(VerifySettings(), store, Metrics(), clock)  # healthd started again
    assert again.resume() == 0 and "api" in again.held and again.windows == {}
    clock.t = 2100.0
    r = again.release("api", Kind.FIXED, "recovered by itself while held")
    assert r is not None and r.kind == "fixed" and r.after_s == 100.0
    assert again.release("api", Kind.FIXED, "twice") is None
    assert again.tallies(LadderSettings()) == {}


def test_tallies_count_final_verdicts_per_service_within_the_learning_window() -> None:
    store = VerdictStore(None)
    for i in range(6):
        store.put(Record(f"c{i}", "restart", 1000.0 + i, f"api-{i}", "oom_killed", 1001.0 + i,
                         60.0, "not_fixed", "oom again", 1030.0 + i, None, "shop/api"))
    store.put(Record("old", "restart", 10.0, "api-9", "oom_killed", 11.0, 60.0, "fixed", "",
                     50.0, None, "shop/api"))  # outside the window
    v = Verifier(VerifySettings(), store, Metrics(), Clock(5000.0))
    t = v.tallies(LadderSettings(learn_window_s=4500.0))
    (key, tally), = t.items()
    assert key == ("shop/api", Failure.OOM_KILLED, Action.RESTART)
    assert (tally.not_fixed, tally.fixed) == (6, 0)


def test_a_window_from_the_state_file_is_resumed_and_judged() -> None:
    store = VerdictStore(None)
    store.put(Record("c1", "restart", 1000.0, "api", "crashed", 1001.0, 10.0))
    clock, m = Clock(1005.0), Metrics()
    v = Verifier(VerifySettings(), store, m, clock)
    assert v.resume() == 1
    c = ContainerState(id="c1", name="api")
    for t in (1006.0, 1008.0, 1010.0, 1012.0):
        clock.t = t
        v.observe(c, None, t)
    v.tick()
    assert store.for_container("api")[("api", "restart", 1000.0)].kind == "fixed"


def test_a_target_removed_by_someone_else_is_superseded() -> None:
    clock, store = Clock(1001.0), VerdictStore(None)
    v = Verifier(VerifySettings(), store, Metrics(), clock)
    v.opened(decision(), ContainerState(id="c1", name="api"))
    clock.t = 1004.0
    v.gone("c1", clock.t)
    v.tick()
    assert store.for_container(None)[("api", "restart", 1000.0)].kind == "superseded"


def test_a_rung_in_flight_or_in_its_window_is_not_yet_resolved() -> None:
    clock = Clock(1000.0)
    v = Verifier(VerifySettings(default_s=10.0), VerdictStore(None), Metrics(), clock)
    v.acting["api"] = 1000.0  # a ladder rung was sent: its window opens after the action
    assert v.in_incident("new-id", "api")
    rung = Decision(action=Action.RECREATE, target_id="c1", target_name="api",
                    rule="unhealthy.critical", failure=Failure.UNHEALTHY, at=1000.0, rung=2)
    clock.t = 1001.0
    v.opened(rung, None, watched_id="c2")
    assert "api" not in v.acting and v.in_incident("c2", "api")
    v.opened(decision(), ContainerState(id="c9", name="db"))  # no ladder: resolved as before
    assert not v.in_incident("c9", "db")
    v.acting["web"] = 1001.0
    clock.t = 1400.0  # a post-action look that never came does not hold it for ever
    assert not v.in_incident("c5", "web")


def test_a_rollback_is_watched_on_its_service() -> None:
    clock, store = Clock(1001.0), VerdictStore(None)
    v = Verifier(VerifySettings(default_s=10.0), store, Metrics(), clock)
    rollback = Decision(action=Action.ROLLBACK, target_id="svc1", target_name="swarm/api",
                        rule="update_failed.critical", failure=Failure.UPDATE_FAILED,
                        at=1000.0, service="swarm/api")
    v.opened(rollback, None)
    v.opened(decision(), ContainerState(id="c1", name="api"))
    assert v.services_watched() == ["svc1"]
    for t in range(1002, 1014, 2):
        clock.t = float(t)
        v.observe(ContainerState(id="svc1", name="swarm/api", status="running"), None, clock.t)
    v.tick()
    got = {r.action: r.kind for r in store.for_container("swarm/api").values()}
    assert got == {"rollback": "fixed"}


def test_a_task_replacement_is_watched_on_its_service_by_key() -> None:
    v = Verifier(VerifySettings(), VerdictStore(None), Metrics(), Clock(1001.0))
    replaced = Decision(action=Action.REPLACE_TASK, target_id="c7", target_name="api.1.x",
                        rule="unhealthy.critical", failure=Failure.UNHEALTHY, at=1000.0,
                        service="swarm/api")
    v.opened(replaced, ContainerState(id="c7", name="api.1.x"))
    assert v.services_watched() == ["swarm/api"]


def test_the_scalers_step_is_watched_on_its_service_and_judged_by_its_pressure() -> None:
    clock, store = Clock(1001.0), VerdictStore(None)
    v = Verifier(VerifySettings(default_s=10.0), store, Metrics(), clock)
    up = Decision(action=Action.SCALE_UP, target_id="c1", target_name="shop/api",
                  rule="sustained_pressure.degraded", failure=Failure.SUSTAINED_PRESSURE,
                  at=1000.0, service="shop/api", replicas=2)
    v.opened(up, ContainerState(id="c1", name="shop_api_1"))
    swarm = Decision(action=Action.SCALE_UP, target_id="s1", target_name="swarm/api",
                     rule="sustained_pressure.degraded", failure=Failure.SUSTAINED_PRESSURE,
                     at=1000.0, service="swarm/api", replicas=2)
    v.opened(swarm, None)
    assert v.scaled_watched() == ["shop/api"]
    assert v.scaled_watched(swarm=True) == ["swarm/api"]
    svc = ContainerState(id="shop/api", name="shop/api", status="running")
    clock.t = 1003.0
    v.observe(svc, None, clock.t)  # relieved
    clock.t = 1005.0
    v.observe(svc, Failure.SUSTAINED_PRESSURE, clock.t)  # asking for more again
    v.tick()
    (r,) = store.for_container("shop/api").values()
    assert r.kind == "recurred" and "sustained pressure" in r.evidence


def test_a_drain_is_watched_on_its_node() -> None:
    v = Verifier(VerifySettings(), VerdictStore(None), Metrics(), Clock(1001.0))
    drain = Decision(action=Action.DRAIN, target_id="n3", target_name="node/node3",
                     rule="node_exhausted.critical", failure=Failure.NODE_EXHAUSTED, at=1000.0)
    v.opened(drain, None)
    assert v.nodes_watched() == ["n3"] and v.services_watched() == []
