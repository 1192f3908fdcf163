"""Did the fix hold? Watching healthd's own actions for their verification window.

Owns: the windows open now (one per verified action), the observations of each target
the main loop hands in, and turning ``core.verdict.judge``'s answer into a record
(``store.verdicts``), a log line and ``healthd_action_verdicts_total``. A window open
when healthd stopped is resumed from the state file at start: the time healthd was not
looking is a gap ``judge`` leaves out of the window, never time the problem stayed away.
Must never: decide the verdict (``core.verdict`` does) or act on one. Escalation to the
next rung (``core.ladder``) is not wired yet: a failed verdict is recorded and logged.

Verified for now: restarts, the action every classification's first rung takes. A
recreate, a scale or a Swarm action changes or multiplies its target (a new container id,
a service), which this module does not follow yet; they get no window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from healthd.core import labels
from healthd.core.model import Action, ContainerState, Decision, Failure
from healthd.core.outcomeconfig import VerifySettings
from healthd.core.verdict import Attempt, Change, Kind, Observation, Verdict, judge
from healthd.serve.metrics import Metrics
from healthd.store.verdicts import Record, VerdictStore

log = logging.getLogger("healthd")

VERIFIED = frozenset({Action.RESTART})
# Observations kept per window at most: a sweep every few seconds over the longest window
# fits; a flood of events on one container thins out instead of growing without bound.
MAX_OBSERVATIONS = 4000


@dataclass
class Window:
    """One action being watched."""

    record: Record
    attempt: Attempt
    seen: list[Observation] = field(default_factory=list)

    def add(self, o: Observation) -> None:
        if len(self.seen) >= MAX_OBSERVATIONS:
            del self.seen[1::2]  # keep every other one: the timeline's shape survives
        self.seen.append(o)


class Verifier:
    """The main loop's (one thread's) book of open verification windows."""

    def __init__(self, settings: VerifySettings, store: VerdictStore, metrics: Metrics,
                 clock: Callable[[], float]) -> None:
        self.settings, self.store, self.metrics, self.clock = settings, store, metrics, clock
        self.windows: dict[str, list[Window]] = {}  # by target container id

    def resume(self) -> int:
        """Open again the windows the state file has as pending; returns how many."""
        n = 0
        for r in self.store.open_windows():
            try:
                a = Attempt(Action(r.action), r.container, Failure(r.failure), r.acted_at,
                            r.window_s)
            except ValueError:
                log.warning("verdicts: a pending window of %s names an unknown action or "
                            "failure (%s, %s); left as it is", r.container, r.action,
                            r.failure)
                continue
            self.windows.setdefault(r.container_id, []).append(Window(r, a))
            n += 1
        if n:
            log.info("verdicts: %d verification window(s) open when healthd stopped are "
                     "watched again (the time it was not looking is not counted)", n)
        return n

    def opened(self, d: Decision, state: ContainerState | None) -> None:
        """``d`` was carried out just now: watch its target for its window."""
        if d.action not in VERIFIED or d.failure is None:
            return
        own = labels.parse(state.labels).verify_window_s if state is not None else None
        window = own or self.settings.window_for(d.action)
        now = self.clock()
        r = Record(d.target_id, d.action.value, d.at, d.target_name, d.failure.value, now,
                   window, evidence=f"watching for {window:.0f} s")
        self.store.put(r)
        w = Window(r, Attempt(d.action, d.target_name, d.failure, now, window))
        self.windows.setdefault(d.target_id, []).append(w)

    def observe(self, c: ContainerState, failure: Failure | None, now: float) -> None:
        """What the main loop saw of ``c`` just now."""
        for w in self.windows.get(c.id, ()):
            w.add(Observation(now, c.running, c.health, failure))

    def gone(self, cid: str, now: float) -> None:
        """``cid`` was removed (by someone else: healthd's restarts keep the container)."""
        for w in self.windows.get(cid, ()):
            w.add(Observation(now, change=Change.REMOVED))

    def tick(self) -> None:
        """Judge every open window; record and drop those with a verdict."""
        now = self.clock()
        s = self.settings
        for cid in list(self.windows):
            left = []
            for w in self.windows[cid]:
                v = judge(w.attempt, w.seen, now, s.max_gap_s, s.settle_s)
                if v.final:
                    self._record(w, v)
                else:
                    left.append(w)
            if left:
                self.windows[cid] = left
            else:
                del self.windows[cid]
        self.store.flush()

    def _record(self, w: Window, v: Verdict) -> None:
        r = w.record
        done = Record(r.container_id, r.action, r.decided_at, r.container, r.failure,
                      r.acted_at, r.window_s, v.kind.value, v.evidence, v.at, v.after_s)
        self.store.put(done)
        self.metrics.verdicts.labels(r.action, r.failure, v.kind.value).inc()
        line = f"verdict on {r.action} {r.container}: {v.kind.value}: {v.evidence}"
        if v.kind in (Kind.RECURRED, Kind.NOT_FIXED):
            log.warning("%s", line)
        else:
            log.info("%s", line)

    def open_rows(self) -> list[dict[str, object]]:
        """The windows still running, for ``/status`` (called from HTTP threads: it reads
        copies, never the lists the main loop appends to)."""
        now = self.clock()
        out: list[dict[str, object]] = []
        for ws in list(self.windows.values()):
            for w in list(ws):
                r, v = w.record, judge(w.attempt, list(w.seen), now, self.settings.max_gap_s,
                                       self.settings.settle_s)
                out.append({"container": r.container, "action": r.action,
                            "failure": r.failure, "acted_at": r.acted_at,
                            "window_s": r.window_s, "watching": v.evidence})
        return out
