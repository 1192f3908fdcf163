"""healthd.core.scale: the HPA-like scaler along timelines, and the replica bookkeeping.

A `Service` plays the shell: every tick it calls ``scale``, applies a verdict that is not
held (the engine always succeeds here) and records it, then ``remember``s the tick's
recommendation. Ticks are 5 s apart; ``now`` is a value, nothing sleeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import pytest

from healthd.core import config, labels, scale
from healthd.core.config import ConfigError
from healthd.core.model import Action, ActionRecord, ContainerState, Failure, Health, Outcome
from healthd.core.scale import Bounds, ReplicaPressure, ScaleVerdict
from healthd.core.settings import ScalingSettings

T0 = 1_700_000_000.0
TICK = 5.0
S = ScalingSettings()  # up window 30 s, down window 300 s, steps 1, cooldown 60 s


def load(cpu: float | None, n: int, memory: float | None = None,
         alarm: bool = False) -> list[ReplicaPressure]:
    """``n`` replicas all at the same pressure."""
    return [ReplicaPressure(f"web_{i + 1}", cpu=cpu, memory=memory, forecast_alarm=alarm)
            for i in range(n)]


@dataclasses.dataclass
class Service:
    """The shell's side of one service: replica count, window and action history."""

    current: int
    bounds: Bounds
    settings: ScalingSettings = S
    window: scale.Window = ()
    history: list[ActionRecord] = dataclasses.field(default_factory=list)
    verdicts: list[tuple[float, ScaleVerdict]] = dataclasses.field(default_factory=list)

    def tick(self, now: float, replicas: Sequence[ReplicaPressure]) -> ScaleVerdict | None:
        v = scale.scale(replicas, self.current, self.bounds, self.window, self.history,
                        self.settings, now)
        rec = scale.recommend(replicas, self.current, self.settings)
        self.window = scale.remember(self.window, now, rec.desired, self.settings)
        if v is not None:
            self.verdicts.append((now - T0, v))
            if v.held is None:
                self.history.append(ActionRecord("proj/web", v.action, now, Outcome.SUCCEEDED))
                self.current = v.desired
        return v

    def run(self, until_s: float, pressure: Callable[[float, int], Sequence[ReplicaPressure]],
            start_s: float = 0.0) -> list[tuple[float, ScaleVerdict]]:
        """Tick from ``start_s`` to ``until_s`` (relative to T0); return the verdicts seen."""
        seen = len(self.verdicts)
        t = start_s
        while t <= until_s:
            self.tick(T0 + t, pressure(t, self.current))
            t += TICK
        return self.verdicts[seen:]


def acted(verdicts: list[tuple[float, ScaleVerdict]]) -> list[tuple[float, int]]:
    """(seconds since T0, replicas after) of the verdicts that were not held."""
    return [(t, v.desired) for t, v in verdicts if v.held is None]


# --- scaling up ---------------------------------------------------------------------------


def test_scales_up_once_the_pressure_has_held_for_the_window_and_not_before() -> None:
    svc = Service(current=2, bounds=Bounds(min=1, max=5, operator=2))
    assert svc.run(25, lambda t, n: load(0.93, n)) == []
    seen = svc.run(30, lambda t, n: load(0.93, n), start_s=30)
    assert acted(seen) == [(30.0, 3)]
    v = seen[0][1]
    assert (v.action, v.failure, v.severity) == (Action.SCALE_UP, Failure.SUSTAINED_PRESSURE,
                                                 Health.DEGRADED)
    assert "cpu 93% of limit across 2 replicas for 30 s (target 70%)" in v.evidence
    assert "2 to 3 replicas (max 5)" in v.evidence


def test_pressure_that_started_late_waits_its_own_window() -> None:
    svc = Service(current=2, bounds=Bounds(max=5, operator=2))
    seen = svc.run(200, lambda t, n: load(0.95 if t >= 100 else 0.5, n))
    assert acted(seen)[0] == (130.0, 3)


def test_step_limit_adds_one_replica_per_action_however_short_the_service_is() -> None:
    svc = Service(current=2, bounds=Bounds(max=10, operator=2))
    seen = svc.run(30, lambda t, n: load(1.0, n))
    assert acted(seen) == [(30.0, 3)]  # ceil(2 * 1.0 / 0.7) = 3
    hot = Service(current=2, bounds=Bounds(max=10, operator=2),
                  settings=dataclasses.replace(S, target_cpu=0.25))
    v = acted(hot.run(30, lambda t, n: load(1.0, n)))
    assert v == [(30.0, 3)]  # asks for 8, gets one more
    assert hot.verdicts[0][1].severity is Health.CRITICAL  # still short after the step


def test_a_bigger_step_setting_adds_more_but_never_more_than_asked() -> None:
    svc = Service(current=2, bounds=Bounds(max=10, operator=2),
                  settings=dataclasses.replace(S, scale_up_step=3))
    assert acted(svc.run(30, lambda t, n: load(1.0, n))) == [(30.0, 3)]  # asks for 3
    svc = Service(current=2, bounds=Bounds(max=10, operator=2),
                  settings=dataclasses.replace(S, scale_up_step=3, target_cpu=0.25))
    assert acted(svc.run(30, lambda t, n: load(1.0, n))) == [(30.0, 5)]


def test_scaling_up_never_passes_max_and_says_so_when_held_there() -> None:
    svc = Service(current=2, bounds=Bounds(max=3, operator=2))
    # Load that grows with nothing: each replica stays at 95% however many there are.
    seen = svc.run(600, lambda t, n: load(0.95, n))
    assert acted(seen) == [(30.0, 3)]
    assert svc.current == 3
    held = [v for _, v in seen if v.held]
    assert held and all(v.held.startswith("at-max:") and v.desired == 3 for v in held)  # type: ignore[union-attr]


def test_after_a_scale_up_the_next_one_waits_for_a_fresh_window_and_the_cooldown() -> None:
    svc = Service(current=2, bounds=Bounds(max=6, operator=2))
    seen = svc.run(200, lambda t, n: load(0.95, n))
    # 30 s of fresh evidence after each action, but 60 s of cooldown: every 60 s.
    assert acted(seen) == [(30.0, 3), (90.0, 4), (150.0, 5)]
    cooldowns = [t for t, v in seen if v.held and v.held.startswith("cooldown:")]
    # Until 65 s there is no fresh window (nothing to hold); then the cooldown holds it.
    assert cooldowns[:5] == [65.0, 70.0, 75.0, 80.0, 85.0]


def test_flapping_pressure_never_scales_either_way() -> None:
    svc = Service(current=3, bounds=Bounds(min=1, max=6, operator=1))
    seen = svc.run(1200, lambda t, n: load(0.95 if int(t // 10) % 2 else 0.05, n))
    assert acted(seen) == []


def test_load_within_tolerance_of_the_target_does_not_scale() -> None:
    svc = Service(current=2, bounds=Bounds(max=6, operator=1))
    assert svc.run(900, lambda t, n: load(0.75, n)) == []
    assert svc.run(900, lambda t, n: load(0.65, n), start_s=905) == []


def test_memory_pressure_scales_up_too_and_the_larger_ask_wins() -> None:
    svc = Service(current=2, bounds=Bounds(max=6, operator=2))
    seen = svc.run(30, lambda t, n: load(0.05, n, memory=0.97))
    assert acted(seen) == [(30.0, 3)]
    assert any(e.startswith("memory 97% of limit across 2 replicas") for e in seen[0][1].evidence)
    assert not any(e.startswith("cpu") for e in seen[0][1].evidence)


def test_unknown_replicas_do_not_stop_the_known_ones_from_asking_for_more() -> None:
    svc = Service(current=3, bounds=Bounds(max=6, operator=3))
    seen = svc.run(30, lambda t, n: [*load(0.95, 2), ReplicaPressure("web_3")])
    assert acted(seen) == [(30.0, 4)]
    assert "1 of 3 replicas without stats" in seen[0][1].evidence


@pytest.mark.parametrize(("flag", "want"), [(True, [(30.0, 3)]), (False, [])],
                         ids=["counts", "ignored"])
def test_a_forecast_alarm_counts_as_pressure_when_the_setting_says_so(
    flag: bool, want: list[tuple[float, int]]
) -> None:
    svc = Service(current=2, bounds=Bounds(max=4, operator=2),
                  settings=dataclasses.replace(S, forecast_pressure=flag))
    seen = svc.run(30, lambda t, n: [ReplicaPressure("web_1", cpu=0.6, forecast_alarm=True),
                                     ReplicaPressure("web_2", cpu=0.6)][:n])
    assert acted(seen) == want
    if flag:
        assert "forecast alarm on web_1" in seen[0][1].evidence


# --- scaling down -------------------------------------------------------------------------


def test_scales_down_only_after_a_whole_window_of_slack() -> None:
    svc = Service(current=3, bounds=Bounds(min=1, max=5, operator=1))
    assert svc.run(295, lambda t, n: load(0.1, n)) == []
    seen = svc.run(300, lambda t, n: load(0.1, n), start_s=300)
    assert acted(seen) == [(300.0, 2)]
    v = seen[0][1]
    assert (v.action, v.failure, v.severity) == (Action.SCALE_DOWN, Failure.IDLE_REPLICAS,
                                                 Health.DEGRADED)
    assert "cpu 10% of limit across 3 replicas, below target for 300 s (target 70%)" \
        in v.evidence


def test_one_busy_moment_in_the_window_restarts_the_wait_for_slack() -> None:
    svc = Service(current=3, bounds=Bounds(max=5, operator=1))
    seen = svc.run(700, lambda t, n: load(0.9 if t == 200 else 0.1, n))
    assert acted(seen)[0] == (505.0, 2)


def test_scaling_down_steps_one_replica_per_window_to_the_operators_count() -> None:
    svc = Service(current=4, bounds=Bounds(min=1, max=5, operator=2))
    seen = svc.run(2000, lambda t, n: load(0.02, n))
    assert acted(seen) == [(300.0, 3), (605.0, 2)]
    assert svc.current == 2


@pytest.mark.parametrize(("current", "bounds"), [
    (2, Bounds(min=1, max=5, operator=2)),
    (3, Bounds(min=3, max=5, operator=1)),
    (1, Bounds(min=0, max=5, operator=0)),
], ids=["operator-count", "min", "last-replica"])
def test_never_scales_below_the_operators_count_or_min(current: int, bounds: Bounds) -> None:
    svc = Service(current=current, bounds=bounds)
    assert svc.run(1500, lambda t, n: load(0.0, n)) == []


def test_min_above_the_operators_count_is_the_floor() -> None:
    svc = Service(current=4, bounds=Bounds(min=3, max=5, operator=1))
    assert acted(svc.run(1500, lambda t, n: load(0.0, n))) == [(300.0, 3)]


@pytest.mark.parametrize("replicas", [
    [*load(0.05, 2), ReplicaPressure("web_3")],
    load(0.05, 2),  # the third replica has no sample at all
    [*load(0.05, 2, memory=0.1), ReplicaPressure("web_3", cpu=0.05)],
], ids=["no-stats", "missing", "memory-unknown"])
def test_unknown_replicas_block_scaling_down(replicas: list[ReplicaPressure]) -> None:
    svc = Service(current=3, bounds=Bounds(max=5, operator=1))
    assert svc.run(1500, lambda t, n: replicas) == []


def test_slack_on_cpu_does_not_scale_down_while_memory_is_at_target() -> None:
    svc = Service(current=3, bounds=Bounds(max=5, operator=1))
    assert svc.run(1500, lambda t, n: load(0.05, n, memory=0.8)) == []


def test_a_service_without_any_stats_is_left_alone() -> None:
    svc = Service(current=3, bounds=Bounds(max=5, operator=1))
    assert svc.run(1500, lambda t, n: load(None, n)) == []


def test_cooldown_longer_than_the_window_holds_a_scale_down() -> None:
    svc = Service(current=2, bounds=Bounds(max=5, operator=1),
                  settings=dataclasses.replace(S, cooldown_s=600.0))
    svc.history.append(ActionRecord("proj/web", Action.SCALE_UP, T0 - 1, Outcome.ABANDONED))
    seen = svc.run(700, lambda t, n: load(0.01, n))
    assert next(t for t, v in seen if v.held and v.held.startswith("cooldown:")) == 300.0
    assert acted(seen) == [(600.0, 1)]


def test_a_gap_in_the_evidence_does_not_count_as_covered() -> None:
    # Nothing was remembered before 100 s: the down window is covered only at 400 s.
    svc = Service(current=2, bounds=Bounds(max=5, operator=1))
    assert acted(svc.run(500, lambda t, n: load(0.01, n), start_s=100)) == [(400.0, 1)]


# --- the window ---------------------------------------------------------------------------


def test_remember_keeps_the_longest_window_and_one_anchor_before_it() -> None:
    w: scale.Window = ()
    for i in range(200):
        w = scale.remember(w, T0 + i * TICK, i, S)
    now = T0 + 199 * TICK
    assert w[0][0] <= now - S.scale_down_window_s < w[1][0]
    assert w[-1] == (now, 199)
    assert len(w) == int(S.scale_down_window_s / TICK) + 1


def test_recommend_is_the_hpa_formula() -> None:
    rec = scale.recommend(load(0.35, 4), 4, S)
    assert (rec.desired, rec.cpu, rec.unknown) == (2, 0.35, 0)
    assert scale.recommend(load(0.7, 2), 2, S).desired == 2
    assert scale.recommend(load(0.93, 2), 2, S).desired == 3
    assert scale.recommend([], 0, S).desired == 0


# --- replicas -----------------------------------------------------------------------------


def replica(name: str, number: int | str | None, created: bool = False, created_at: float = 0.0,
            status: str = "running", health: str | None = None) -> ContainerState:
    lab = [(labels.COMPOSE_SERVICE, "web"), (labels.COMPOSE_PROJECT, "proj")]
    if number is not None:
        lab.append((labels.COMPOSE_NUMBER, str(number)))
    if created:
        lab.append((labels.CREATED, "true"))
    return ContainerState(id=f"id-{name}", name=name, labels=tuple(lab), status=status,
                          created_at=created_at, health=health)


def test_next_number_is_one_above_the_highest_including_stopped_replicas() -> None:
    reps = [replica("proj_web_1", 1), replica("proj_web_4", 4, status="exited"),
            replica("odd", "x")]
    assert scale.next_number(reps) == 5
    assert scale.next_number([]) == 1


def test_to_remove_is_the_newest_replica_healthd_created_and_never_the_operators() -> None:
    reps = [replica("proj_web_1", 1, created_at=T0 + 900),
            replica("proj_web_2", 2, created=True, created_at=T0 + 100),
            replica("proj_web_3", 3, created=True, created_at=T0 + 200),
            replica("proj_web_4", 4, created_at=T0 + 300)]
    assert scale.to_remove(reps) == reps[2]
    assert scale.to_remove([reps[0], reps[3]]) is None
    assert scale.operator_count(reps) == 2


def test_to_remove_falls_back_to_the_created_at_label() -> None:
    a = dataclasses.replace(replica("p_w_2", 2, created=True),
                            labels=(*replica("p_w_2", 2, created=True).labels,
                                    (labels.CREATED_AT, str(T0 + 50))))
    b = replica("p_w_3", 3, created=True)
    assert scale.to_remove([a, b]) == a


@pytest.mark.parametrize(("name", "number", "new", "want"), [
    ("proj_web_1", 1, 3, "proj_web_3"),
    ("/proj_web_1", 1, 3, "proj_web_3"),
    ("my-proj_my_web_12", 12, 13, "my-proj_my_web_13"),
    ("proj-web-2", 2, 5, "proj-web-5"),
    ("custom-name", 1, 2, None),
    ("_1", 1, 2, None),
], ids=["v1", "leading-slash", "underscores", "v2", "container_name", "no-prefix"])
def test_replica_name_follows_the_templates_pattern(name: str, number: int, new: int,
                                                    want: str | None) -> None:
    assert scale.replica_name(name, number, new) == want


def test_pick_template_prefers_a_running_healthy_operator_replica() -> None:
    reps = [replica("p_w_1", 1, status="exited"), replica("p_w_2", 2, health="unhealthy"),
            replica("p_w_3", 3, created=True), replica("p_w_4", 4)]
    assert scale.pick_template(reps) == reps[3]
    assert scale.pick_template(reps[:1]) is None


# --- [scaling] settings -------------------------------------------------------------------


@pytest.mark.parametrize(("data", "key"), [
    ({"target_cpu": 0.0}, "scaling.target_cpu"),
    ({"target_memory": 1.5}, "scaling.target_memory"),
    ({"scale_up_step": 0}, "scaling.scale_up_step"),
    ({"tolerance": 1.0}, "scaling.tolerance"),
    ({"cooldown_s": "soon"}, "scaling.cooldown_s"),
], ids=["target-zero", "target-above-one", "step-zero", "tolerance", "type"])
def test_bad_scaling_settings_are_config_errors_naming_the_key(
    data: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        config.build({"scaling": data})
    assert any(p.startswith(key) for p in err.value.problems), err.value.problems


def test_scaling_settings_from_the_environment() -> None:
    c = config.build({}, environ={"HEALTHD_SCALING_SCALE_UP_WINDOW_S": "45",
                                  "HEALTHD_SCALING_FORECAST_PRESSURE": "false"})
    assert c.scaling.scale_up_window_s == 45.0 and c.scaling.forecast_pressure is False
