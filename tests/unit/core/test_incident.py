"""core.incident: judged actions grouped into incidents, and fix rates as rows."""

from __future__ import annotations

from healthd.core import fixrate, incident
from healthd.core.incident import Taken
from healthd.core.model import Action, Failure

T = 1_700_000_000.0


def test_rungs_until_a_fix_are_one_incident_and_the_next_problem_opens_another() -> None:
    found = incident.incidents([
        Taken("api", "unhealthy", "restart", T, "recurred", "unhealthy again 5 s after"),
        Taken("api", "unhealthy", "recreate", T + 30, "fixed", "stayed away", T + 630),
        Taken("api", "unhealthy", "restart", T + 5000, "pending", "watching"),
    ])
    first, second = found
    assert first.id == f"api@{int(T)}" and first.state == "fixed" and first.closed == T + 630
    assert first.chain() == "restart recurred → recreate fixed"
    assert second.is_open and second.state == "open" and second.opened == T + 5000


def test_a_hold_is_an_open_incident_until_released() -> None:
    held = incident.incidents([
        Taken("api", "crash_loop", "restart", T, "not_fixed"),
        Taken("api", "crash_loop", "alert", T + 40, "pending", "held for people"),
    ])
    (i,) = held
    assert i.state == "held" and i.is_open
    assert i.chain() == "restart not_fixed → alert-and-hold held"
    released = incident.incidents([
        Taken("api", "crash_loop", "restart", T, "not_fixed"),
        Taken("api", "crash_loop", "alert", T + 40, "superseded", "resumed by a person",
              T + 100),
    ])
    assert released[0].state == "superseded" and released[0].closed == T + 100


def test_targets_and_classifications_are_separate_incidents() -> None:
    found = incident.incidents([
        Taken("api", "unhealthy", "restart", T, "pending"),
        Taken("db", "unhealthy", "restart", T + 1, "pending"),
        Taken("api", "oom_killed", "restart", T + 2, "pending"),
    ])
    assert [(i.target, i.failure) for i in found] == [
        ("api", "unhealthy"), ("db", "unhealthy"), ("api", "oom_killed")]
    assert "unhealthy on api, opened " in incident.line(found[0])


def test_outcome_rows_put_the_worst_fix_rate_first() -> None:
    rows = incident.outcome_rows({
        ("shop/api", Failure.OOM_KILLED, Action.RESTART): fixrate.Tally(fixed=1, not_fixed=5),
        ("shop/db", Failure.UNHEALTHY, Action.RESTART): fixrate.Tally(fixed=4),
        ("shop/web", Failure.UNHEALTHY, Action.RECREATE): fixrate.Tally(pending=1),
    })
    assert [r["service"] for r in rows] == ["shop/api", "shop/db", "shop/web"]
    assert rows[0]["tries"] == 6 and abs(float(str(rows[0]["fix_rate"])) - 1 / 6) < 1e-9
    assert rows[2]["fix_rate"] is None


def test_a_failed_rung_followed_by_nothing_for_a_quiet_while_ends_its_incident() -> None:
    steps = [Taken("api", "unhealthy", "restart", T, "recurred", "", T + 5),
             Taken("api", "unhealthy", "restart", T + 5000, "pending")]
    first, second = incident.incidents(steps, T + 5001, quiet_s=600.0)
    assert (first.state, first.closed) == ("ended", T + 5)
    assert second.state == "open" and second.opened == T + 5000
    (alone,) = incident.incidents(steps[:1], T + 700, quiet_s=600.0)
    assert alone.state == "ended"
    (still,) = incident.incidents(steps[:1], T + 100, quiet_s=600.0)
    assert still.state == "open"
