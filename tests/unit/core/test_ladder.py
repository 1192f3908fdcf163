"""healthd.core.ladder: the next rung after the verdicts so far, skipped rungs and resets."""

from __future__ import annotations

import pytest

from healthd.core import fixrate, ladder, verdict
from healthd.core.fixrate import Tally
from healthd.core.ladder import HOLD, Step, Target
from healthd.core.model import Action, Failure
from healthd.core.verdict import Attempt, Kind, Observation, Verdict

T0 = 1_700_010_190.0  # 01:03:10 UTC
UNHEALTHY = Failure.UNHEALTHY
OOM = Failure.OOM_KILLED
RESTART_FIRST = ladder.DEFAULT_LADDERS[UNHEALTHY]
API = Target("api-1", service="shop/api", recreatable=True)
LONE = Target("api-1")  # no Compose service, no replicas

RECURRED = Verdict(Kind.RECURRED, "unhealthy again 42 s after the restart at 01:03:10",
                   T0 + 42, 42.0)
NOT_FIXED = Verdict(Kind.NOT_FIXED, "still unhealthy 30 s after the recreate at 01:05:00, "
                    "never seen well", T0 + 140)
FIXED = Verdict(Kind.FIXED, "unhealthy stayed away for 600 s after the restart at 01:03:10",
                T0 + 600)
PENDING = Verdict(Kind.PENDING, "watching: 20 of 600 s seen")
SUPERSEDED = Verdict(Kind.SUPERSEDED, "recreated by someone else 120 s after the restart",
                     T0 + 120)


def choose(steps: list[Step], target: Target = API, failure: Failure = UNHEALTHY,
           rungs: tuple[Action, ...] = RESTART_FIRST,
           tallies: dict[fixrate.Key, Tally] | None = None) -> ladder.Choice:
    return ladder.next_rung(rungs, target, failure, steps, tallies or {})


def test_the_defaults_are_the_issues() -> None:
    d = ladder.DEFAULT_LADDERS
    assert d[UNHEALTHY] == (Action.RESTART, Action.RECREATE, HOLD)
    assert d[Failure.CRASH_LOOP] == (Action.RESTART, Action.RECREATE, HOLD)
    for f in (OOM, Failure.RESOURCE_PRESSURE, Failure.PREDICTED_EXHAUSTION):
        assert d[f] == (Action.RESTART, Action.SCALE_UP, HOLD)
    assert d[Failure.UPDATE_FAILED] == (Action.ROLLBACK, HOLD)
    assert all(r[-1] is HOLD for r in d.values())


def test_the_first_problem_takes_the_first_rung() -> None:
    c = choose([])
    assert (c.action, c.rung, c.of) == (Action.RESTART, 1, 3)
    assert c.explain == "restart api-1: unhealthy; rung 1 of 3"
    assert not c.holds and not c.waits


def test_a_recurrence_takes_the_next_rung_and_names_the_chain() -> None:
    c = choose([Step(Action.RESTART, T0, RECURRED)])
    assert (c.action, c.rung) == (Action.RECREATE, 2)
    assert c.explain == ("recreate api-1: restart did not hold (unhealthy again 42 s after "
                         "the restart at 01:03:10); rung 2 of 3")


def test_after_every_rung_failed_the_target_is_held_for_people_with_the_whole_chain() -> None:
    c = choose([Step(Action.RESTART, T0, RECURRED), Step(Action.RECREATE, T0 + 110, NOT_FIXED)])
    assert c.holds and (c.rung, c.of) == (3, 3)
    assert c.chain == (
        "restart did not hold (unhealthy again 42 s after the restart at 01:03:10)",
        "recreate did not fix it (still unhealthy 30 s after the recreate at 01:05:00, "
        "never seen well)")
    assert c.explain.startswith("alert-and-hold api-1: restart did not hold")
    assert c.explain.endswith("; rung 3 of 3")


def test_a_held_target_stays_held_and_no_rung_is_taken_twice() -> None:
    steps = [Step(Action.RESTART, T0, RECURRED), Step(Action.RECREATE, T0 + 110, NOT_FIXED),
             Step(HOLD, T0 + 200, PENDING)]
    c = choose(steps)
    assert c.holds and c.rung == 3
    assert c.chain[-1] == "alert-and-hold since 01:06:30"


def test_a_pending_verdict_waits_and_never_repeats_the_action() -> None:
    c = choose([Step(Action.RESTART, T0, PENDING)])
    assert c.waits and c.rung == 0
    assert c.explain == "wait api-1: restart pending (watching: 20 of 600 s seen)"


@pytest.mark.parametrize("reset", [FIXED, SUPERSEDED], ids=["fixed", "superseded"])
def test_a_fix_that_held_resets_the_ladder(reset: Verdict) -> None:
    steps = [Step(Action.RESTART, T0, RECURRED), Step(Action.RECREATE, T0 + 100, reset)]
    c = choose(steps)
    assert (c.action, c.rung, c.chain) == (Action.RESTART, 1, ())
    c = choose([*steps, Step(Action.RESTART, T0 + 5000, RECURRED)])
    assert (c.action, c.rung) == (Action.RECREATE, 2)
    assert len(c.chain) == 1


def test_steps_are_read_in_time_order_whatever_order_they_come_in() -> None:
    steps = [Step(Action.RECREATE, T0 + 100, FIXED), Step(Action.RESTART, T0, RECURRED)]
    assert choose(steps).action is Action.RESTART


# ---- skipped rungs --------------------------------------------------------------------

def test_a_rung_that_does_not_apply_is_skipped_with_its_reason() -> None:
    c = choose([Step(Action.RESTART, T0, RECURRED)], target=LONE)
    assert c.holds and c.rung == 3
    assert c.skipped == ("recreate skipped: no Compose service to recreate it from",)
    assert c.explain.endswith("; recreate skipped: no Compose service to recreate it from; "
                              "rung 3 of 3")


@pytest.mark.parametrize(("target", "failure", "want", "why"), [
    (Target("w", scalable=False), OOM, HOLD, "scale_up skipped: no replicas allowed"),
    (Target("w", scalable=True), OOM, Action.SCALE_UP, None),
    (Target("w"), Failure.UPDATE_FAILED, HOLD, "rollback skipped: not a Swarm service"),
    (Target("w", rollbackable=True), Failure.UPDATE_FAILED, Action.ROLLBACK, None),
], ids=["no-replicas", "replicas", "no-previous-spec", "rollback"])
def test_what_applies_to_the_target(target: Target, failure: Failure, want: Action,
                                    why: str | None) -> None:
    rungs = ladder.DEFAULT_LADDERS[failure]
    steps = [] if failure is Failure.UPDATE_FAILED else [Step(Action.RESTART, T0, RECURRED)]
    c = choose(steps, target=target, failure=failure, rungs=rungs)
    assert c.action is want
    assert (c.skipped[0].startswith(why) if why else c.skipped == ())


def test_a_rung_that_seldom_fixes_this_failure_is_skipped_with_the_counts() -> None:
    tallies = {("shop/api", OOM, Action.RESTART): Tally(not_fixed=2, recurred=4)}
    c = choose([], target=Target("api-1", "shop/api", scalable=True), failure=OOM,
               rungs=ladder.DEFAULT_LADDERS[OOM], tallies=tallies)
    assert (c.action, c.rung) == (Action.SCALE_UP, 2)
    assert c.skipped == ("restart skipped: fixed 0 of 6 memory exhaustions of shop/api "
                         "in 7 days",)
    assert c.explain == ("scale_up api-1: oom killed; restart skipped: fixed 0 of 6 memory "
                         "exhaustions of shop/api in 7 days; rung 2 of 3")


def test_the_counts_are_per_service_and_classification() -> None:
    tallies = {("shop/web", OOM, Action.RESTART): Tally(recurred=9),
               ("shop/api", UNHEALTHY, Action.RESTART): Tally(recurred=9)}
    c = choose([], target=Target("api-1", "shop/api"), failure=OOM,
               rungs=ladder.DEFAULT_LADDERS[OOM], tallies=tallies)
    assert c.action is Action.RESTART


def test_a_container_outside_any_service_is_counted_by_its_name() -> None:
    tallies = {("api-1", UNHEALTHY, Action.RESTART): Tally(recurred=5)}
    assert choose([], target=LONE, tallies=tallies).holds


def test_people_are_never_skipped_even_when_every_rung_is() -> None:
    tallies = {("shop/api", UNHEALTHY, a): Tally(not_fixed=9)
               for a in (Action.RESTART, Action.RECREATE)}
    c = choose([], tallies=tallies)
    assert c.holds and c.rung == 3 and len(c.skipped) == 2


def test_a_rung_passed_over_earlier_stays_passed_over() -> None:
    # restart was skipped for its counts when the incident began; they have since changed
    c = choose([Step(Action.RECREATE, T0, RECURRED)])
    assert c.holds
    assert c.skipped == ("restart skipped earlier",)


def test_a_ladder_without_people_at_the_end_gets_them() -> None:
    c = choose([Step(Action.RESTART, T0, RECURRED)], rungs=(Action.RESTART,))
    assert c.holds and (c.rung, c.of) == (2, 2)


def test_an_empty_ladder_is_people_at_once() -> None:
    c = choose([], rungs=())
    assert c.holds and (c.rung, c.of) == (1, 1)


# ---- along a timeline ----------------------------------------------------------------------

def test_a_container_unhealthy_again_after_every_start_climbs_to_people_in_three_rungs() -> None:
    """Each rung's verdict judged from observations, then the next rung chosen, until the
    ladder holds: never more actions than rungs."""
    steps: list[Step] = []
    t = T0
    actions = []
    for _ in range(10):
        c = choose(steps)
        if c.holds:
            break
        actions.append(c.action)
        a = Attempt(c.action, "api-1", UNHEALTHY, t, 600.0)
        seen = [Observation(t + 10, health="healthy"),
                Observation(t + 15, health="unhealthy", failure=UNHEALTHY)]
        v = verdict.judge(a, seen, t + 20)
        assert v.kind is Kind.RECURRED
        steps.append(Step(c.action, t, v))
        t += 60
    assert actions == [Action.RESTART, Action.RECREATE]
    assert c.holds
    assert c.explain == (
        "alert-and-hold api-1: restart did not hold (unhealthy again 15 s after the restart "
        "at 01:03:10); recreate did not hold (unhealthy again 15 s after the recreate at "
        "01:04:10); rung 3 of 3")
