"""core.escalate through core.decide: the ladder picks the rung, the guards still apply
(values in, values out: steps, tallies and ``now`` are arguments)."""

from __future__ import annotations

import dataclasses

from healthd.core import decide, escalate, fixrate, ladder
from healthd.core.model import (
    Action,
    ActionRecord,
    Classification,
    ContainerState,
    Decision,
    Failure,
    Health,
    Outcome,
)
from healthd.core.outcomeconfig import LadderSettings
from healthd.core.settings import Config
from healthd.core.topology import Bounds, Topology
from healthd.core.verdict import Kind, Verdict

NOW = 1_700_010_000.0
UNHEALTHY = Classification(Failure.UNHEALTHY, Health.CRITICAL,
                           ("healthcheck failing 3 times in a row",))
OOM = Classification(Failure.OOM_KILLED, Health.CRITICAL, ("OOM-killed, exit code 137",))
LONE = ladder.Target("api")
COMPOSE = ladder.Target("shop_api_1", "shop/api", recreatable=True)


def api(name: str = "api") -> ContainerState:
    return ContainerState(id=f"id-{name}", name=name, status="running",
                          started_at=NOW - 3600, health="unhealthy", health_failing_streak=3)


def step(action: Action, at: float, kind: Kind, evidence: str = "") -> ladder.Step:
    return ladder.Step(action, at, Verdict(kind, evidence, at + 40 if kind != Kind.PENDING
                                           else None))


def run(cls: Classification = UNHEALTHY, target: ladder.Target = LONE,
        steps: tuple[ladder.Step, ...] = (), config: Config | None = None,
        tallies: dict[fixrate.Key, fixrate.Tally] | None = None,
        history: tuple[ActionRecord, ...] = (), name: str = "api") -> Decision:
    ctx = decide.Context(now=NOW, config=config or Config(), ladder_target=target,
                         steps=steps, tallies=tallies or {}, history=history)
    d = decide.decide(api(name), cls, ctx)
    assert d is not None
    return d


def test_a_first_problem_takes_rung_one_as_the_table_said() -> None:
    d = run()
    assert d.action is Action.RESTART and d.acts
    assert "unhealthy; rung 1 of 3" in d.explain()


def test_a_restart_that_did_not_hold_is_followed_by_a_recreate_naming_the_chain() -> None:
    s = (step(Action.RESTART, NOW - 100, Kind.RECURRED,
              "unhealthy again 42 s after the restart at 12:03:10"),)
    d = run(target=COMPOSE, steps=s, name="shop_api_1",
            history=(ActionRecord("shop_api_1", Action.RESTART, NOW - 100, Outcome.SUCCEEDED),))
    assert d.action is Action.RECREATE and d.acts, d.explain()
    assert ("restart did not hold (unhealthy again 42 s after the restart at 12:03:10); "
            "rung 2 of 3") in d.explain()


def test_a_recreate_that_cannot_apply_is_skipped_and_people_are_alerted() -> None:
    s = (step(Action.RESTART, NOW - 100, Kind.NOT_FIXED, "still unhealthy 30 s after"),)
    d = run(steps=s)
    assert escalate.is_hold(d) and d.suppressed_by is None
    assert "recreate skipped: no Compose service to recreate it from" in d.explain()
    assert d.notes[-1].endswith("rung 3 of 3")


def test_a_held_target_is_left_alone_with_its_chain() -> None:
    s = (step(Action.RESTART, NOW - 100, Kind.RECURRED, "unhealthy again 5 s after"),
         step(Action.ALERT, NOW - 50, Kind.PENDING, "held for people"))
    d = run(steps=s)
    assert d.suppressed_by is not None and d.suppressed_by.startswith(f"{escalate.HELD}: ")
    assert "restart did not hold" in d.suppressed_by and not d.acts


def test_a_pending_window_waits_instead_of_acting_again() -> None:
    d = run(steps=(step(Action.RESTART, NOW - 10, Kind.PENDING, "watching for 600 s"),))
    assert d.suppressed_by is not None and d.suppressed_by.startswith(f"{escalate.WAIT}: ")


def test_a_fix_that_held_resets_the_ladder() -> None:
    s = (step(Action.RESTART, NOW - 2000, Kind.RECURRED),
         step(Action.RECREATE, NOW - 1500, Kind.FIXED))
    d = run(target=COMPOSE, steps=s, name="shop_api_1")
    assert d.action is Action.RESTART and "; rung 1 of 3" in d.explain()


def test_a_rung_that_never_fixed_this_service_is_skipped_with_the_counts() -> None:
    tallies = {("shop/api", Failure.OOM_KILLED, Action.RESTART): fixrate.Tally(not_fixed=6)}
    d = run(OOM, target=COMPOSE, tallies=tallies, name="shop_api_1")
    assert escalate.is_hold(d), d.explain()  # scale_up does not apply either
    assert "restart skipped: fixed 0 of 6 memory exhaustions of shop/api in 7 days" \
        in d.explain()


def test_ladders_off_leave_the_table_alone() -> None:
    c = Config()
    off = dataclasses.replace(c, ladder=LadderSettings(enabled=False))
    s = (step(Action.RESTART, NOW - 100, Kind.RECURRED),)
    d = run(steps=s, config=off)
    assert d.action is Action.RESTART and not any("rung" in n for n in d.notes)


def test_the_next_rung_still_goes_through_the_guards() -> None:
    s = (step(Action.RESTART, NOW - 100, Kind.RECURRED),)
    recreated = ActionRecord("shop_api_1", Action.RECREATE, NOW - 5, Outcome.SUCCEEDED)
    d = run(target=COMPOSE, steps=s, name="shop_api_1", history=(recreated,))
    assert d.action is Action.RECREATE
    assert d.suppressed_by is not None and d.suppressed_by.startswith("cooldown: ")


def test_target_of_a_compose_replica_knows_recreate_and_its_scale_bounds() -> None:
    topo = Topology(service_by_id={"id-a": "shop/api"},
                    members_by_service={"shop/api": ("id-a",)},
                    bounds_by_service={"shop/api": Bounds(1, 3)})
    t = escalate.target_of(api("a"), topo)
    assert (t.service, t.recreatable, t.scalable) == ("shop/api", True, True)
    lone = escalate.target_of(api("b"), topo)
    assert (lone.service, lone.recreatable, lone.scalable) == (None, False, False)


def test_a_failed_rung_long_ago_with_nothing_since_starts_a_new_incident() -> None:
    old = (step(Action.RESTART, NOW - 7200, Kind.RECURRED),)
    d = run(target=COMPOSE, steps=old, name="shop_api_1")
    assert d.action is Action.RESTART and "; rung 1 of 3" in d.explain()
    held = (step(Action.RESTART, NOW - 7200, Kind.RECURRED),
            step(Action.ALERT, NOW - 7100, Kind.PENDING))
    assert run(steps=held).suppressed_by is not None  # a hold never lapses
