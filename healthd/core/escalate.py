"""The escalation ladder as a stage of the decision pipeline (pure).

Owns: turning the decision table's fixing action into the rung ``core.ladder`` names for
this target, given the steps its incident took and the fix rates: the same action when
rung 1 applies, the next rung when a fix did not hold, a wait while a window runs, the
alert that hands the target to people, or a hold once it is theirs. It also says which
facts of a target the ladder needs (``target_of``) and what an incident is made of.
Must never: do I/O, read the clock or act. The rung it names then goes through every
other stage (pause, dependencies, silence, throttle, dry-run, approval) like any decision.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from healthd.core import fixrate, labels, ladder
from healthd.core.model import Action, ContainerState, Decision, Failure
from healthd.core.outcomeconfig import LadderSettings
from healthd.core.topology import Topology
from healthd.core.verdict import Kind, clock

# The table's actions a ladder may replace: those that change the target to fix it. An
# alert, a quarantine stop (label action=stop) or a hold stays as the table or label said.
LADDERED_ACTIONS = (Action.RESTART, Action.RECREATE)
HOLD_RULE = "ladder_hold"  # the rule suffix of the alert that hands a target to people
WAIT = "verifying"  # the guard of a decision that waits for its last rung's verdict
HELD = "ladder-hold"  # the guard of a decision on a target held for people


def target_of(c: ContainerState, topology: Topology | None) -> ladder.Target:
    """What the ladder must know of container ``c``: its fix-rate key (its service), and
    whether a recreate or a scale-up can apply (a Compose service to recreate it from;
    more replicas allowed by its bounds)."""
    service = topology.service_of(c.id) if topology is not None else None
    compose = service is not None and "/" in service and not service.startswith("swarm/")
    scalable = False
    if compose and topology is not None and service is not None:
        bounds = topology.bounds_by_service.get(service)
        scalable = (bounds is not None and bounds.max is not None
                    and len(topology.members(service)) < bounds.max)
    return ladder.Target(c.name, service if compose else None, recreatable=compose,
                         scalable=scalable)


def current(steps: Sequence[ladder.Step], now: float, quiet_s: float) -> list[ladder.Step]:
    """The steps of the incident under way at ``now``: ``ladder.live``'s, unless its last
    rung failed more than ``quiet_s`` ago with nothing done since. The target then got
    well by itself in between (a problem that stays is decided on within seconds), and a
    problem now is a new incident: it starts at rung 1 again. A hold never lapses."""
    live = ladder.live(steps)
    if not live:
        return live
    last = live[-1]
    if last.action is ladder.HOLD or not last.verdict.final:
        return live
    ended = last.verdict.at if last.verdict.at is not None else last.at
    return [] if now - ended > quiet_s else live


def climb(d: Decision, c: ContainerState, settings: LadderSettings | None,
          target: ladder.Target, steps: Sequence[ladder.Step],
          tallies: Mapping[fixrate.Key, fixrate.Tally], quiet_s: float = 600.0) -> Decision:
    """``d`` (the table's plan for ``c``) as the ladder has it: unchanged without a ladder
    for its classification or when the table chose no fixing action; else the rung to
    take now, a wait, the alert to people, or a hold.

    steps: this target's judged and pending actions for ``d.failure`` (any order, any age:
    ``current`` finds where the incident under way starts); quiet_s: see ``current``."""
    failure = d.failure
    if (settings is None or not settings.enabled or failure is None
            or d.action not in LADDERED_ACTIONS or d.suppressed_by is not None
            or labels.parse(c.labels).swarm_task):
        return d
    rungs = settings.ladder_for(failure)
    if rungs is None:
        return d
    live = current(steps, d.at, quiet_s)
    if live and live[-1].action is ladder.HOLD:
        since = clock(live[-1].at)
        return d.held(HELD, f"held for people since {since} after "
                      f"{'; '.join(ladder.said(s) for s in live[:-1]) or 'its rungs'}")
    choice = ladder.next_rung(rungs, target, failure, live, tallies, settings.skip_below,
                              settings.min_tries, settings.learn_window_s)
    tail = choice.explain.split(": ", 1)[-1]  # the chain, skips and "rung k of n"
    if choice.waits:
        return d.held(WAIT, tail)
    notes = (*d.notes, tail)
    incident = f"{c.name}@{int(live[0].at if live else d.at)}"
    if choice.holds:
        return dataclasses.replace(d, action=Action.ALERT, rule=f"{d.rule}.{HOLD_RULE}",
                                   notes=notes, incident=incident, rung=choice.rung)
    return dataclasses.replace(d, action=choice.action, notes=notes, incident=incident,
                               rung=choice.rung)


def is_hold(d: Decision) -> bool:
    """True for the alert that hands a target to people (the ladder's last rung)."""
    return d.action is Action.ALERT and d.rule.endswith(f".{HOLD_RULE}")


def failure_of_rule(rule: str) -> Failure | None:
    """The classification a ledger rule names (``unhealthy.critical.ladder_hold``)."""
    head = rule.split(".", 1)[0]
    try:
        return Failure(head)
    except ValueError:
        return None


def resets(kind: Kind) -> bool:
    """Whether a verdict of ``kind`` ends the incident (the ladder starts again)."""
    return kind in (Kind.FIXED, Kind.SUPERSEDED)
