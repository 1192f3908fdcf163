"""healthd.decide: the decision table and every guard, values in, a Decision out.

Each guard is tested both ways: once where it holds the decision (``suppressed_by`` starts
with its name) and once where the same situation, minus the one fact the guard looks at,
goes through. Scenario tests drive ``decide`` along a timeline with ``now`` as a value.
"""

from __future__ import annotations

import dataclasses

import pytest

from healthd.core import classify as classify_mod
from healthd.core import config, decide, settings
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
from healthd.core.settings import ClassifySettings, Config, GuardSettings, ThresholdSettings

T0 = 1_700_000_000.0
NOW = T0 + 10_000.0

UNHEALTHY = Classification(Failure.UNHEALTHY, Health.CRITICAL,
                           ("healthcheck failing 3 times in a row",))
CRASHED = Classification(Failure.CRASHED, Health.CRITICAL, ("exited with code 1",))
OOM = Classification(Failure.OOM_KILLED, Health.CRITICAL, ("OOM-killed, exit code 137",))
CRASH_LOOP = Classification(Failure.CRASH_LOOP, Health.CRITICAL, ("died 5 times in 600 s",))
PREDICTED_MEM = Classification(Failure.PREDICTED_EXHAUSTION, Health.CRITICAL,
                               ("memory full in ~7 min",), resource=Resource.MEMORY)


def cfg(mode: str = "opt-out", **guards: object) -> Config:
    """Default config with some [guards] (and optionally watch.mode) replaced."""
    c = Config()
    return dataclasses.replace(
        c,
        guards=dataclasses.replace(c.guards, **guards),  # type: ignore[arg-type]
        watch=dataclasses.replace(c.watch, mode=mode),
    )


def running(name: str = "api", **kw: object) -> ContainerState:
    base: dict[str, object] = {"id": f"id-{name}", "name": name, "status": "running",
                               "started_at": NOW - 3600}
    base.update(kw)
    return ContainerState(**base)  # type: ignore[arg-type]


def exited(name: str = "api", **kw: object) -> ContainerState:
    base: dict[str, object] = {"status": "exited", "exit_code": 1, "finished_at": NOW - 5}
    base.update(kw)
    return running(name, **base)


def ctx(now: float = NOW, config_: Config | None = None, **kw: object) -> decide.Context:
    return decide.Context(now=now, config=config_ or Config(), **kw)  # type: ignore[arg-type]


def rec(at: float, action: Action = Action.RESTART, outcome: Outcome = Outcome.SUCCEEDED,
        container: str = "api", rule: str = "") -> ActionRecord:
    return ActionRecord(container=container, action=action, at=at, outcome=outcome, rule=rule)


def run(c: ContainerState, cls: Classification, context: decide.Context | None = None) -> Decision:
    d = decide.decide(c, cls, context or ctx())
    assert d is not None
    return d


def assert_acts(d: Decision) -> None:
    assert d.suppressed_by is None, d.explain()
    assert d.action is Action.RESTART
    assert d.acts


def assert_held(d: Decision, guard: str) -> None:
    assert d.suppressed_by is not None, d.explain()
    assert d.suppressed_by.startswith(f"{guard}: "), d.suppressed_by
    assert not d.acts


# --- the decision table -------------------------------------------------------------------


def _classification_for(row: str, severity: str) -> Classification:
    failure, _, res = row.partition(".")
    return Classification(Failure(failure), Health(severity), ("evidence",),
                          resource=Resource(res) if res else None)


TABLE_CASES = [(row, sev) for row in settings.DEFAULT_TABLE for sev in settings.SEVERITIES]


@pytest.mark.parametrize(("row", "severity"), TABLE_CASES,
                         ids=[f"{r}.{s}" for r, s in TABLE_CASES])
def test_default_table_row_gives_configured_action_and_rule(row: str, severity: str) -> None:
    d = run(running(), _classification_for(row, severity))
    assert d.action is Action(settings.DEFAULT_TABLE[row][severity])
    assert d.rule == f"{row}.{severity}"
    assert d.suppressed_by is None
    assert d.evidence == ("evidence",)


def test_every_failure_and_resource_has_a_table_row() -> None:
    rows = {settings.table_row(f, None) for f in Failure if f is not Failure.PREDICTED_EXHAUSTION}
    rows |= {settings.table_row(Failure.PREDICTED_EXHAUSTION, r) for r in Resource}
    assert rows == set(settings.DEFAULT_TABLE)


def test_custom_table_from_config_changes_the_action() -> None:
    custom = config.build({"decisions": {"unhealthy": {"critical": "alert"},
                                         "crash_loop": {"critical": "restart"}}})
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(config_=custom))
    assert (d.action, d.rule, d.suppressed_by) == (Action.ALERT, "unhealthy.critical", None)
    d = run(running(), CRASH_LOOP, ctx(config_=custom))
    assert_acts(d)
    assert d.rule == "crash_loop.critical"


def test_no_classification_is_no_decision() -> None:
    assert decide.decide(running(), None, ctx()) is None


def test_decision_carries_target_failure_and_time() -> None:
    d = run(running("web"), UNHEALTHY, ctx(now=NOW + 1))
    assert (d.target_id, d.target_name, d.failure, d.severity, d.at) == (
        "id-web", "web", Failure.UNHEALTHY, Health.CRITICAL, NOW + 1)
    assert d.stop_timeout_s == 10


def test_stop_timeout_from_label_overrides_config() -> None:
    d = run(running(labels=(("healthd.stop.timeout", "45"),)), UNHEALTHY)
    assert d.stop_timeout_s == 45
    d = run(running(), UNHEALTHY, ctx(config_=cfg(stop_timeout_s=3)))
    assert d.stop_timeout_s == 3


def test_bad_label_is_noted_not_fatal() -> None:
    d = run(running(labels=(("healthd.grace", "soon"),)), UNHEALTHY)
    assert_acts(d)
    assert any("healthd.grace" in n for n in d.notes)


# --- silence guards -----------------------------------------------------------------------


def test_self_container_is_held_even_for_alerts() -> None:
    assert_held(run(running(is_self=True), UNHEALTHY), "self")
    assert_held(run(running(is_self=True), CRASH_LOOP), "self")


def test_other_container_is_not_held_by_self() -> None:
    assert_acts(run(running(is_self=False), UNHEALTHY))


@pytest.mark.parametrize("label", ["healthd.enable", "autoheal"], ids=["healthd", "autoheal"])
def test_opt_out_label_holds(label: str) -> None:
    d = run(running(labels=((label, "false"),)), UNHEALTHY)
    assert_held(d, "opted-out")


@pytest.mark.parametrize("label", ["healthd.enable", "autoheal"], ids=["healthd", "autoheal"])
def test_opt_in_label_in_opt_out_mode_acts(label: str) -> None:
    assert_acts(run(running(labels=((label, "true"),)), UNHEALTHY))


def test_opt_in_mode_without_label_holds() -> None:
    d = run(running(), UNHEALTHY, ctx(config_=cfg(mode="opt-in")))
    assert_held(d, "not-opted-in")


@pytest.mark.parametrize("label", ["healthd.enable", "autoheal"], ids=["healthd", "autoheal"])
def test_opt_in_mode_with_label_acts(label: str) -> None:
    d = run(running(labels=((label, "true"),)), UNHEALTHY, ctx(config_=cfg(mode="opt-in")))
    assert_acts(d)


def test_swarm_task_restart_is_held() -> None:
    c = running(labels=(("com.docker.swarm.task.id", "x1"),
                        ("com.docker.swarm.service.name", "web")))
    assert_held(run(c, UNHEALTHY), "swarm")


def test_swarm_task_alert_is_not_held() -> None:
    c = running(labels=(("com.docker.swarm.task.id", "x1"),))
    d = run(c, CRASH_LOOP)
    assert (d.action, d.suppressed_by) == (Action.ALERT, None)


def test_non_swarm_container_is_not_held_by_swarm() -> None:
    assert_acts(run(running(labels=(("com.docker.swarm.service.name", "web"),)), UNHEALTHY))


def test_stopped_on_purpose_holds() -> None:
    assert_held(run(exited(stopped_on_purpose=True), CRASHED), "stopped-on-purpose")


def test_crashed_without_stop_request_acts() -> None:
    assert_acts(run(exited(stopped_on_purpose=False), CRASHED))


def test_stopped_on_purpose_but_running_again_is_not_held() -> None:
    assert_acts(run(running(stopped_on_purpose=True, health="unhealthy"), UNHEALTHY))


def test_a_container_unhealthy_while_a_stop_drains_it_is_held() -> None:
    c = running(stopped_on_purpose=True, stop_requested_at=NOW - 3, health="unhealthy")
    d = run(c, UNHEALTHY)
    assert_held(d, "stopping")
    assert "3 s ago" in d.explain()


def test_a_stop_older_than_the_last_start_does_not_hold() -> None:
    c = running(stop_requested_at=NOW - 3700, started_at=NOW - 3600, health="unhealthy")
    assert_acts(run(c, UNHEALTHY))


def test_a_container_still_running_long_after_its_stop_signal_is_healed() -> None:
    # It ignored the signal and nobody sent SIGKILL: no stop is under way any more.
    c = running(stop_requested_at=NOW - decide._DRAIN_HOLD_S - 1, health="unhealthy")
    assert_acts(run(c, UNHEALTHY))


# (policy, max retries, restart count, held by restart-policy?)
POLICIES = [
    ("always", 0, 7, True),
    ("unless-stopped", 0, 0, True),
    ("on-failure", 0, 12, True),  # on-failure without a maximum retries forever
    ("on-failure", 3, 1, True),
    ("on-failure", 3, 3, False),  # retries exhausted: the engine has given up
    ("no", 0, 0, False),
]
POLICY_IDS = ["always", "unless-stopped", "on-failure-unlimited", "on-failure-retries-left",
              "on-failure-exhausted", "no"]


@pytest.mark.parametrize("cls", [CRASHED, OOM], ids=["crashed", "oom"])
@pytest.mark.parametrize(("policy", "maximum", "count", "held"), POLICIES, ids=POLICY_IDS)
def test_restart_policy_guard_for_crash_and_oom(
    cls: Classification, policy: str, maximum: int, count: int, held: bool
) -> None:
    c = exited(restart_policy=policy, restart_policy_max=maximum, restart_count=count,
               exit_code=137 if cls is OOM else 1, oom_killed=cls is OOM)
    d = run(c, cls)
    if held:
        assert_held(d, "restart-policy")
        assert repr(policy) in (d.suppressed_by or "")
    else:
        assert_acts(d)


@pytest.mark.parametrize(("policy", "maximum", "count", "held"), POLICIES, ids=POLICY_IDS)
def test_restart_policy_does_not_hold_unhealthy(
    policy: str, maximum: int, count: int, held: bool
) -> None:
    # the engine never restarts a running-but-unhealthy container, whatever its policy
    c = running(health="unhealthy", restart_policy=policy, restart_policy_max=maximum,
                restart_count=count)
    assert_acts(run(c, UNHEALTHY))


def test_died_before_watch_since_is_held() -> None:
    d = run(exited(finished_at=T0 - 10), CRASHED, ctx(watch_since=T0))
    assert_held(d, "before-watch")


def test_died_after_watch_since_acts() -> None:
    assert_acts(run(exited(finished_at=T0 + 10), CRASHED, ctx(watch_since=T0)))


def test_before_watch_does_not_hold_unhealthy() -> None:
    c = running(health="unhealthy", finished_at=T0 - 10)
    assert_acts(run(c, UNHEALTHY, ctx(watch_since=T0)))


# grace: (source, container kwargs, config kwargs); each gives 60 s of grace
GRACE_SOURCES = [
    ("config", {}, {"grace_s": 60.0}),
    ("label", {"labels": (("healthd.grace", "60"),)}, {}),
    ("label-with-unit", {"labels": (("healthd.grace", "60s"),)}, {}),
    ("start-period", {"healthcheck_start_period_s": 60.0}, {}),
]


@pytest.mark.parametrize(("ckw", "gkw"), [(c, g) for _, c, g in GRACE_SOURCES],
                         ids=[i for i, _, _ in GRACE_SOURCES])
def test_grace_holds_a_young_container(ckw: dict[str, object], gkw: dict[str, object]) -> None:
    c = running(health="unhealthy", started_at=NOW - 20, **ckw)
    d = run(c, UNHEALTHY, ctx(config_=cfg(**gkw)))
    assert_held(d, "grace")
    assert d.suppressed_by == "grace: started 20 s ago, 40 s left"


@pytest.mark.parametrize(("ckw", "gkw"), [(c, g) for _, c, g in GRACE_SOURCES],
                         ids=[i for i, _, _ in GRACE_SOURCES])
def test_grace_over_lets_it_act(ckw: dict[str, object], gkw: dict[str, object]) -> None:
    c = running(health="unhealthy", started_at=NOW - 60, **ckw)
    assert_acts(run(c, UNHEALTHY, ctx(config_=cfg(**gkw))))


def test_grace_is_the_longest_of_its_sources() -> None:
    c = running(health="unhealthy", started_at=NOW - 100,
                labels=(("healthd.grace", "50"),), healthcheck_start_period_s=120.0)
    assert_held(run(c, UNHEALTHY, ctx(config_=cfg(grace_s=10.0))), "grace")


def test_one_at_a_time_holds_predicted_exhaustion_in_a_busy_service() -> None:
    c = running(labels=(("com.docker.compose.project", "shop"),
                        ("com.docker.compose.service", "api")))
    d = run(c, PREDICTED_MEM, ctx(busy_services=frozenset({"shop/api"})))
    assert_held(d, "one-at-a-time")
    assert "shop/api" in (d.suppressed_by or "")


def test_one_at_a_time_lets_an_idle_service_act() -> None:
    c = running(labels=(("com.docker.compose.project", "shop"),
                        ("com.docker.compose.service", "api")))
    assert_acts(run(c, PREDICTED_MEM, ctx(busy_services=frozenset({"shop/web"}))))


def test_one_at_a_time_does_not_hold_other_failures() -> None:
    c = running(health="unhealthy", labels=(("com.docker.compose.project", "shop"),
                                            ("com.docker.compose.service", "api")))
    assert_acts(run(c, UNHEALTHY, ctx(busy_services=frozenset({"shop/api"}))))


# --- throttle guards ----------------------------------------------------------------------


def test_budget_exhausted_turns_restart_into_alert() -> None:
    history = [rec(NOW - 3000), rec(NOW - 2000), rec(NOW - 1000)]
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(history=history))
    assert d.action is Action.ALERT
    assert d.rule == "unhealthy.critical.budget_exhausted"
    assert d.suppressed_by is None
    assert any("budget 3 of 3 restarts used in 3600 s" in n for n in d.notes)


def test_budget_not_yet_exhausted_restarts_and_notes_the_count() -> None:
    history = [rec(NOW - 2000), rec(NOW - 1000)]
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(history=history))
    assert_acts(d)
    assert "budget 3 of 3 used" in d.notes


def test_budget_forgets_restarts_outside_its_window() -> None:
    history = [rec(NOW - 3700), rec(NOW - 3650), rec(NOW - 3601)]
    assert_acts(run(running(health="unhealthy"), UNHEALTHY, ctx(history=history)))


def test_budget_counts_only_this_container() -> None:
    history = [rec(NOW - 3000, container="web"), rec(NOW - 2000, container="web"),
               rec(NOW - 1000, container="web")]
    assert_acts(run(running(health="unhealthy"), UNHEALTHY, ctx(history=history)))


def test_budget_size_comes_from_config() -> None:
    c = ctx(config_=cfg(budget_restarts=1), history=[rec(NOW - 1000)])
    d = run(running(health="unhealthy"), UNHEALTHY, c)
    assert d.rule.endswith(".budget_exhausted")


def test_cooldown_holds_a_fresh_restart() -> None:
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(history=[rec(NOW - 10)]))
    assert_held(d, "cooldown")
    assert d.suppressed_by == "cooldown: restarted 10 s ago (cooldown 30 s)"


def test_cooldown_over_lets_it_act() -> None:
    assert_acts(run(running(health="unhealthy"), UNHEALTHY, ctx(history=[rec(NOW - 31)])))


def test_cooldown_applies_even_to_restarts_outside_the_budget_window() -> None:
    c = ctx(config_=cfg(cooldown_s=5000.0), history=[rec(NOW - 4000)])
    assert_held(run(running(health="unhealthy"), UNHEALTHY, c), "cooldown")


BACKOFF = GuardSettings(cooldown_s=0.0, backoff_base_s=100.0, backoff_max_s=150.0,
                        budget_restarts=10)
# (ids, seconds-ago of earlier restarts, held?, expected wait in the hold text)
BACKOFF_CASES = [
    ("2nd-restart-waits-base", (99,), True, "restart 2 waits 100 s"),
    ("2nd-restart-after-base", (100,), False, None),
    ("3rd-restart-wait-capped-at-max", (1000, 149), True, "restart 3 waits 150 s"),
    ("3rd-restart-after-the-cap", (1000, 150), False, None),
]


@pytest.mark.parametrize(("agos", "held", "text"), [c[1:] for c in BACKOFF_CASES],
                         ids=[c[0] for c in BACKOFF_CASES])
def test_exponential_backoff(agos: tuple[int, ...], held: bool, text: str | None) -> None:
    c = ctx(config_=dataclasses.replace(Config(), guards=BACKOFF),
            history=[rec(NOW - a) for a in agos])
    d = run(running(health="unhealthy"), UNHEALTHY, c)
    if held:
        assert_held(d, "backoff")
        assert text in (d.suppressed_by or "")
    else:
        assert_acts(d)


def test_backoff_doubles_before_the_cap() -> None:
    g = dataclasses.replace(BACKOFF, backoff_max_s=10_000.0)
    c = dataclasses.replace(Config(), guards=g)
    # third restart: 2 in window -> waits 2 x 100 s
    d = run(running(health="unhealthy"), UNHEALTHY,
            ctx(config_=c, history=[rec(NOW - 1000), rec(NOW - 199)]))
    assert_held(d, "backoff")
    assert "restart 3 waits 200 s" in (d.suppressed_by or "")
    # fourth restart: 3 in window -> waits 4 x 100 s
    d = run(running(health="unhealthy"), UNHEALTHY,
            ctx(config_=c, history=[rec(NOW - 2000), rec(NOW - 1000), rec(NOW - 399)]))
    assert "restart 4 waits 400 s" in (d.suppressed_by or "")
    d = run(running(health="unhealthy"), UNHEALTHY,
            ctx(config_=c, history=[rec(NOW - 2000), rec(NOW - 1000), rec(NOW - 400)]))
    assert_acts(d)


def test_global_rate_limit_across_containers() -> None:
    history = [rec(NOW - 30, container="web"), rec(NOW - 20, container="db")]
    d = run(running(health="unhealthy"), UNHEALTHY,
            ctx(config_=cfg(global_actions_per_minute=2), history=history))
    assert_held(d, "global-rate")
    assert "2 actions on this host in the last minute (limit 2)" in (d.suppressed_by or "")


def test_global_rate_forgets_restarts_older_than_a_minute() -> None:
    history = [rec(NOW - 61, container="web"), rec(NOW - 20, container="db")]
    d = run(running(health="unhealthy"), UNHEALTHY,
            ctx(config_=cfg(global_actions_per_minute=2), history=history))
    assert_acts(d)


def test_global_rate_ignores_skipped_restarts() -> None:
    history = [rec(NOW - 30, container="web", outcome=Outcome.SKIPPED),
               rec(NOW - 20, container="db", outcome=Outcome.SKIPPED)]
    d = run(running(health="unhealthy"), UNHEALTHY,
            ctx(config_=cfg(global_actions_per_minute=2), history=history))
    assert_acts(d)


def test_alert_repeat_holds_same_succeeded_alert() -> None:
    history = [rec(NOW - 100, Action.ALERT, rule="crash_loop.critical")]
    d = run(running(), CRASH_LOOP, ctx(history=history))
    assert d.action is Action.ALERT
    assert d.suppressed_by is not None and d.suppressed_by.startswith("alert-repeat: ")
    assert d.suppressed_by == "alert-repeat: same alert raised 100 s ago"


# (ids, record) where the record does NOT de-duplicate the crash_loop alert
ALERT_NOT_REPEAT = [
    ("failed-alert", rec(NOW - 100, Action.ALERT, Outcome.FAILED, rule="crash_loop.critical")),
    ("skipped-alert", rec(NOW - 100, Action.ALERT, Outcome.SKIPPED, rule="crash_loop.critical")),
    ("pending-alert", rec(NOW - 100, Action.ALERT, Outcome.PENDING, rule="crash_loop.critical")),
    ("other-rule", rec(NOW - 100, Action.ALERT, rule="oom_killed.critical")),
    ("other-container", rec(NOW - 100, Action.ALERT, container="web",
                            rule="crash_loop.critical")),
    ("older-than-repeat", rec(NOW - 3600, Action.ALERT, rule="crash_loop.critical")),
    ("a-restart-not-alert", rec(NOW - 100, Action.RESTART, rule="crash_loop.critical")),
]


@pytest.mark.parametrize("record", [r for _, r in ALERT_NOT_REPEAT],
                         ids=[i for i, _ in ALERT_NOT_REPEAT])
def test_alert_repeat_only_counts_succeeded_alerts_of_the_same_rule(record: ActionRecord) -> None:
    d = run(running(), CRASH_LOOP, ctx(history=[record]))
    assert (d.action, d.suppressed_by) == (Action.ALERT, None)


def test_alert_repeat_applies_to_budget_exhausted_alerts() -> None:
    history = [rec(NOW - 3000), rec(NOW - 2000), rec(NOW - 1000),
               rec(NOW - 500, Action.ALERT, rule="unhealthy.critical.budget_exhausted")]
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(history=history))
    assert d.rule == "unhealthy.critical.budget_exhausted"
    assert d.suppressed_by is not None and d.suppressed_by.startswith("alert-repeat: ")


def test_dry_run_holds_restarts() -> None:
    assert_held(run(running(health="unhealthy"), UNHEALTHY, ctx(dry_run=True)), "dry-run")


def test_dry_run_does_not_hold_alerts() -> None:
    d = run(running(), CRASH_LOOP, ctx(dry_run=True))
    assert (d.action, d.suppressed_by) == (Action.ALERT, None)


def test_without_dry_run_restart_acts() -> None:
    assert_acts(run(running(health="unhealthy"), UNHEALTHY, ctx(dry_run=False)))


def test_dry_run_reports_the_earlier_guard_not_itself() -> None:
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(dry_run=True, history=[rec(NOW - 1)]))
    assert_held(d, "cooldown")


# --- explain ------------------------------------------------------------------------------


def test_explain_is_one_line_with_rule_evidence_and_hold_reason() -> None:
    c = running(health="unhealthy", started_at=NOW - 5)
    d = run(c, UNHEALTHY, ctx(config_=cfg(grace_s=30.0)))
    line = d.explain()
    assert "\n" not in line
    assert line.startswith("restart api: rule unhealthy.critical")
    assert "healthcheck failing 3 times in a row" in line
    assert line.endswith("[held: grace: started 5 s ago, 25 s left]")


def test_explain_of_an_acting_decision_has_budget_note_and_no_hold() -> None:
    line = run(running(health="unhealthy"), UNHEALTHY).explain()
    assert line == ("restart api: rule unhealthy.critical; healthcheck failing 3 times in a row; "
                    "budget 1 of 3 used")


# --- timelines ----------------------------------------------------------------------------


def _step(c: ContainerState, cls: Classification | None, now: float,
          history: list[ActionRecord], config_: Config) -> Decision | None:
    """One loop tick: decide, and record what the shell would have done."""
    d = decide.decide(c, cls, decide.Context(now=now, config=config_, history=tuple(history),
                                             watch_since=T0 - 3600))
    if d is not None and d.acts:
        history.append(ActionRecord(c.name, Action.RESTART, now, Outcome.SUCCEEDED, d.rule))
    elif d is not None and d.action is Action.ALERT and d.suppressed_by is None:
        history.append(ActionRecord(c.name, Action.ALERT, now, Outcome.SUCCEEDED, d.rule))
    return d


def test_timeline_unhealthy_is_restarted_when_grace_ends() -> None:
    config_ = cfg(grace_s=30.0)
    c = ContainerState(id="id-api", name="api", status="running", started_at=T0,
                       health="unhealthy", health_failing_streak=3)
    history: list[ActionRecord] = []
    held_by = {}
    for t in range(0, 45, 5):
        d = _step(c, UNHEALTHY, T0 + t, history, config_)
        assert d is not None
        held_by[t] = (d.suppressed_by or "").split(":")[0]
    assert [r.at - T0 for r in history] == [30.0]
    assert all(held_by[t] == "grace" for t in range(0, 30, 5))
    assert held_by[30] == ""
    assert held_by[35] == held_by[40] == "cooldown"


def test_timeline_five_crashes_three_restarts_then_alert() -> None:
    config_ = Config()  # budget 3 in 3600 s; cooldown 30 s; back-off 10 s, 20 s
    history: list[ActionRecord] = []
    deaths: list[float] = []
    decisions = []
    for i in range(5):
        now = T0 + 60 * i
        deaths.append(now)
        c = ContainerState(id="id-job", name="job", status="exited", exit_code=1,
                           started_at=now - 1, finished_at=now, deaths=tuple(deaths))
        cls = classify_mod.classify(c, None, (), now, config_.classify, config_.thresholds)
        decisions.append(_step(c, cls, now, history, config_))
    restarts = [r for r in history if r.action is Action.RESTART]
    assert [r.at - T0 for r in restarts] == [0.0, 60.0, 120.0]
    assert [d.action for d in decisions if d] == [Action.RESTART] * 3 + [Action.ALERT] * 2
    assert decisions[3] is not None and decisions[3].rule == "crashed.critical.budget_exhausted"
    assert decisions[4] is not None and decisions[4].rule == "crash_loop.critical"


def test_timeline_crashes_past_budget_alert_once_and_never_restart_again() -> None:
    # without the crash-loop class in the way, the budget alone must stop the restarts
    config_ = dataclasses.replace(Config(), classify=ClassifySettings(crash_loop_deaths=100))
    history: list[ActionRecord] = []
    decisions = []
    for i in range(6):
        now = T0 + 60 * i
        c = ContainerState(id="id-job", name="job", status="exited", exit_code=1,
                           finished_at=now)
        cls = classify_mod.classify(c, None, (), now, config_.classify, ThresholdSettings())
        decisions.append(_step(c, cls, now, history, config_))
    assert sum(r.action is Action.RESTART for r in history) == 3
    assert [r.action for r in history] == [Action.RESTART] * 3 + [Action.ALERT]
    last = decisions[-1]
    assert last is not None and last.action is Action.ALERT
    assert (last.suppressed_by or "").startswith("alert-repeat: ")


COUNTED = [Outcome.PENDING, Outcome.ABANDONED, Outcome.FAILED, Outcome.SUCCEEDED]


@pytest.mark.parametrize("outcome", COUNTED, ids=[o.value for o in COUNTED])
def test_in_flight_and_abandoned_restarts_count_for_budget(outcome: Outcome) -> None:
    history = [rec(NOW - 3000, outcome=outcome), rec(NOW - 2000, outcome=outcome),
               rec(NOW - 1000, outcome=outcome)]
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(history=history))
    assert d.rule.endswith(".budget_exhausted")


@pytest.mark.parametrize("outcome", COUNTED, ids=[o.value for o in COUNTED])
def test_in_flight_and_abandoned_restarts_count_for_cooldown(outcome: Outcome) -> None:
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(history=[rec(NOW - 5, outcome=outcome)]))
    assert_held(d, "cooldown")


def test_skipped_restarts_count_for_neither_budget_nor_cooldown() -> None:
    history = [rec(NOW - 3000, outcome=Outcome.SKIPPED), rec(NOW - 2000, outcome=Outcome.SKIPPED),
               rec(NOW - 1000, outcome=Outcome.SKIPPED), rec(NOW - 5, outcome=Outcome.SKIPPED)]
    d = run(running(health="unhealthy"), UNHEALTHY, ctx(history=history))
    assert_acts(d)
    assert "budget 1 of 3 used" in d.notes


# --- a restart the engine refused for good -------------------------------------------------

def _refused(at: float, retryable: bool) -> ActionRecord:
    return dataclasses.replace(rec(at, outcome=Outcome.FAILED), retryable=retryable)


def test_permanently_refused_restart_is_not_retried_while_the_container_is_unchanged() -> None:
    d = run(exited(started_at=NOW - 3600), CRASHED,
            ctx(config_=cfg(cooldown_s=0.0, backoff_base_s=0.0),
                history=(_refused(NOW - 300, retryable=False),)))
    assert_held(d, "engine-refused")


def test_retryable_failure_is_retried_under_the_same_guards() -> None:
    d = run(exited(started_at=NOW - 3600), CRASHED,
            ctx(config_=cfg(cooldown_s=0.0, backoff_base_s=0.0),
                history=(_refused(NOW - 300, retryable=True),)))
    assert_acts(d)


def test_refused_restart_is_tried_again_once_the_container_was_started_since() -> None:
    d = run(exited(started_at=NOW - 60), CRASHED,
            ctx(config_=cfg(cooldown_s=0.0, backoff_base_s=0.0),
                history=(_refused(NOW - 300, retryable=False),)))
    assert_acts(d)


# --- service and recreate actions ---------------------------------------------------------


def _decision(action: Action, target: str = "api-1") -> Decision:
    return Decision(action, f"id-{target}", target, "config_drift.critical",
                    Failure.CONFIG_DRIFT, Health.CRITICAL, at=NOW)


@pytest.mark.parametrize("action", [Action.RECREATE, Action.SCALE_UP, Action.SCALE_DOWN],
                         ids=["recreate", "scale-up", "scale-down"])
def test_dry_run_holds_every_engine_action(action: Action) -> None:
    ctx = decide.Context(now=NOW, config=Config(), dry_run=True)
    d = decide.dry_run(_decision(action), ContainerState(id="x", name="x"),
                       Classification(Failure.CONFIG_DRIFT, Health.CRITICAL), ctx)
    assert d.suppressed_by == f"dry-run: would {action.value.replace('_', ' ')}"
