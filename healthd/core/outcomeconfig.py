"""[verify] and [ladder]: how long a fix must hold, what to try next, when to skip a rung.

Owns: the settings of verdicts (``core.verdict``), ladders (``core.ladder``) and fix rates
(``core.fixrate``), their defaults and their checks: ``parse`` turns the two TOML tables
into frozen settings plus a list of problems, each naming its key and what is allowed.
Kept apart from ``core.config`` (which is to register the sections) as ``core.control``'s
``[approval]`` is. Must never: read files or the environment, or act on anything.

config.toml shape::

    [verify]
    default = 600        # seconds a fix must hold, for every kind not named below
    restart = 600        # per action kind: restart, recreate, scale_up, scale_down, rollback,
                         # replace_task, drain, activate
    max_gap_s = 60       # a silence longer than this is not counted as "stayed away"
    settle_s = 30        # the problem still seen this long after the action: not_fixed

    [ladder]
    enabled = true       # false: no ladder; the decision table's action every time
    unhealthy = ["restart", "recreate", "alert-and-hold"]
    resource_exhaustion = ["restart", "scale_up", "alert-and-hold"]  # oom_killed,
                         # resource_pressure and predicted_exhaustion, unless named alone
    skip_below = 0.2     # skip a rung that fixed fewer than this fraction ...
    min_tries = 5        # ... of at least this many tries ...
    learn_window_s = 604800  # ... in this many recent seconds
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from healthd.core import fixrate, ladder, verdict
from healthd.core.model import Action, Failure

WINDOW_S = 600.0  # the default verification window, for every action kind
# Action kinds whose outcome is judged: those that change the target to fix it.
VERIFIED = (Action.RESTART, Action.RECREATE, Action.SCALE_UP, Action.SCALE_DOWN,
            Action.ROLLBACK, Action.REPLACE_TASK, Action.DRAIN, Action.ACTIVATE)
VERIFY_KEYS = ("default", *(a.value for a in VERIFIED), "max_gap_s", "settle_s")
# Classifications that can have a ladder: a target's own problems (not its upstream's).
LADDERED = tuple(f for f in Failure if f not in verdict.NOT_ITS_OWN)
ALIAS = "resource_exhaustion"  # sets the ladder of every ladder.RESOURCE_EXHAUSTION class
LADDER_KEYS = ("enabled", "skip_below", "min_tries", "learn_window_s", ALIAS,
               *(f.value for f in LADDERED))
RUNG_NAMES = tuple(ladder.rung_name(a) for a in ladder.RUNGS)
_MAX_S = 1e9  # about 31 years: anything longer is a typo


@dataclass(frozen=True)
class VerifySettings:
    """[verify]: seconds a fix must hold per action kind, and how the timeline is read."""

    default_s: float = WINDOW_S
    windows: tuple[tuple[Action, float], ...] = ()  # overrides of ``default_s``
    max_gap_s: float = verdict.MAX_GAP_S
    settle_s: float = verdict.SETTLE_S

    def window_for(self, action: Action) -> float:
        """The verification window (seconds) of an action kind."""
        for a, s in self.windows:
            if a is action:
                return s
        return self.default_s


@dataclass(frozen=True)
class LadderSettings:
    """[ladder]: the ladder per classification, and when a rung's fix rate skips it."""

    ladders: tuple[tuple[Failure, tuple[Action, ...]], ...] = tuple(
        ladder.DEFAULT_LADDERS.items())
    skip_below: float = fixrate.SKIP_BELOW
    min_tries: int = fixrate.MIN_TRIES
    learn_window_s: float = fixrate.WINDOW_S
    enabled: bool = True

    def ladder_for(self, failure: Failure) -> tuple[Action, ...] | None:
        """The ladder of a classification; None: it has none (the decision table's single
        action applies, as before ladders)."""
        for f, rungs in self.ladders:
            if f is failure:
                return rungs
        return None


@dataclass(frozen=True)
class OutcomeSettings:
    """Both sections, as ``core.config`` is to hold them."""

    verify: VerifySettings = field(default_factory=VerifySettings)
    ladder: LadderSettings = field(default_factory=LadderSettings)


def parse(doc: Mapping[str, Any]) -> tuple[OutcomeSettings, list[str]]:
    """The ``[verify]`` and ``[ladder]`` tables of a parsed config.toml (either may be
    absent: defaults), with every problem naming its key."""
    v, vp = parse_verify(doc.get("verify", {}))
    lad, lp = parse_ladder(doc.get("ladder", {}))
    return OutcomeSettings(v, lad), vp + lp


def _seconds(v: Any, zero_ok: bool = False) -> float | None:
    """``v`` as seconds when it is a number in range (> 0, or >= 0 with ``zero_ok``)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    above = v >= 0 if zero_ok else v > 0  # False for NaN too
    if not (above and v < _MAX_S):
        return None
    return float(v)


def parse_verify(raw: Any) -> tuple[VerifySettings, list[str]]:
    """The ``[verify]`` table into settings, with every problem naming its key."""
    if not isinstance(raw, Mapping):
        return VerifySettings(), [f"verify: expected a table, got {type(raw).__name__}"]
    problems: list[str] = []
    s = VerifySettings()
    default, gap, settle = s.default_s, s.max_gap_s, s.settle_s
    windows: list[tuple[Action, float]] = []
    for k, v in raw.items():
        key = f"verify.{k}"
        zero_ok = k == "settle_s"
        seconds = _seconds(v, zero_ok)
        if k not in VERIFY_KEYS:
            problems.append(f"{key}: unknown key; allowed: {', '.join(VERIFY_KEYS)}")
        elif seconds is None:
            problems.append(f"{key}: expected seconds {'>=' if zero_ok else '>'} 0, "
                            f"got {v!r}")
        elif k == "default":
            default = seconds
        elif k == "max_gap_s":
            gap = seconds
        elif k == "settle_s":
            settle = seconds
        else:
            windows.append((Action(k), seconds))
    return VerifySettings(default, tuple(windows), gap, settle), problems


def parse_ladder(raw: Any) -> tuple[LadderSettings, list[str]]:
    """The ``[ladder]`` table into settings, with every problem naming its key. A
    classification named alone wins over ``resource_exhaustion``, in any order."""
    if not isinstance(raw, Mapping):
        return LadderSettings(), [f"ladder: expected a table, got {type(raw).__name__}"]
    problems: list[str] = []
    s = LadderSettings()
    below, tries, window, enabled = s.skip_below, s.min_tries, s.learn_window_s, s.enabled
    ladders = dict(ladder.DEFAULT_LADDERS)
    alone: dict[Failure, tuple[Action, ...]] = {}
    for k, v in raw.items():
        key = f"ladder.{k}"
        if k not in LADDER_KEYS:
            problems.append(f"{key}: unknown key; allowed: {', '.join(LADDER_KEYS)}")
        elif k == "enabled":
            if not isinstance(v, bool):
                problems.append(f"{key}: expected true or false, got {v!r}")
            else:
                enabled = v
        elif k == "skip_below":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                problems.append(f"{key}: expected a fraction 0..1 (0 never skips), got {v!r}")
            else:
                below = float(v)
        elif k == "min_tries":
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < 2**31:
                problems.append(f"{key}: expected an integer >= 1, got {v!r}")
            else:
                tries = v
        elif k == "learn_window_s":
            seconds = _seconds(v)
            if seconds is None:
                problems.append(f"{key}: expected seconds > 0, got {v!r}")
            else:
                window = seconds
        else:
            rungs, problem = parse_rungs(key, v)
            if problem is not None:
                problems.append(problem)
            elif k == ALIAS:
                ladders.update(dict.fromkeys(ladder.RESOURCE_EXHAUSTION, rungs))
            else:
                alone[Failure(k)] = rungs
    ladders.update(alone)
    return LadderSettings(tuple(ladders.items()), below, tries, window, enabled), problems


def parse_rungs(key: str, v: Any) -> tuple[tuple[Action, ...], str | None]:
    """A ladder's list of rung names into actions, or the problem naming ``key``."""
    example = '["restart", "recreate", "alert-and-hold"]'
    if not isinstance(v, list) or not all(isinstance(r, str) for r in v):
        return (), f"{key}: expected a list of rungs such as {example}, got {v!r}"
    unknown = [r for r in v if r not in RUNG_NAMES]
    if unknown:
        return (), (f"{key}: {', '.join(map(repr, unknown))} not a rung; allowed: "
                    f"{', '.join(RUNG_NAMES)}")
    twice = sorted({r for r in v if v.count(r) > 1})
    if twice:
        return (), (f"{key}: {', '.join(twice)} more than once; each rung is taken at most "
                    "once per incident")
    if not v or v[-1] != ladder.HOLD_NAME:
        return (), (f"{key}: the last rung must be {ladder.HOLD_NAME} (people), and only "
                    f"the last; got {v!r}")
    by_name = {ladder.rung_name(a): a for a in ladder.RUNGS}
    return tuple(by_name[r] for r in v), None
