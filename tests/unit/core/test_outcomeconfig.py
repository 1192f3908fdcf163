"""healthd.core.outcomeconfig: the [verify] and [ladder] tables, their defaults and every
bad value named with its key and what is allowed."""

from __future__ import annotations

import math
import sys

import pytest

from healthd.core import fixrate, ladder, outcomeconfig, verdict
from healthd.core.ladder import HOLD
from healthd.core.model import Action, Failure
from healthd.core.outcomeconfig import LadderSettings, OutcomeSettings, VerifySettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def test_no_tables_are_the_documented_defaults() -> None:
    s, problems = outcomeconfig.parse({})
    assert problems == []
    assert s == OutcomeSettings()
    assert s.verify.window_for(Action.RESTART) == 600.0
    assert s.verify.window_for(Action.ROLLBACK) == 600.0
    assert (s.verify.max_gap_s, s.verify.settle_s) == (verdict.MAX_GAP_S, verdict.SETTLE_S)
    assert s.ladder.ladder_for(Failure.UNHEALTHY) == (Action.RESTART, Action.RECREATE, HOLD)
    assert s.ladder.ladder_for(Failure.UPDATE_FAILED) == (Action.ROLLBACK, HOLD)
    assert s.ladder.ladder_for(Failure.CRASHED) is None
    assert (s.ladder.skip_below, s.ladder.min_tries, s.ladder.learn_window_s) == (
        0.2, 5, 7 * 86400.0)


def test_the_module_docstrings_example_parses_from_toml() -> None:
    doc = outcomeconfig.__doc__ or ""
    text = doc[doc.index("    [verify]\n"):].replace("\n    ", "\n")
    s, problems = outcomeconfig.parse(tomllib.loads(text))
    assert problems == []
    assert s == OutcomeSettings(VerifySettings(windows=((Action.RESTART, 600.0),)))


def test_windows_per_action_kind_override_the_default() -> None:
    v, problems = outcomeconfig.parse_verify(
        {"default": 300, "restart": 120, "rollback": 900.5, "max_gap_s": 30, "settle_s": 0})
    assert problems == []
    assert v.window_for(Action.RESTART) == 120.0
    assert v.window_for(Action.ROLLBACK) == 900.5
    assert v.window_for(Action.RECREATE) == 300.0
    assert (v.max_gap_s, v.settle_s) == (30.0, 0.0)


def test_a_ladder_per_classification_replaces_only_its_own() -> None:
    lad, problems = outcomeconfig.parse_ladder(
        {"unhealthy": ["recreate", "alert-and-hold"], "crashed": ["restart", "alert-and-hold"],
         "skip_below": 0.5, "min_tries": 3, "learn_window_s": 86400})
    assert problems == []
    assert lad.ladder_for(Failure.UNHEALTHY) == (Action.RECREATE, HOLD)
    assert lad.ladder_for(Failure.CRASHED) == (Action.RESTART, HOLD)
    assert lad.ladder_for(Failure.CRASH_LOOP) == ladder.DEFAULT_LADDERS[Failure.CRASH_LOOP]
    assert (lad.skip_below, lad.min_tries, lad.learn_window_s) == (0.5, 3, 86400.0)


@pytest.mark.parametrize("order", ["alias-first", "alias-last"])
def test_resource_exhaustion_sets_its_three_classes_and_one_named_alone_wins(
        order: str) -> None:
    items = [("resource_exhaustion", ["restart", "alert-and-hold"]),
             ("oom_killed", ["scale_up", "alert-and-hold"])]
    lad, problems = outcomeconfig.parse_ladder(dict(items if order == "alias-first"
                                                    else reversed(items)))
    assert problems == []
    assert lad.ladder_for(Failure.OOM_KILLED) == (Action.SCALE_UP, HOLD)
    assert lad.ladder_for(Failure.RESOURCE_PRESSURE) == (Action.RESTART, HOLD)
    assert lad.ladder_for(Failure.PREDICTED_EXHAUSTION) == (Action.RESTART, HOLD)


def test_people_alone_is_a_ladder() -> None:
    lad, problems = outcomeconfig.parse_ladder({"crash_loop": ["alert-and-hold"]})
    assert problems == [] and lad.ladder_for(Failure.CRASH_LOOP) == (HOLD,)


@pytest.mark.parametrize(("table", "key", "says"), [
    ({"restrat": 600}, "verify.restrat", "unknown key; allowed: default, restart, recreate"),
    ({"alert": 600}, "verify.alert", "unknown key"),
    ({"restart": 0}, "verify.restart", "expected seconds > 0, got 0"),
    ({"restart": -5}, "verify.restart", "expected seconds > 0"),
    ({"restart": "10m"}, "verify.restart", "expected seconds > 0, got '10m'"),
    ({"default": True}, "verify.default", "expected seconds > 0, got True"),
    ({"max_gap_s": math.nan}, "verify.max_gap_s", "expected seconds > 0"),
    ({"max_gap_s": 1e12}, "verify.max_gap_s", "expected seconds > 0"),
    ({"settle_s": -1}, "verify.settle_s", "expected seconds >= 0, got -1"),
], ids=["typo", "unverified-kind", "zero", "negative", "text", "bool", "nan", "huge",
        "negative-settle"])
def test_a_bad_verify_key_is_named_with_what_is_allowed(
        table: dict[str, object], key: str, says: str) -> None:
    v, problems = outcomeconfig.parse_verify(table)
    assert any(p.startswith(key + ":") and says in p for p in problems), problems
    assert v == VerifySettings()  # the bad value is not taken


@pytest.mark.parametrize(("table", "key", "says"), [
    ({"unhelthy": ["alert-and-hold"]}, "ladder.unhelthy",
     "unknown key; allowed: enabled, skip_below"),
    ({"dependency_failure": ["alert-and-hold"]}, "ladder.dependency_failure", "unknown key"),
    ({"unhealthy": "restart"}, "ladder.unhealthy",
     'expected a list of rungs such as ["restart", "recreate", "alert-and-hold"]'),
    ({"unhealthy": ["restart", 3]}, "ladder.unhealthy", "expected a list of rungs"),
    ({"unhealthy": ["reboot", "alert-and-hold"]}, "ladder.unhealthy",
     "'reboot' not a rung; allowed: restart, recreate, scale_up, rollback, alert-and-hold"),
    ({"unhealthy": ["restart", "restart", "alert-and-hold"]}, "ladder.unhealthy",
     "restart more than once"),
    ({"unhealthy": ["restart", "recreate"]}, "ladder.unhealthy",
     "the last rung must be alert-and-hold (people)"),
    ({"unhealthy": ["alert-and-hold", "restart"]}, "ladder.unhealthy",
     "the last rung must be alert-and-hold"),
    ({"unhealthy": []}, "ladder.unhealthy", "the last rung must be alert-and-hold"),
    ({"resource_exhaustion": ["restart"]}, "ladder.resource_exhaustion", "the last rung"),
    ({"skip_below": 20}, "ladder.skip_below", "expected a fraction 0..1 (0 never skips)"),
    ({"skip_below": "20%"}, "ladder.skip_below", "expected a fraction 0..1"),
    ({"min_tries": 0}, "ladder.min_tries", "expected an integer >= 1, got 0"),
    ({"min_tries": 2.5}, "ladder.min_tries", "expected an integer >= 1"),
    ({"min_tries": True}, "ladder.min_tries", "expected an integer >= 1"),
    ({"learn_window_s": 0}, "ladder.learn_window_s", "expected seconds > 0"),
    ({"enabled": "yes"}, "ladder.enabled", "expected true or false"),
], ids=["typo", "not-its-own", "not-a-list", "not-strings", "unknown-rung", "twice",
        "no-people", "people-first", "empty", "alias-no-people", "percent", "text-fraction",
        "zero-tries", "float-tries", "bool-tries", "zero-window", "enabled-text"])
def test_a_bad_ladder_key_is_named_with_what_is_allowed(
        table: dict[str, object], key: str, says: str) -> None:
    lad, problems = outcomeconfig.parse_ladder(table)
    assert any(p.startswith(key + ":") and says in p for p in problems), problems
    assert lad == LadderSettings()  # the bad value is not taken


@pytest.mark.parametrize("section", ["verify", "ladder"])
def test_each_section_must_be_a_table(section: str) -> None:
    s, problems = outcomeconfig.parse({section: ["restart"]})
    assert problems == [f"{section}: expected a table, got list"]
    assert s == OutcomeSettings()


def test_every_problem_is_reported_not_only_the_first() -> None:
    _, problems = outcomeconfig.parse({"verify": {"restart": 0, "x": 1},
                                       "ladder": {"min_tries": 0, "crashed": []}})
    assert [p.split(":")[0] for p in problems] == [
        "verify.restart", "verify.x", "ladder.min_tries", "ladder.crashed"]


def test_the_settings_feed_the_ladder_and_the_skip_rule() -> None:
    s, _ = outcomeconfig.parse({"ladder": {"skip_below": 0.5, "min_tries": 2}})
    key = ("shop/api", Failure.UNHEALTHY, Action.RESTART)
    rungs = s.ladder.ladder_for(Failure.UNHEALTHY)
    assert rungs is not None
    c = ladder.next_rung(rungs, ladder.Target("api-1", "shop/api", recreatable=True),
                         Failure.UNHEALTHY, [], {key: fixrate.Tally(fixed=1, recurred=2)},
                         s.ladder.skip_below, s.ladder.min_tries, s.ladder.learn_window_s)
    assert c.action is Action.RECREATE
    assert c.skipped == ("restart skipped: fixed 1 of 3 unhealthy episodes of shop/api in "
                         "7 days",)
