"""Escalation ladders: what to try next when a fix did not hold (pure).

Owns: the ladders per classification and their documented defaults, which rungs apply to a
target, and ``next_rung``: given the rungs an incident has taken with their verdicts, the
rung to take now (or to hold the target for people, or to wait for a verdict), with one
line that names the chain (``recreate api-1: restart did not hold (unhealthy again 42 s
after the restart at 12:03:10); rung 2 of 3``) and every skipped rung with its reason.
Must never: do I/O, read the clock or act. The rung it names goes through the decision
table's guards like any decision; the ledger keeps the steps and their verdicts.

The rules:
- A ladder is an ordered tuple of actions; its last rung is always people
  (``alert-and-hold``: one notification with the whole chain, and the target held until it
  recovers by itself or a person resumes it). A ladder given without it gets it appended.
- Each rung is taken at most once per incident, in order: never more actions than rungs.
- ``recurred`` or ``not_fixed`` takes the next rung; ``pending`` waits (a window that runs
  is never answered with another action); ``fixed`` resets the ladder (the next problem
  starts at rung 1), and so does ``superseded``: someone else replaced the target, and what
  was tried on the old one says nothing about the new one.
- A rung is skipped when it does not apply to the target (nothing to recreate from, no
  replicas allowed, no previous spec to roll back to) or when its fix rate for this service
  and classification is too low (``core.fixrate``); the reasons are kept, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from healthd.core import fixrate
from healthd.core.model import Action, Failure
from healthd.core.verdict import Kind, Verdict, clock, problem

HOLD = Action.ALERT  # the last rung: alert once with the whole chain, and hold the target
HOLD_NAME = "alert-and-hold"
RUNGS = (Action.RESTART, Action.RECREATE, Action.SCALE_UP, Action.ROLLBACK, HOLD)
# "resource exhaustion" in the words: the classifications of a resource running out.
RESOURCE_EXHAUSTION = (Failure.OOM_KILLED, Failure.RESOURCE_PRESSURE,
                       Failure.PREDICTED_EXHAUSTION)
_RESTART_FIRST = (Action.RESTART, Action.RECREATE, HOLD)
DEFAULT_LADDERS: Mapping[Failure, tuple[Action, ...]] = {
    Failure.UNHEALTHY: _RESTART_FIRST,
    Failure.CRASH_LOOP: _RESTART_FIRST,  # the restart's back-off is the guards' (throttle)
    **{f: (Action.RESTART, Action.SCALE_UP, HOLD) for f in RESOURCE_EXHAUSTION},
    Failure.UPDATE_FAILED: (Action.ROLLBACK, HOLD),  # a Swarm service after an update
}
# Verdicts after which the ladder starts again at rung 1.
_RESETS = (Kind.FIXED, Kind.SUPERSEDED)


def rung_name(a: Action) -> str:
    """A rung as config.toml and the explanations spell it."""
    return HOLD_NAME if a is HOLD else a.value


@dataclass(frozen=True)
class Target:
    """What the ladder needs to know of the target.

    service: the fix-rate key ("project/service"); None: the target's own name.
    """

    name: str
    service: str | None = None
    recreatable: bool = False  # a Compose service (or a spec) to recreate it from
    scalable: bool = False  # more replicas are allowed
    rollbackable: bool = False  # a Swarm service with a previous spec

    def why_not(self, a: Action) -> str | None:
        """Why rung ``a`` does not apply to this target; None when it does."""
        if a is Action.RECREATE and not self.recreatable:
            return "no Compose service to recreate it from"
        if a is Action.SCALE_UP and not self.scalable:
            return "no replicas allowed"
        if a is Action.ROLLBACK and not self.rollbackable:
            return "not a Swarm service with a previous spec to roll back to"
        return None


@dataclass(frozen=True)
class Step:
    """A rung an incident took: the action, when (epoch seconds) and its verdict."""

    action: Action
    at: float
    verdict: Verdict


@dataclass(frozen=True)
class Choice:
    """What the ladder says now.

    action: the rung to take; ``HOLD`` (alert) to hold the target for people; NONE to wait
    for the last rung's verdict. rung: its 1-based place, of ``of`` rungs (0 while
    waiting). chain: what the incident tried so far, one line each; skipped: each rung
    passed over, with its reason.
    """

    action: Action
    rung: int
    of: int
    explain: str
    chain: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def holds(self) -> bool:
        """True when the ladder has reached people."""
        return self.action is HOLD

    @property
    def waits(self) -> bool:
        """True while the last rung's window runs."""
        return self.action is Action.NONE


def live(steps: Sequence[Step]) -> list[Step]:
    """The steps of the incident under way: those after the last one whose verdict reset
    the ladder (fixed, superseded), oldest first."""
    ordered = sorted(steps, key=lambda s: s.at)
    last_reset = max((i for i, s in enumerate(ordered) if s.verdict.kind in _RESETS),
                     default=-1)
    return ordered[last_reset + 1:]


def said(s: Step) -> str:
    """One step of the chain: 'restart did not hold (unhealthy again 42 s after ...)'."""
    name = rung_name(s.action)
    if s.action is HOLD:
        return f"{name} since {clock(s.at)}"
    if s.verdict.kind is Kind.RECURRED:
        return f"{name} did not hold ({s.verdict.evidence})"
    if s.verdict.kind is Kind.NOT_FIXED:
        return f"{name} did not fix it ({s.verdict.evidence})"
    return f"{name} {s.verdict.kind.value} ({s.verdict.evidence})"


def next_rung(
    ladder: Sequence[Action], target: Target, failure: Failure, steps: Sequence[Step],
    tallies: Mapping[fixrate.Key, fixrate.Tally], skip_below: float = fixrate.SKIP_BELOW,
    min_tries: int = fixrate.MIN_TRIES, window_s: float = fixrate.WINDOW_S,
) -> Choice:
    """The rung to take for ``failure`` on ``target`` after ``steps`` (any order, this
    target's and this classification's, any age: resets are found here).

    tallies: the fix-rate counts (``fixrate.tally``) over ``window_s`` seconds; a rung is
    skipped when its fix rate is below ``skip_below`` (0..1) over at least ``min_tries``.
    """
    rungs = tuple(ladder) if ladder and ladder[-1] is HOLD else (*ladder, HOLD)
    of = len(rungs)
    taken = live(steps)
    chain = tuple(said(s) for s in taken)
    if taken and taken[-1].verdict.kind is Kind.PENDING and taken[-1].action is not HOLD:
        last = taken[-1]
        wait = f"{rung_name(last.action)} pending ({last.verdict.evidence})"
        return Choice(Action.NONE, 0, of, f"wait {target.name}: {wait}", chain)
    done = {s.action for s in taken}
    past = max((rungs.index(s.action) for s in taken if s.action in rungs), default=-1)
    skipped: list[str] = []
    key = target.service or target.name
    for i, a in enumerate(rungs):
        if a in done:
            continue
        why = _skip(a, target, (key, failure, a), tallies, skip_below, min_tries, window_s)
        if why is None and i < past:  # passed over then, for a reason since gone
            why = f"{rung_name(a)} skipped earlier"
        if why is not None:
            skipped.append(why)
            continue
        return Choice(a, i + 1, of, _explain(a, target, failure, chain, skipped, i + 1, of),
                      chain, tuple(skipped))
    # Every rung is taken: the last was people, and the target stays held.
    return Choice(HOLD, of, of, _explain(HOLD, target, failure, chain, skipped, of, of),
                  chain, tuple(skipped))


def _skip(a: Action, target: Target, key: fixrate.Key,
          tallies: Mapping[fixrate.Key, fixrate.Tally], skip_below: float, min_tries: int,
          window_s: float) -> str | None:
    """Why rung ``a`` is passed over now; never people's rung."""
    if a is HOLD:
        return None
    why = target.why_not(a)
    if why is not None:
        return f"{rung_name(a)} skipped: {why}"
    return fixrate.skip_reason(tallies, key, skip_below, min_tries, window_s)


def _explain(a: Action, target: Target, failure: Failure, chain: tuple[str, ...],
             skipped: list[str], rung: int, of: int) -> str:
    said_ = list(chain) or [problem(failure)]
    return f"{rung_name(a)} {target.name}: {'; '.join([*said_, *skipped])}; rung {rung} of {of}"
