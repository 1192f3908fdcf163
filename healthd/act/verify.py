"""Did the fix hold? Watching healthd's own actions for their verification window.

Owns: the windows open now (one per verified action), the observations of each target
the main loop hands in, and turning ``core.verdict.judge``'s answer into a record
(``store.verdicts``), a log line and ``healthd_action_verdicts_total``. A window open
when healthd stopped is resumed from the state file at start: the time healthd was not
looking is a gap ``judge`` leaves out of the window, never time the problem stayed away.
It also hands the decision pipeline each target's steps (its actions with their
verdicts, for ``core.ladder``) and the fix-rate counts, and keeps the ladder's holds: the
alert that handed a target to people is a step too, ``pending`` until the target recovers
by itself (``fixed``) or a person resumes it (``superseded``).
Must never: decide the verdict (``core.verdict`` does) or the next rung (``core.ladder``).

Verified: restarts, recreates (a recreate's window watches the new container), the
ladder's scale-ups (a replica more for a container whose resources ran out: its window
watches that container), the scaler's Compose steps (the service: still asking for more
replicas is its pressure not relieved; the Swarm scaler's the same, from its windows:
``cluster.Cluster.asking_more``), Swarm rollbacks and task replacements (the service, as
each listing shows it and its tasks here fare: ``cluster.Cluster.service_states``), Swarm
node drains and activations (the node: its host exhausted again or still is the problem,
as its healthd reports it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from healthd.core import fixrate, incident, labels, ladder
from healthd.core.model import Action, ContainerState, Decision, Failure
from healthd.core.outcomeconfig import LadderSettings, VerifySettings
from healthd.core.verdict import Attempt, Change, Kind, Observation, Verdict, judge
from healthd.serve.metrics import Metrics
from healthd.store.verdicts import Record, VerdictStore

log = logging.getLogger("healthd")

VERIFIED = frozenset({Action.RESTART, Action.RECREATE, Action.ROLLBACK, Action.REPLACE_TASK,
                      Action.DRAIN, Action.ACTIVATE})
# Actions whose window watches a Swarm node (by id), as its healthd reports its host.
ON_NODE = (Action.DRAIN.value, Action.ACTIVATE.value)
SCALED = (Action.SCALE_UP.value, Action.SCALE_DOWN.value)
# Actions whose window watches a Swarm service (as listed), not one container.
ON_SERVICE = (Action.ROLLBACK.value, Action.REPLACE_TASK.value)
_TALLY_EVERY_S = 60.0  # fix-rate counts are read again at least this often
_PRUNE_EVERY_S = 3600.0  # old verdicts are forgotten at most this often
_ACTING_S = 300.0  # longer than any action takes (a stop timeout, a pull-free recreate)
# Observations kept per window at most: a sweep every few seconds over the longest window
# fits; a flood of events on one container thins out instead of growing without bound.
MAX_OBSERVATIONS = 4000


@dataclass
class Window:
    """One action being watched."""

    record: Record
    attempt: Attempt
    seen: list[Observation] = field(default_factory=list)
    rung: int = 0  # the ladder's rung it was (0: none, or resumed from the state file)

    def add(self, o: Observation) -> None:
        if len(self.seen) >= MAX_OBSERVATIONS:
            del self.seen[1::2]  # keep every other one: the timeline's shape survives
        self.seen.append(o)


class Verifier:
    """The main loop's (one thread's) book of open verification windows."""

    def __init__(self, settings: VerifySettings, store: VerdictStore, metrics: Metrics,
                 clock: Callable[[], float]) -> None:
        self.settings, self.store, self.metrics, self.clock = settings, store, metrics, clock
        self.windows: dict[str, list[Window]] = {}  # by the watched container's id
        self.held: dict[str, Record] = {}  # container name -> the ladder's pending hold
        # Names a ladder rung is being carried out on (its window not open yet): a
        # recreate's new container is seen before the old one's action is done. By name,
        # with when it was sent: an entry a lost post-action look never cleared lapses.
        self.acting: dict[str, float] = {}
        self._tallies: tuple[float, dict[fixrate.Key, fixrate.Tally]] | None = None
        self.keep_s = 30 * 86400.0  # verdicts given longer ago are forgotten (``prune``)
        self._pruned = 0.0

    def resume(self) -> int:
        """Open again the windows the state file has as pending; returns how many."""
        n = 0
        for r in self.store.open_windows():
            if r.action == ladder.HOLD.value:
                self.held[r.container] = r  # still with people: no window to judge
                continue
            try:
                a = Attempt(Action(r.action), r.container, Failure(r.failure), r.acted_at,
                            r.window_s)
            except ValueError:
                log.warning("verdicts: a pending window of %s names an unknown action or "
                            "failure (%s, %s); left as it is", r.container, r.action,
                            r.failure)
                continue
            self.windows.setdefault(r.watched, []).append(Window(r, a))
            n += 1
        if n:
            log.info("verdicts: %d verification window(s) open when healthd stopped are "
                     "watched again (the time it was not looking is not counted)", n)
        return n

    def opened(self, d: Decision, state: ContainerState | None, service: str | None = None,
               watched_id: str | None = None) -> None:
        """``d`` was carried out just now: watch its target for its window.

        service: the fix-rate key (its Compose service); watched_id: the container to
        watch when it is not ``d``'s target (the one a recreate made)."""
        self.acting.pop(d.target_name, None)
        scaled = d.action in (Action.SCALE_UP, Action.SCALE_DOWN)
        if (d.action not in VERIFIED and not scaled) or d.failure is None:
            return
        if scaled and not d.rung:
            if not d.service:
                return
            watched_id = d.service  # the scaler's step: its service is what holds
        if d.action is Action.REPLACE_TASK:
            watched_id = d.service  # Swarm replaces the task: its service is what holds
        own = labels.parse(state.labels).verify_window_s if state is not None else None
        window = own or self.settings.window_for(d.action)
        now = self.clock()
        r = Record(d.target_id, d.action.value, d.at, d.target_name, d.failure.value, now,
                   window, evidence=f"watching for {window:.0f} s", service=service,
                   watched_id=watched_id)
        self.store.put(r)
        w = Window(r, Attempt(d.action, d.target_name, d.failure, now, window), rung=d.rung)
        self.windows.setdefault(r.watched, []).append(w)

    def hold(self, d: Decision, service: str | None) -> None:
        """The ladder handed ``d``'s target to people (``d`` is its alert): a step that
        stays pending until the target recovers by itself or a person resumes it."""
        if d.failure is None:
            return
        r = Record(d.target_id, ladder.HOLD.value, d.at, d.target_name, d.failure.value,
                   self.clock(), 0.0, evidence="held for people", service=service)
        self.store.put(r)
        self.held[d.target_name] = r

    def release(self, name: str, kind: Kind, why: str) -> Record | None:
        """End the hold of ``name`` (``fixed``: it recovered by itself; ``superseded``: a
        person resumed it); the ladder starts again at rung 1. None when not held."""
        r = self.held.pop(name, None)
        if r is None:
            return None
        now = self.clock()
        done = Record(r.container_id, r.action, r.decided_at, r.container, r.failure,
                      r.acted_at, r.window_s, kind.value, why, now, now - r.acted_at,
                      r.service, r.watched_id)
        self.store.put(done)
        log.warning("%s released from its hold: %s", name, why)
        return done

    def scaled_watched(self, swarm: bool = False) -> list[str]:
        """The Compose services (or with ``swarm`` the Swarm ones), by key, a scaler's
        step's window watches."""
        return [key for key, ws in self.windows.items()
                if key.startswith("swarm/") == swarm
                and any(w.record.action in SCALED and w.record.watched_id == key
                        for w in ws)]

    def nodes_watched(self) -> list[str]:
        """The Swarm nodes (by id) a drain's or an activation's window watches."""
        return [nid for nid, ws in self.windows.items()
                if any(w.record.action in ON_NODE for w in ws)]

    def services_watched(self) -> list[str]:
        """The Swarm services a rollback's (by id) or a replacement's (by key) window
        watches."""
        return [sid for sid, ws in self.windows.items()
                if any(w.record.action in ON_SERVICE for w in ws)]

    def in_incident(self, cid: str, name: str) -> bool:
        """Whether a ladder rung is being carried out on ``name`` or its window runs on
        ``cid``: its incident is not over, so looking well now is not yet "resolved" (a
        relapse would make it an escalation)."""
        sent = self.acting.get(name)
        if sent is not None and self.clock() - sent < _ACTING_S:
            return True
        return any(w.rung for w in self.windows.get(cid, ()))

    def settle(self, cid: str) -> None:
        """Judge ``cid``'s windows now (a recurrence is given at once, before the next
        decision on it reads its steps), keeping those still pending."""
        ws = self.windows.get(cid)
        if not ws:
            return
        now, s = self.clock(), self.settings
        left = []
        for w in ws:
            v = judge(w.attempt, w.seen, now, s.max_gap_s, s.settle_s)
            if v.final:
                self._record(w, v)
            else:
                left.append(w)
        if left:
            self.windows[cid] = left
        else:
            del self.windows[cid]

    def steps(self, name: str, failure: Failure) -> list[ladder.Step]:
        """The actions taken on ``name`` for ``failure``, with their verdicts (pending
        ones included), oldest first: the ladder's input."""
        out = []
        for r in self.store.of_target(name):
            if r.failure != failure.value:
                continue
            try:
                action, kind = Action(r.action), Kind(r.kind)
            except ValueError:
                continue  # another version's row: not a step this ladder knows
            out.append(ladder.Step(action, r.decided_at,
                                   Verdict(kind, r.evidence, r.judged_at, r.after_s)))
        return out

    def tallies(self, s: LadderSettings) -> dict[fixrate.Key, fixrate.Tally]:
        """Fix-rate counts over ``s.learn_window_s`` (read again after a verdict, or a
        minute after the last read)."""
        now = self.clock()
        if self._tallies is not None and now - self._tallies[0] < _TALLY_EVERY_S:
            return self._tallies[1]
        tried = []
        for r in self.store.judged_since(now - s.learn_window_s):
            try:
                tried.append(fixrate.Tried(r.fix_key, Failure(r.failure), Action(r.action),
                                           Kind(r.kind), r.judged_at or now))
            except ValueError:
                continue
        counts = fixrate.tally((t for t in tried if t.action is not ladder.HOLD), now,
                               s.learn_window_s)
        self._tallies = (now, counts)
        return counts

    def observe(self, c: ContainerState, failure: Failure | None, now: float) -> None:
        """What the main loop saw of ``c`` just now."""
        ws = self.windows.get(c.id)
        if not ws:
            return
        # Stopped through the API (healthd's own stops end before its windows open): the
        # target was changed by someone else, whatever its exit code looks like.
        o = (Observation(now, change=Change.STOPPED) if c.stopped_on_purpose and not c.running
             else Observation(now, c.running, c.health, failure))
        for w in ws:
            w.add(o)

    def gone(self, cid: str, now: float) -> None:
        """``cid`` was removed (by someone else: healthd's restarts keep the container)."""
        for w in self.windows.get(cid, ()):
            w.add(Observation(now, change=Change.REMOVED))

    def tick(self) -> None:
        """Judge every open window; record and drop those with a verdict."""
        now = self.clock()
        for cid in list(self.windows):
            self.settle(cid)
        self.store.flush()
        if now - self._pruned >= _PRUNE_EVERY_S:
            self._pruned = now
            gone = self.store.prune(now - self.keep_s)
            if gone:
                log.info("verdicts: %d given over %.0f days ago forgotten", gone,
                         self.keep_s / 86400)

    def _record(self, w: Window, v: Verdict) -> None:
        r = w.record
        done = Record(r.container_id, r.action, r.decided_at, r.container, r.failure,
                      r.acted_at, r.window_s, v.kind.value, v.evidence, v.at, v.after_s,
                      r.service, r.watched_id)
        self.store.put(done)
        self._tallies = None  # the counts changed
        self.metrics.verdicts.labels(r.action, r.failure, v.kind.value).inc()
        if v.kind is Kind.FIXED and v.at is not None:
            opened = self._incident_opened(r)
            self.metrics.recovery.labels(r.action, r.failure).observe(max(0.0, v.at - opened))
        line = f"verdict on {r.action} {r.container}: {v.kind.value}: {v.evidence}"
        if v.kind in (Kind.RECURRED, Kind.NOT_FIXED):
            log.warning("%s", line)
        else:
            log.info("%s", line)

    def _incident_opened(self, r: Record) -> float:
        """When the incident that ``r`` ended was opened: its first live step's decision
        (the first action taken on the problem)."""
        try:
            before = [s for s in self.steps(r.container, Failure(r.failure))
                      if s.at < r.decided_at]
        except ValueError:
            return r.decided_at
        live = ladder.live(before)  # the rungs that did not hold before ``r`` did
        return live[0].at if live else r.decided_at

    def incident_rows(self) -> list[dict[str, object]]:
        """The incidents still open (a window running, a rung due, or held for people),
        for ``/status`` (HTTP threads: the store has its own lock)."""
        found = incident.incidents((r.taken() for r in self.store.every()), self.clock(),
                                   self.settings.default_s)
        return [i.as_dict() for i in found if i.is_open]

    def outcome_rows(self, s: LadderSettings) -> list[dict[str, object]]:
        """Fix rates per (service, classification, action) over ``s.learn_window_s``, for
        ``/status`` (``healthd status --outcomes``)."""
        return incident.outcome_rows(self._tallies[1] if self._tallies is not None
                                     else self.tallies(s))

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
