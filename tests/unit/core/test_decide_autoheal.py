"""The decision-table rows of docker-autoheal's (and Docker-Guardian's) interface.

Per-container actions (healthd.action / autoheal.action), the label opt-in, only running
containers, the start period, the consecutive-unhealthy threshold, the redeploy and
backup holds: each holds (or changes) the decision in one case and lets the same
situation, minus the one fact it looks at, go through.
"""

from __future__ import annotations

import dataclasses

import pytest

from healthd.core import decide, notices
from healthd.core.churn import Churn
from healthd.core.model import (
    Action,
    Classification,
    ContainerState,
    Decision,
    Failure,
    Health,
    Outcome,
)
from healthd.core.settings import Config

NOW = 1_700_010_000.0
UNHEALTHY = Classification(Failure.UNHEALTHY, Health.CRITICAL,
                           ("healthcheck failing 3 times in a row",))
CRASHED = Classification(Failure.CRASHED, Health.CRITICAL, ("exited with code 1",))
CRASH_LOOP = Classification(Failure.CRASH_LOOP, Health.CRITICAL, ("died 5 times in 600 s",))


def cfg(watch: dict[str, object] | None = None, **guards: object) -> Config:
    c = Config()
    return dataclasses.replace(c, guards=dataclasses.replace(c.guards, **guards),  # type: ignore[arg-type]
                               watch=dataclasses.replace(c.watch, **(watch or {})))  # type: ignore[arg-type]


def box(*labels: tuple[str, str], **kw: object) -> ContainerState:
    base: dict[str, object] = {"id": "id-api", "name": "api", "status": "running",
                               "started_at": NOW - 3600, "health": "unhealthy",
                               "health_failing_streak": 3, "labels": labels}
    base.update(kw)
    return ContainerState(**base)  # type: ignore[arg-type]


def run(c: ContainerState, cls: Classification = UNHEALTHY, config: Config | None = None,
        **kw: object) -> Decision:
    d = decide.decide(c, cls, decide.Context(now=NOW, config=config or Config(), **kw))  # type: ignore[arg-type]
    assert d is not None
    return d


def held_by(d: Decision) -> str:
    return (d.suppressed_by or "").split(":", 1)[0]


# --- per-container actions ----------------------------------------------------------------

@pytest.mark.parametrize("key", ["healthd.action", "autoheal.action"])
def test_action_stop_quarantines_instead_of_restarting(key: str) -> None:
    d = run(box((key, "stop")))
    assert (d.action, d.rule, d.suppressed_by) == (Action.STOP, "unhealthy.critical.label_stop",
                                                   None)
    assert d.acts
    assert f"label {key}=stop: quarantine: stop it and leave it stopped" in d.notes
    assert "healthcheck failing 3 times in a row" in d.explain()


@pytest.mark.parametrize("key", ["healthd.action", "autoheal.action"])
def test_action_notify_raises_an_alert_and_touches_nothing(key: str) -> None:
    d = run(box((key, "notify")))
    assert (d.action, d.rule, d.suppressed_by) == (Action.ALERT,
                                                   "unhealthy.critical.label_notify", None)
    assert not d.acts
    assert notices.kind_of(d, Outcome.SUCCEEDED) is notices.EventKind.ALERT


def test_action_none_is_held_with_the_label_as_reason() -> None:
    d = run(box(("autoheal.action", "none")))
    assert held_by(d) == "label-action"
    assert d.rule == "unhealthy.critical.label_none"
    assert "autoheal.action=none" in (d.suppressed_by or "")


def test_action_restart_is_the_tables_own() -> None:
    d = run(box(("healthd.action", "restart")))
    assert (d.action, d.rule, d.suppressed_by) == (Action.RESTART, "unhealthy.critical", None)


def test_healthds_own_action_label_wins_over_autoheals() -> None:
    d = run(box(("autoheal.action", "stop"), ("healthd.action", "notify")))
    assert d.action is Action.ALERT


def test_action_label_leaves_rows_that_do_not_touch_the_container_alone() -> None:
    d = run(box(("autoheal.action", "stop")), CRASH_LOOP)
    assert (d.action, d.rule) == (Action.ALERT, "crash_loop.critical")


def test_bad_action_label_is_noted_and_the_table_stands() -> None:
    d = run(box(("autoheal.action", "reboot")))
    assert d.action is Action.RESTART
    assert any("expected one of restart, stop, notify, none" in n for n in d.notes)


def test_a_stopped_quarantined_container_is_not_stopped_again() -> None:
    c = box(("autoheal.action", "stop"), status="exited", exit_code=143, health=None,
            finished_at=NOW - 5, stopped_on_purpose=True)
    d = run(c, CRASHED)
    assert d.action is Action.STOP and d.suppressed_by is not None and not d.acts


def test_stop_is_not_counted_against_the_restart_budget_but_rate_limited() -> None:
    d = run(box(("autoheal.action", "stop")), config=cfg(global_actions_per_minute=0))
    assert held_by(d) == "global-rate"


@pytest.mark.parametrize("key", ["healthd.notify", "autoheal.notify"])
def test_notify_false_silences_the_containers_notices(key: str) -> None:
    d = run(box())
    labels = ((key, "false"),)
    assert notices.notice_for(d, Outcome.SUCCEEDED, labels, "n1", NOW) is None
    assert notices.notice_for(d, Outcome.SUCCEEDED, ((key, "true"),), "n1", NOW) is not None


# --- label opt-in (AUTOHEAL_CONTAINER_LABEL) ------------------------------------------------

def test_opt_in_mode_holds_an_unlabelled_container() -> None:
    d = run(box(), config=cfg({"mode": "opt-in", "opt_in_label": "autoheal"}))
    assert held_by(d) == "not-opted-in"


@pytest.mark.parametrize(("label", "opt_in"), [(("autoheal", "true"), "autoheal"),
                                               (("monitor.heal", "true"), "monitor.heal")],
                         ids=["autoheal", "custom"])
def test_opt_in_mode_heals_a_container_with_the_label(label: tuple[str, str],
                                                      opt_in: str) -> None:
    d = run(box(label), config=cfg({"mode": "opt-in", "opt_in_label": opt_in}))
    assert d.acts


def test_custom_label_false_does_not_opt_in() -> None:
    d = run(box(("monitor.heal", "false")),
            config=cfg({"mode": "opt-in", "opt_in_label": "monitor.heal"}))
    assert held_by(d) == "not-opted-in"


# --- only running, start period ------------------------------------------------------------

def test_only_running_holds_a_paused_container() -> None:
    d = run(box(status="paused"), config=cfg({"only_running": True}))
    assert held_by(d) == "not-running"
    assert run(box(status="paused")).acts


def test_start_period_holds_every_action_after_healthd_starts() -> None:
    d = run(box(), config=cfg(start_period_s=300.0), started_at=NOW - 100)
    assert held_by(d) == "start-period"
    assert run(box(), config=cfg(start_period_s=300.0), started_at=NOW - 301).acts


# --- consecutive-unhealthy threshold -------------------------------------------------------

@pytest.mark.parametrize(("streak", "acts"), [(2, False), (3, True)])
def test_threshold_from_config_needs_n_failed_checks(streak: int, acts: bool) -> None:
    d = run(box(health_failing_streak=streak), config=cfg(unhealthy_threshold=3))
    assert d.acts is acts
    if not acts:
        assert d.suppressed_by == "threshold: 2 of 3 consecutive failed health checks"


def test_threshold_label_overrides_config() -> None:
    c = box(("healthd.unhealthy.threshold", "5"), health_failing_streak=4)
    assert held_by(run(c, config=cfg(unhealthy_threshold=2))) == "threshold"


def test_threshold_applies_to_unhealthy_only() -> None:
    c = box(status="exited", exit_code=1, health=None, health_failing_streak=0)
    assert run(c, CRASHED, config=cfg(unhealthy_threshold=3)).acts


# --- redeploys and backups -------------------------------------------------------------------

SHOP = (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "api"))
REDEPLOY = (Churn(NOW - 40, "shop", "create"), Churn(NOW - 39, "shop", "destroy"),
            Churn(NOW - 20, "shop", "create"), Churn(NOW - 19, "shop", "destroy"))


def test_redeploy_of_its_project_holds_with_the_reason() -> None:
    d = run(box(*SHOP), redeploys=REDEPLOY)
    assert d.suppressed_by == ("redeploy: shop is being redeployed (2 containers recreated "
                               "in the last 40 s; held 41 s more)")


def test_redeploy_of_another_project_holds_only_with_scope_all() -> None:
    other = tuple(dataclasses.replace(e, group="blog") for e in REDEPLOY)
    assert run(box(*SHOP), redeploys=other).acts
    assert held_by(run(box(*SHOP), config=cfg(redeploy_hold="all"), redeploys=other)) == "redeploy"
    assert held_by(run(box(), config=cfg(redeploy_hold="all"), redeploys=other)) == "redeploy"


def test_redeploy_hold_off_and_after_the_window() -> None:
    assert run(box(*SHOP), config=cfg(redeploy_hold="off"), redeploys=REDEPLOY).acts
    assert run(box(*SHOP), config=cfg(redeploy_window_s=10.0), redeploys=REDEPLOY).acts


def test_redeploy_does_not_hold_alerts() -> None:
    d = run(box(*SHOP, ("autoheal.action", "notify")), redeploys=REDEPLOY)
    assert d.action is Action.ALERT and d.suppressed_by is None


def test_backup_holds_containers_it_stops() -> None:
    label = ("docker-volume-backup.stop-during-backup", "true")
    assert held_by(run(box(label), backup_running=True)) == "backup"
    assert run(box(label), backup_running=False).acts
    assert run(box(), backup_running=True).acts
