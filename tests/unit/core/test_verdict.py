"""healthd.core.verdict: the verdict of one action along a timeline of observations."""

from __future__ import annotations

import pytest

from healthd.core import verdict
from healthd.core.model import Action, Failure
from healthd.core.verdict import Attempt, Change, Kind, Observation

AT = 1_700_010_190.0  # 2023-11-15 01:03:10 UTC
RESTART = Attempt(Action.RESTART, "api-1", Failure.UNHEALTHY, AT, 600.0)


def healthy(t: float) -> Observation:
    return Observation(AT + t, health="healthy")


def unhealthy(t: float) -> Observation:
    return Observation(AT + t, health="unhealthy", failure=Failure.UNHEALTHY)


def every(start: float, stop: float, step: float = 5.0) -> list[Observation]:
    """Healthy observations from ``start`` to ``stop`` seconds after the action, inclusive."""
    n = int((stop - start) / step)
    return [healthy(start + i * step) for i in range(n + 1)]


def test_a_fix_that_stays_for_the_whole_window_is_fixed_when_the_window_closes() -> None:
    v = verdict.judge(RESTART, every(5, 700), AT + 700)
    assert v.kind is Kind.FIXED
    assert v.at == AT + 600
    assert v.evidence == "unhealthy stayed away for 600 s after the restart at 01:03:10"


def test_a_fix_is_pending_while_the_window_runs() -> None:
    v = verdict.judge(RESTART, every(5, 120), AT + 120)
    assert v.kind is Kind.PENDING and not v.final and v.at is None
    assert v.evidence == ("watching: 120 of 600 s seen after the restart at 01:03:10, "
                          "well since 01:03:15")


def test_a_recurrence_gives_its_verdict_at_once_with_the_seconds_it_took() -> None:
    v = verdict.judge(RESTART, [*every(5, 40), unhealthy(42), *every(45, 700)], AT + 700)
    assert v.kind is Kind.RECURRED and v.final
    assert v.after_s == 42.0 and v.at == AT + 42
    assert v.evidence == "unhealthy again 42 s after the restart at 01:03:10"


def test_a_recurrence_is_given_before_the_window_ends() -> None:
    v = verdict.judge(RESTART, [*every(5, 40), unhealthy(42)], AT + 43)
    assert v.kind is Kind.RECURRED


@pytest.mark.parametrize(("t", "kind"), [
    (595.0, Kind.RECURRED), (600.0, Kind.RECURRED), (605.0, Kind.FIXED)],
    ids=["just-inside", "on-the-edge", "just-after"])
def test_a_recurrence_at_the_windows_edge(t: float, kind: Kind) -> None:
    seen = [o for o in every(5, 700) if o.t != AT + t] + [unhealthy(t)]
    assert verdict.judge(RESTART, seen, AT + 700).kind is kind


def test_a_problem_that_never_goes_away_is_not_fixed_once_settled() -> None:
    seen = [unhealthy(t) for t in (5, 10, 20, 30, 40)]
    assert verdict.judge(RESTART, seen[:3], AT + 20).kind is Kind.PENDING
    v = verdict.judge(RESTART, seen, AT + 40)
    assert v.kind is Kind.NOT_FIXED and v.at == AT + 30
    assert v.evidence == "still unhealthy 30 s after the restart at 01:03:10, never seen well"


def test_a_target_never_seen_well_in_the_window_is_not_fixed() -> None:
    seen = [Observation(AT + t, health="starting") for t in range(5, 700, 5)]
    v = verdict.judge(RESTART, seen, AT + 700)
    assert v.kind is Kind.NOT_FIXED
    assert v.evidence == "unhealthy never went away in 600 s after the restart at 01:03:10"


def test_another_failure_of_its_own_counts_as_a_recurrence_and_is_named() -> None:
    crashed = Observation(AT + 50, running=False, failure=Failure.CRASHED)
    v = verdict.judge(RESTART, [*every(5, 45), crashed], AT + 60)
    assert v.kind is Kind.RECURRED
    assert v.evidence == "crashed (it was unhealthy) 50 s after the restart at 01:03:10"


def test_an_upstreams_failure_neither_recurs_nor_clears() -> None:
    upstream = [Observation(AT + t, failure=Failure.DEPENDENCY_FAILURE)
                for t in range(5, 700, 5)]
    v = verdict.judge(RESTART, [healthy(2), *upstream], AT + 700)
    assert v.kind is Kind.FIXED
    assert verdict.judge(RESTART, upstream, AT + 700).kind is Kind.NOT_FIXED


def test_observations_at_the_action_or_after_now_are_not_read() -> None:
    seen = [unhealthy(0), *every(5, 100), unhealthy(110)]
    v = verdict.judge(RESTART, seen, AT + 100)
    assert v.kind is Kind.PENDING


def test_observations_are_read_in_time_order_whatever_order_they_come_in() -> None:
    seen = [*every(5, 40), unhealthy(42)]
    assert verdict.judge(RESTART, list(reversed(seen)), AT + 50).kind is Kind.RECURRED


# ---- gaps ------------------------------------------------------------------------------

def test_a_gap_in_observations_is_not_taken_as_stayed_away() -> None:
    # healthd was not looking from 100 s to 700 s (SIGKILLed): the window was not watched
    seen = [*every(5, 100), *every(700, 760)]
    v = verdict.judge(RESTART, seen, AT + 760)
    assert v.kind is Kind.PENDING
    assert v.unobserved_s == 600.0
    assert v.evidence.endswith("(600 s unobserved, not counted)")


def test_after_a_gap_the_window_ends_that_much_later() -> None:
    seen = [*every(5, 100), *every(700, 1300)]
    v = verdict.judge(RESTART, seen, AT + 1300)
    assert v.kind is Kind.FIXED
    assert v.at == AT + 1200  # 600 s observed: 0..100 and 700..1200
    assert v.evidence == ("unhealthy stayed away for 600 s after the restart at 01:03:10 "
                          "(600 s unobserved, not counted)")


def test_a_problem_seen_after_a_gap_is_a_recurrence_that_names_the_gap() -> None:
    v = verdict.judge(RESTART, [*every(5, 100), unhealthy(400)], AT + 400)
    assert v.kind is Kind.RECURRED and v.after_s == 400.0
    assert v.evidence == ("unhealthy again 400 s after the restart at 01:03:10 "
                          "(300 s unobserved, not counted)")


def test_a_gap_no_longer_than_the_bound_counts_as_watched() -> None:
    seen = [healthy(t) for t in range(60, 661, 60)]
    assert verdict.judge(RESTART, seen, AT + 660).kind is Kind.FIXED
    assert verdict.judge(RESTART, seen, AT + 660, max_gap_s=59).kind is Kind.PENDING


def test_a_pending_verdict_says_when_nothing_has_been_seen_for_long() -> None:
    v = verdict.judge(RESTART, every(5, 100), AT + 400)
    assert v.kind is Kind.PENDING
    assert v.evidence.endswith("; nothing seen for 300 s")


def test_no_observation_at_all_stays_pending_and_is_never_guessed() -> None:
    v = verdict.judge(RESTART, [], AT + 86400)
    assert v.kind is Kind.PENDING
    assert v.evidence == ("watching: 0 of 600 s seen after the restart at 01:03:10, "
                          "not seen well yet; nothing seen for 86400 s")


# ---- someone else ------------------------------------------------------------------------

@pytest.mark.parametrize("change", list(Change), ids=[c.value for c in Change])
def test_someone_elses_change_of_the_target_supersedes_the_verdict(change: Change) -> None:
    seen = [*every(5, 100), Observation(AT + 120, change=change), unhealthy(130)]
    v = verdict.judge(RESTART, seen, AT + 200)
    assert v.kind is Kind.SUPERSEDED and v.at == AT + 120
    assert v.evidence == f"{change.value} by someone else 120 s after the restart at 01:03:10"


def test_a_change_after_the_window_closed_does_not_undo_the_fix() -> None:
    seen = [*every(5, 600), Observation(AT + 650, change=Change.REMOVED)]
    assert verdict.judge(RESTART, seen, AT + 700).kind is Kind.FIXED


def test_a_recurrence_before_a_change_stands() -> None:
    seen = [*every(5, 40), unhealthy(42), Observation(AT + 50, change=Change.RECREATED)]
    assert verdict.judge(RESTART, seen, AT + 60).kind is Kind.RECURRED


def test_the_window_is_the_attempts_own() -> None:
    short = Attempt(Action.RECREATE, "api-1", Failure.CRASH_LOOP, AT, 30.0)
    v = verdict.judge(short, every(5, 40), AT + 40)
    assert v.kind is Kind.FIXED and v.at == AT + 30
    assert v.evidence == "crash loop stayed away for 30 s after the recreate at 01:03:10"
