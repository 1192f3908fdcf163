"""The throttle's guards called directly, values in and out: budgets per action, cooldown,
the host-wide rate, and how far back they read. Their run through the whole pipeline
(back-off, alert repeat, timelines) is tested in test_decide."""

from __future__ import annotations

import pytest

from healthd.core import throttle
from healthd.core.model import (
    Action,
    ActionRecord,
    ContainerState,
    Decision,
    Failure,
    Health,
    Outcome,
)
from healthd.core.settings import GuardSettings

NOW = 1_700_010_000.0
GUARDS = GuardSettings()


def _decision(action: Action, target: str = "api-1") -> Decision:
    return Decision(action, f"id-{target}", target, "config_drift.critical",
                    Failure.CONFIG_DRIFT, Health.CRITICAL, at=NOW)


def _rec(action: Action, target: str, ago: float) -> ActionRecord:
    return ActionRecord(target, action, NOW - ago, Outcome.SUCCEEDED, "r")


def test_recreate_has_its_own_budget_then_becomes_one_alert() -> None:
    history = [_rec(Action.RECREATE, "api-1", 3000), _rec(Action.RECREATE, "api-1", 2000),
               _rec(Action.RECREATE, "api-1", 1000), _rec(Action.RESTART, "api-1", 10)]
    d = throttle.throttle(_decision(Action.RECREATE), ContainerState(id="id-api-1", name="api-1"),
                          history, NOW, GUARDS)
    assert d.action is Action.ALERT and d.rule.endswith("budget_exhausted")
    assert "budget 3 of 3 recreates used" in d.notes[-1]


def test_a_recreate_waits_out_its_cooldown() -> None:
    d = throttle.throttle(_decision(Action.RECREATE), ContainerState(id="id-api-1", name="api-1"),
                          [_rec(Action.RECREATE, "api-1", 5)], NOW, GUARDS)
    assert d.suppressed_by is not None and d.suppressed_by.startswith("cooldown: recreated 5 s")


def test_another_containers_restarts_leave_this_ones_budget_alone() -> None:
    history = [_rec(Action.RESTART, "db-1", ago) for ago in (3000, 2000, 1000)]
    d = throttle.throttle(_decision(Action.RESTART), ContainerState(id="id-api-1", name="api-1"),
                          history, NOW, GUARDS)
    assert d.action is Action.RESTART and d.suppressed_by is None
    assert d.notes[-1] == "budget 1 of 3 used"


@pytest.mark.parametrize("action", [Action.SCALE_UP, Action.SCALE_DOWN], ids=["up", "down"])
def test_scale_actions_count_against_the_host_wide_rate(action: Action) -> None:
    guards = GuardSettings(global_actions_per_minute=2)
    history = [_rec(Action.RESTART, "a", 10), _rec(Action.RECREATE, "b", 20)]
    d = throttle.throttle(_decision(action, "shop/api"), ContainerState(id="x", name="x"),
                          history, NOW, guards)
    assert d.suppressed_by == "global-rate: 2 actions on this host in the last minute (limit 2)"


def test_the_host_wide_rate_forgets_actions_older_than_its_window() -> None:
    guards = GuardSettings(global_actions_per_minute=1)
    old = [_rec(Action.RESTART, "a", throttle.GLOBAL_RATE_WINDOW_S + 1)]
    d = throttle.global_rate(_decision(Action.SCALE_UP, "shop/api"), old, NOW, guards)
    assert d.suppressed_by is None


def test_history_window_covers_every_guard_including_a_long_cooldown() -> None:
    assert throttle.history_window_s(GUARDS) == 3600.0
    assert throttle.history_window_s(GuardSettings(cooldown_s=7200.0)) == 7200.0
    assert throttle.history_window_s(GuardSettings(
        budget_window_s=1.0, alert_repeat_s=1.0, cooldown_s=1.0)) == 60.0  # the global rate
