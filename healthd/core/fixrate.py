"""How often each action fixes each kind of failure, counted from verdicts (pure).

Owns: the counts of each verdict per (service, classification, action) over a recent
window, the fix rate they give, and the rule that skips a ladder's rung whose fix rate is
below a threshold over enough tries, with the counts as the reason a person can check
(``restart skipped: fixed 0 of 6 memory exhaustions of api in 7 days``).
Must never: do I/O, read the clock or guess: ``now`` and the verdicts are values (the
ledger keeps them); nothing is weighted, smoothed or extrapolated, only counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from healthd.core.model import Action, Failure
from healthd.core.verdict import Kind

SKIP_BELOW = 0.2  # a rung that fixed fewer than 20 % ...
MIN_TRIES = 5  # ... of at least 5 recent tries is skipped
WINDOW_S = 7 * 86400.0  # "recent": verdicts of the last 7 days

# (service, classification, action); a container outside any service counts by its name.
Key = tuple[str, Failure, Action]


@dataclass(frozen=True)
class Tried:
    """One judged action, as the ledger keeps it: ``at`` is when its verdict was given
    (epoch seconds)."""

    service: str
    failure: Failure
    action: Action
    kind: Kind
    at: float


@dataclass(frozen=True)
class Tally:
    """The counts of each verdict for one key."""

    fixed: int = 0
    recurred: int = 0
    not_fixed: int = 0
    superseded: int = 0
    pending: int = 0

    @property
    def tries(self) -> int:
        """Verdicts that say whether the action worked: someone else's change (superseded)
        and a window still running (pending) say nothing about it."""
        return self.fixed + self.recurred + self.not_fixed

    @property
    def rate(self) -> float | None:
        """Fixed over tries (0..1); None without a try."""
        return self.fixed / self.tries if self.tries else None

    def add(self, kind: Kind) -> Tally:
        """This tally with one more verdict of ``kind``."""
        counts = self.as_dict()
        counts[kind.value] += 1
        return Tally(**counts)

    def as_dict(self) -> dict[str, int]:
        """Counts by verdict name, every verdict present (the /metrics and --outcomes shape)."""
        return {k.value: getattr(self, k.value) for k in Kind}


def tally(tried: Iterable[Tried], now: float, window_s: float = WINDOW_S) -> dict[Key, Tally]:
    """Counts per (service, classification, action) of the verdicts given in the
    ``window_s`` seconds up to ``now`` (``now - window_s < at <= now``)."""
    out: dict[Key, Tally] = {}
    for r in tried:
        if now - window_s < r.at <= now:
            key = (r.service, r.failure, r.action)
            out[key] = out.get(key, Tally()).add(r.kind)
    return out


def skip_reason(tallies: Mapping[Key, Tally], key: Key, skip_below: float = SKIP_BELOW,
                min_tries: int = MIN_TRIES, window_s: float = WINDOW_S) -> str | None:
    """Why the rung ``key[2]`` is skipped for this service and classification, or None
    when it is not: its fix rate is below ``skip_below`` (0..1) over at least ``min_tries``
    tries. ``window_s`` only words the reason: the tallies were counted over it."""
    t = tallies.get(key, Tally())
    rate = t.rate
    if t.tries < min_tries or rate is None or rate >= skip_below:
        return None
    service, failure, action = key
    return (f"{action.value} skipped: fixed {t.fixed} of {t.tries} "
            f"{episodes(failure)} of {service} in {span(window_s)}")


# How a classification reads in a count ("fixed 0 of 6 crash loops").
_PLURAL = {Failure.UNHEALTHY: "unhealthy episodes", Failure.CRASHED: "crashes",
           Failure.CRASH_LOOP: "crash loops", Failure.OOM_KILLED: "memory exhaustions",
           Failure.PREDICTED_EXHAUSTION: "predicted exhaustions",
           Failure.RESOURCE_PRESSURE: "resource pressure episodes",
           Failure.UPDATE_FAILED: "failed updates"}


def episodes(f: Failure) -> str:
    """A classification as a plural count noun: 'crash loops', 'memory exhaustions'."""
    return _PLURAL.get(f, f"{f.value.replace('_', ' ')} episodes")


def span(seconds: float) -> str:
    """A window as words: '7 days', '1 day', '12 h', '90 min', '45 s'."""
    if seconds >= 86400 and seconds % 86400 == 0:
        n = int(seconds // 86400)
        return f"{n} day" if n == 1 else f"{n} days"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:.0f} s"
