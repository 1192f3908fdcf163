"""Did the fix hold? The verdict of one action along the observations that followed it (pure).

Owns: the verdict kinds (``fixed``, ``recurred``, ``not_fixed``, ``superseded``, ``pending``),
the values an action and an observation of its target are given as, and ``judge``, which
walks the observations after an action and says which verdict they earn, with one line of
evidence a person can check (``unhealthy again 42 s after the restart at 12:03:10``).
Must never: do I/O, read the clock or keep state. ``now`` and every observation are
arguments; the shell records them, the ledger keeps the verdict.

How the timeline is read:

- Only observations after the action (``at < t <= now``) count: one taken at the action's
  own time may still show the state it answered.
- A recurrence gives its verdict at once: the first observation that shows the target's
  own problem again, after one that showed it well, makes it ``recurred``, with the seconds
  from the action. Any failure of the target's own counts, not only the one acted on: a
  restart for unhealthy after which the container crashes did not make it well (the
  evidence names both). Failures that are not the target's own doing (``NOT_ITS_OWN``:
  its upstream failing, drift, idle replicas, a node's state) neither recur nor clear.
- ``not_fixed``: the problem never went away. It is given when the problem is still seen
  ``settle_s`` after the action and the target has not been seen well in between (the
  action has had time to take effect, so waiting out the window would only delay the next
  rung), or when the window ends without the target ever seen well.
- ``fixed`` only when the target was seen well inside the window and its problem was not
  seen again until the window closed: the window closes at the first observation whose observed time
  reaches ``window_s``, and that observation is judged as part of it (a problem seen
  there is a recurrence at the window's edge, not a pass).
- ``superseded``: someone else removed, recreated or updated the target inside the window;
  what the action did can no longer be told.
- A gap in the observations longer than ``max_gap_s`` is not counted as time the problem
  stayed away: it is left out of the window, which therefore ends that much later (the
  verdict waits for as much observed time as the window asks for). We chose this over
  "restart the window after a gap" (it would throw away what was watched before) and over
  "unknown" (a verdict healthd could never give after its own restart). The default bound,
  60 s, is the daemon's liveness bound: its loop turns at least once a second and samples
  every few seconds, so a longer silence means healthd (or its engine connection) was not
  looking, e.g. it was SIGKILLed and started again. Every gap is named in the evidence.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from healthd.core.model import Action, Failure

MAX_GAP_S = 60.0  # a silence longer than this is not counted as "stayed away" (see above)
SETTLE_S = 30.0  # the problem still seen this long after the action, never gone: not_fixed


class Kind(str, enum.Enum):
    """A verdict on one action, as the ledger records it."""

    FIXED = "fixed"  # the problem stayed away for the whole window
    RECURRED = "recurred"  # it went away and came back inside the window
    NOT_FIXED = "not_fixed"  # it never went away
    SUPERSEDED = "superseded"  # someone else removed, recreated or updated the target
    PENDING = "pending"  # the window is still running


# Verdicts that say the action did not hold: the ladder takes its next rung.
FAILED = frozenset({Kind.RECURRED, Kind.NOT_FIXED})


class Change(str, enum.Enum):
    """Something done to the target by someone other than this action."""

    REMOVED = "removed"
    RECREATED = "recreated"
    UPDATED = "updated"
    STOPPED = "stopped"  # through the engine API (a person, a redeploy), not by a crash


# Classifications that are not the target's own problem: its upstream's incident, a
# config or scaling matter, a node's state. They neither bring the problem back nor say
# the target is well.
NOT_ITS_OWN = frozenset({Failure.DEPENDENCY_FAILURE, Failure.DEPENDENCY_RESTARTED,
                         Failure.CONFIG_DRIFT, Failure.IDLE_REPLICAS, Failure.NODE_EXHAUSTED,
                         Failure.NODE_RECOVERED})


@dataclass(frozen=True)
class Attempt:
    """One action to be judged.

    target: the container's name (it survives a recreate) or a service key; window_s:
    seconds the problem must stay away (> 0), from ``at`` (epoch seconds).
    """

    action: Action
    target: str
    failure: Failure  # the classification the action answered
    at: float
    window_s: float


@dataclass(frozen=True)
class Observation:
    """The target as seen at ``t`` (epoch seconds).

    running: its process is up; health: the engine's "starting", "healthy", "unhealthy",
    or None without a healthcheck; failure: what the classifier said at ``t`` (None when
    nothing); change: set when this observation is someone else's change of the target
    (then the other fields are not read).
    """

    t: float
    running: bool = True
    health: str | None = None
    failure: Failure | None = None
    change: Change | None = None

    @property
    def well(self) -> bool:
        """Running, classified as nothing, and not unhealthy or still starting."""
        return (self.running and self.failure is None
                and self.health not in ("unhealthy", "starting"))


@dataclass(frozen=True)
class Verdict:
    """What the observations say about one action.

    at: when it was given (the deciding observation's time; None while pending);
    after_s: for ``recurred``, seconds from the action to the observation that saw the
    problem again; unobserved_s: seconds of gaps longer than ``max_gap_s`` left out.
    """

    kind: Kind
    evidence: str
    at: float | None = None
    after_s: float | None = None
    unobserved_s: float = 0.0

    @property
    def final(self) -> bool:
        """True once the verdict can no longer change."""
        return self.kind is not Kind.PENDING


def clock(t: float) -> str:
    """An epoch time as '12:03:10' (UTC), for one-line evidence."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S")


def problem(f: Failure) -> str:
    """A failure as words: 'crash loop', 'oom killed'."""
    return f.value.replace("_", " ")


def judge(a: Attempt, seen: Sequence[Observation], now: float,
          max_gap_s: float = MAX_GAP_S, settle_s: float = SETTLE_S) -> Verdict:
    """The verdict on ``a`` from the observations of its target (any order) up to ``now``.

    max_gap_s: a silence longer than this (seconds) is left out of the window; settle_s:
    seconds after which a problem never seen gone is ``not_fixed``. See the module's
    docstring for how the timeline is read.
    """
    after = f"after the {a.action.value} at {clock(a.at)}"
    prev, covered, unobserved = a.at, 0.0, 0.0
    well_since: float | None = None
    for o in sorted((o for o in seen if a.at < o.t <= now), key=lambda o: o.t):
        step = o.t - prev
        if step > max_gap_s:
            unobserved += step
        else:
            covered += step
        prev = o.t
        v = _step(a, o, after, well_since, covered >= a.window_s, settle_s)
        if v is not None:
            return Verdict(v[0], v[1] + _gaps(unobserved), o.t,
                           o.t - a.at if v[0] is Kind.RECURRED else None, unobserved)
        if o.well and well_since is None:
            well_since = o.t
    return _pending(a, after, covered, unobserved, well_since, now - prev, max_gap_s)


def _step(a: Attempt, o: Observation, after: str, well_since: float | None,
          closes: bool, settle_s: float) -> tuple[Kind, str] | None:
    """The verdict one observation gives, or None when the watch goes on. ``closes``: its
    observed time reaches the window."""
    since = o.t - a.at
    if o.change is not None:
        return Kind.SUPERSEDED, f"{o.change.value} by someone else {since:.0f} s {after}"
    own = o.failure is not None and o.failure not in NOT_ITS_OWN
    if o.failure is not None and own:
        if well_since is not None:
            return Kind.RECURRED, f"{_again(o.failure, a.failure)} {since:.0f} s {after}"
        if since >= settle_s:
            return Kind.NOT_FIXED, (f"still {problem(o.failure)} {since:.0f} s {after}, "
                                    "never seen well")
    if not closes:
        return None
    if well_since is None and not o.well:
        return Kind.NOT_FIXED, (f"{problem(a.failure)} never went away in "
                                f"{a.window_s:.0f} s {after}")
    return Kind.FIXED, f"{problem(a.failure)} stayed away for {a.window_s:.0f} s {after}"


def _again(seen: Failure, answered: Failure) -> str:
    if seen is answered:
        return f"{problem(seen)} again"
    return f"{problem(seen)} (it was {problem(answered)})"


def _gaps(unobserved: float) -> str:
    return f" ({unobserved:.0f} s unobserved, not counted)" if unobserved else ""


def _pending(a: Attempt, after: str, covered: float, unobserved: float,
             well_since: float | None, silent: float, max_gap_s: float) -> Verdict:
    well = f"well since {clock(well_since)}" if well_since is not None else "not seen well yet"
    line = f"watching: {covered:.0f} of {a.window_s:.0f} s seen {after}, {well}"
    if silent > max_gap_s:
        line += f"; nothing seen for {silent:.0f} s"
    return Verdict(Kind.PENDING, line + _gaps(unobserved), None, None, unobserved)
