"""Incidents: the actions taken for one problem on one target, as one story (pure).

Owns: grouping the judged actions (verdicts, the ladder's holds included) of a target and
classification into incidents: an id, when it opened (its first action), its rungs with
their verdicts, and how and when it closed (a fix that held, someone else's change, or a
person taking it back); and the fix rates per (service, classification, action) as rows a
person reads (``healthd status --outcomes``).
Must never: do I/O or read the clock: the verdicts and ``now`` are values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from healthd.core import fixrate
from healthd.core.verdict import clock

HOLD_ACTION = "alert"  # the ladder's last rung, as the verdicts table names it
_ENDS = ("fixed", "superseded")  # verdicts after which the ladder starts again


@dataclass(frozen=True)
class Taken:
    """One judged (or pending) action on a target, as the verdicts table keeps it."""

    target: str
    failure: str
    action: str
    at: float  # when it was decided
    kind: str  # pending, fixed, recurred, not_fixed, superseded
    evidence: str = ""
    judged_at: float | None = None


@dataclass(frozen=True)
class Incident:
    """One problem on one target and what was done about it.

    state: ``open`` (a window runs, or the next rung is due), ``held`` (with people),
    ``fixed`` or ``superseded`` (closed), ``ended`` (closed: its last rung failed and
    nothing was needed for a quiet while: it got well by itself)."""

    id: str
    target: str
    failure: str
    opened: float
    rungs: tuple[Taken, ...]
    state: str
    closed: float | None = None

    @property
    def is_open(self) -> bool:
        return self.closed is None

    def chain(self) -> str:
        """Its rungs in one line: 'restart recurred → recreate recurred → held'."""
        parts = []
        for r in self.rungs:
            name = "alert-and-hold" if r.action == HOLD_ACTION else r.action
            kind = "held" if r.action == HOLD_ACTION and r.kind == "pending" else r.kind
            parts.append(f"{name} {kind}")
        return " → ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """The /status and ``--json`` shape."""
        return {"id": self.id, "target": self.target, "failure": self.failure,
                "opened": self.opened, "closed": self.closed, "state": self.state,
                "chain": self.chain(),
                "rungs": [{"action": r.action, "at": r.at, "verdict": r.kind,
                           "evidence": r.evidence} for r in self.rungs]}


def incidents(taken: Iterable[Taken], now: float | None = None,
              quiet_s: float = 600.0) -> list[Incident]:
    """The incidents these actions make, oldest first: per (target, classification), a new
    one starts after a verdict that ended the last (``fixed``, ``superseded``), or after a
    failed rung followed by nothing for ``quiet_s`` (as ``core.escalate.current``)."""
    by_key: dict[tuple[str, str], list[Taken]] = {}
    for t in taken:
        by_key.setdefault((t.target, t.failure), []).append(t)
    out: list[Incident] = []
    for (target, failure), steps in by_key.items():
        current: list[Taken] = []
        for t in sorted(steps, key=lambda s: s.at):
            if current and _lapsed(current[-1], t.at, quiet_s):
                out.append(_made(target, failure, current, "ended", _end(current[-1])))
                current = []
            current.append(t)
            if t.kind in _ENDS:
                out.append(_made(target, failure, current, t.kind, t.judged_at or t.at))
                current = []
        if current:
            last = current[-1]
            if now is not None and _lapsed(last, now, quiet_s):
                out.append(_made(target, failure, current, "ended", _end(last)))
                continue
            state = "held" if last.action == HOLD_ACTION and last.kind == "pending" else "open"
            out.append(_made(target, failure, current, state, None))
    return sorted(out, key=lambda i: i.opened)


def _end(t: Taken) -> float:
    return t.judged_at if t.judged_at is not None else t.at


def _lapsed(last: Taken, at: float, quiet_s: float) -> bool:
    """A failed rung with nothing after it for ``quiet_s`` by ``at`` (never a hold)."""
    return (last.kind not in ("pending", *_ENDS) and last.action != HOLD_ACTION
            and at - _end(last) > quiet_s)


def _made(target: str, failure: str, rungs: list[Taken], state: str,
          closed: float | None) -> Incident:
    opened = rungs[0].at
    return Incident(f"{target}@{int(opened)}", target, failure, opened, tuple(rungs), state,
                    closed)


def line(i: Incident) -> str:
    """One line for ``healthd status`` and ``history --incidents``."""
    end = (f"closed {clock(i.closed)} ({i.state})" if i.closed is not None else i.state)
    return (f"{i.id}: {i.failure.replace('_', ' ')} on {i.target}, opened "
            f"{clock(i.opened)}, {end}: {i.chain()}")


def outcome_rows(tallies: Mapping[fixrate.Key, fixrate.Tally]) -> list[dict[str, object]]:
    """Fix rates as rows (service, classification, action, the counts, the rate), the
    lowest rate first: what ``healthd status --outcomes`` prints."""
    rows: list[dict[str, object]] = []
    for (service, failure, action), t in tallies.items():
        rows.append({"service": service, "classification": failure.value,
                     "action": action.value, **t.as_dict(), "tries": t.tries,
                     "fix_rate": t.rate})
    return sorted(rows, key=lambda r: (r["fix_rate"] if isinstance(r["fix_rate"], float)
                                       else 2.0, str(r["service"])))
