"""Operators' say in the shell: pending approvals and pauses, and their HTTP routes.

Owns: the pending decisions and pauses in memory (persisted through ``store.control``),
what the decision table is told of them (``context``), keeping them when the table asks
for approval (``on_decision``), their expiry (``tick``), and the POST routes
``/api/approve/<id>``, ``/api/reject/<id>``, ``/api/pause`` and ``/api/resume`` (the door
in ``serve.access`` has checked the token before any of them runs). Every change is
recorded in the ledger's history and notified.
Must never: decide (``core.decide`` does, with what ``context`` hands it) or act on the
engine from an HTTP thread: an approval is handed to the main loop, which decides again
with every guard and acts through the runner (``Approve``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

from healthd.act.notifier import Notifier
from healthd.core import control
from healthd.core.control import Maintenance, Pending
from healthd.core.model import Action, Decision, Outcome
from healthd.core.notifyconfig import EventKind
from healthd.core.settings import Config
from healthd.store.control import ControlStore
from healthd.store.ledger import Ledger

log = logging.getLogger("healthd")

Response = tuple[int, str, bytes]
ANSWER_S = 10.0  # how long an approval waits for the main loop to decide and send
_SCALE = (Action.SCALE_UP, Action.SCALE_DOWN)


LADDER_WHO = "healthd ladder"  # who a pause is by when the ladder handed a target to people


def new_id() -> str:
    """A pending decision's id: short enough to type."""
    return uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Approve:
    """An approval handed from an HTTP thread to the main loop; ``result`` gets the
    outcome ("approved" or "held: <why>"), or None when it was no longer pending."""

    pending: Pending
    who: str
    result: Future[str | None]


class _Refused(Exception):
    """An approval or rejection that cannot be taken; ``response`` says why (400, 404)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response[0])
        self.response = response


def _json(code: int, body: Mapping[str, Any]) -> Response:
    return code, "application/json", json.dumps(body).encode()


def _bad(field: str, why: str) -> Response:
    return _json(400, {"ok": False, "error": f"{field}: {why}", "field": field})


def _body(raw: bytes) -> dict[str, Any] | Response:
    """A JSON object body ({} when empty), or the 400 that says why not."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _json(400, {"ok": False, "error": f"body: not JSON: {exc}", "field": "body"})
    if not isinstance(body, dict):
        return _json(400, {"ok": False, "error": "body: expected a JSON object",
                           "field": "body"})
    return body


def _text(body: Mapping[str, Any], field: str, default: str, limit: int = 200
          ) -> str | Response:
    v = body.get(field, default)
    if v is None:
        v = default
    if not isinstance(v, str):
        return _bad(field, f"expected a string, got {type(v).__name__}")
    if len(v) > limit:
        return _bad(field, f"longer than {limit} characters")
    return v.strip()


class Control:
    """Pending decisions and pauses: main-loop side and HTTP side, under one lock."""

    def __init__(self, cfg: Config, store: ControlStore, ledger: Ledger,
                 out: queue.Queue[Any], clock: Callable[[], float],
                 notifier: Notifier | None = None,
                 make_id: Callable[[], str] = new_id) -> None:
        self.cfg, self.store, self.ledger, self.out, self.clock = cfg, store, ledger, out, clock
        self.notifier, self.make_id = notifier, make_id
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, Action], Pending] = {p.key: p for p in store.pending()}
        self._pauses: dict[str, Maintenance] = {m.target: m for m in store.pauses()}
        # Main loop only: what is being approved right now (key -> who), the decisions made
        # meanwhile, and the id the next pending decision gets.
        self.approved: dict[tuple[str, Action], str] = {}
        self.seen: dict[tuple[str, Action], Decision] = {}
        self.next_id = make_id()
        if self._pending or self._pauses:
            log.info("kept from before: %d pending decision(s), %d pause(s)",
                     len(self._pending), len(self._pauses))

    # ---- main loop ---------------------------------------------------------------------
    def context(self) -> dict[str, Any]:
        """The ``decide.Context`` fields: pauses, pending decisions, approvals, next id."""
        with self._lock:
            return {"maintenance": tuple(self._pauses.values()),
                    "pending": dict(self._pending), "approved": dict(self.approved),
                    "new_pending_id": self.next_id}

    def on_decision(self, d: Decision) -> None:
        """The table decided ``d`` with ``context``'s values: keep a new pending decision;
        settle one the decision no longer waits on (approved now, or approval turned off).
        Main loop only: nothing else adds pending decisions."""
        key = (d.target_name, d.action)
        if self.approved:
            self.seen[key] = d
        guard = (d.suppressed_by or "").split(":", 1)[0]
        with self._lock:
            p = self._pending.get(key)
        if guard == control.AWAITING and p is None:
            # Its line says what it would do and why, not that it waits.
            line = replace(d, suppressed_by=None).explain()
            p = Pending(self.next_id, d.action, d.target_name, d.target_id, d.rule,
                        line, d.at, d.at + self.cfg.approval.expire_s)
            self.next_id = self.make_id()
            # In the file before anyone can see it: what /status shows survives a SIGKILL.
            self.store.add_pending(p)
            with self._lock:
                self._pending[key] = p
            log.warning("%s waits for approval: healthd approve %s (or reject); expires %s",
                        p.explain, p.id, control.clock_text(p.expires))
        elif d.acts and p is not None and not p.rejected_by:
            with self._lock:
                self._pending.pop(key, None)
            self.store.drop_pending(p.id)

    def tick(self) -> None:
        """End what has run out: pending decisions nobody answered, pauses past their time."""
        now = self.clock()
        with self._lock:
            live, gone = control.split_expired(self._pending.values(), now)
            self._pending = {p.key: p for p in live}
            ended = [m for m in self._pauses.values() if m.until is not None and m.until <= now]
            for m in ended:
                del self._pauses[m.target]
        for p in gone:
            self.store.drop_pending(p.id)
            if not p.rejected_by:
                self._settled(p, "expired", f"nobody approved it within "
                              f"{self.cfg.approval.expire_s:.0f} s", now)
        for m in ended:
            self.store.resume(m.target)
            self._paused_note(m, False, f"pause of {m.target} ran out "
                              f"({m.reason or 'no reason given'}, by {m.who})", now)

    def _settled(self, p: Pending, guard: str, why: str, now: float) -> None:
        """Record and notify how a pending decision ended without being carried out."""
        d = Decision(action=p.action, target_id=p.target_id, target_name=p.target,
                     rule=p.rule, suppressed_by=f"{guard}: {p.id} {why}", at=now)
        log.warning("%s", d.explain())
        self.ledger.record(d, Outcome.SKIPPED)
        if self.notifier is not None:
            self.notifier.submit(d, Outcome.SKIPPED, kind=EventKind.APPROVAL)

    def _paused_note(self, m: Maintenance, started: bool, line: str, now: float,
                     notify: bool = True) -> None:
        """Record a pause or its end in the history (an Action.NONE row, which no guard
        counts) and notify it (unless ``notify`` is False: the ladder's hold is told once,
        by its alert with the whole chain)."""
        d = Decision(action=Action.NONE, target_id="", target_name=m.target,
                     rule=f"maintenance.{'pause' if started else 'resume'}", at=now,
                     evidence=(line,))
        log.warning("%s", line)
        self.ledger.record(d, Outcome.SKIPPED)
        if self.notifier is not None and notify:
            self.notifier.maintenance(m.target, started, line)

    def hold(self, target: str, reason: str) -> None:
        """The ladder handed ``target`` to people: pause it until a person resumes it
        (``healthd resume``) or it recovers by itself (``unhold``)."""
        now = self.clock()
        m = Maintenance(target, reason, LADDER_WHO, now, None)
        self.store.pause(m)
        with self._lock:
            self._pauses[target] = m
        self._paused_note(m, True, f"{target} held for people: {reason}", now, notify=False)

    def held_by_ladder(self, target: str) -> bool:
        """Whether ``target``'s pause is the ladder's own (not a person's)."""
        with self._lock:
            m = self._pauses.get(target)
        return m is not None and m.who == LADDER_WHO

    def unhold(self, target: str, why: str) -> None:
        """End the ladder's own pause of ``target`` (a person's pause stays)."""
        with self._lock:
            m = self._pauses.get(target)
            if m is None or m.who != LADDER_WHO:
                return
            del self._pauses[target]
        self.store.resume(target)
        self._paused_note(m, False, f"{target} no longer held: {why}", self.clock())

    def pauses(self) -> tuple[Maintenance, ...]:
        """The pauses kept (some may have run out since the last ``tick``)."""
        with self._lock:
            return tuple(self._pauses.values())

    def snapshot(self) -> dict[str, Any]:
        """The /status fields ``pending`` (waiting only) and ``maintenance`` (in force)."""
        now = self.clock()
        with self._lock:
            pending = sorted((p for p in self._pending.values()
                              if not p.rejected_by and p.expires > now),
                             key=lambda p: p.created)
            pauses = control.in_force(self._pauses.values(), now)
        return {"pending": [p.as_dict() for p in pending],
                "maintenance": [m.as_dict() for m in sorted(pauses, key=lambda m: m.since)]}

    def find(self, pid: str) -> Pending | None:
        """A pending decision still waiting, by id."""
        now = self.clock()
        with self._lock:
            waiting = [p for p in self._pending.values()
                       if not p.rejected_by and p.expires > now]
        return control.find(waiting, pid)

    def approved_now(self, p: Pending, d: Decision | None) -> str:
        """After the main loop decided again with ``p`` approved: the outcome; the
        pending decision is dropped when nothing is left to approve."""
        if d is not None and d.acts:
            return "approved"
        if d is not None and d.suppressed_by:
            return f"held: {d.suppressed_by}"  # still pending: approve again later
        why = ("nothing to do any more: " + (f"{p.target} is fine now or gone" if d is None
                                              else f"the table now says {d.action.value}"))
        with self._lock:
            self._pending.pop(p.key, None)
        self.store.drop_pending(p.id)
        self._settled(p, "obsolete", why, self.clock())
        return f"held: {why}"

    # ---- HTTP (threads of serve.server; the token was checked) ---------------------------
    def routes(self) -> dict[str, Callable[[str, bytes], Response]]:
        """POST routes by prefix: handler of (the path after the prefix, the body)."""
        return {"/api/approve/": self.approve, "/api/reject/": self.reject,
                "/api/pause": lambda _tail, body: self.pause(body),
                "/api/resume": lambda _tail, body: self.resume(body)}

    def _asked(self, pid: str, raw: bytes) -> tuple[Pending, str]:
        """The pending decision ``pid`` and who answers it (the body's ``who``); raises
        ``_Refused`` with a bad body's 400 or, when no such decision waits, a 404."""
        body = _body(raw)
        if not isinstance(body, dict):
            raise _Refused(body)
        who = _text(body, "who", "unknown")
        if not isinstance(who, str):
            raise _Refused(who)
        p = self.find(pid)
        if p is None:
            raise _Refused(_json(404, {"ok": False, "error": f"no pending decision {pid!r}"}))
        return p, who or "unknown"

    def approve(self, pid: str, raw: bytes) -> Response:
        """Hand an approval to the main loop and wait for its outcome."""
        try:
            p, who = self._asked(pid, raw)
        except _Refused as refused:
            return refused.response
        req = Approve(p, who, Future())
        self.out.put(req)
        try:
            outcome = req.result.result(ANSWER_S)
        except FutureTimeout:
            return _json(503, {"ok": False, "error": "healthd's main loop did not answer in"
                               f" {ANSWER_S:.0f} s; the approval may still be carried out"})
        if outcome is None:
            return _json(404, {"ok": False, "error": f"no pending decision {pid!r}"})
        return _json(200, {"ok": True, "id": p.id, "outcome": outcome})

    def reject(self, pid: str, raw: bytes) -> Response:
        """Say no: the decision is held (``rejected``) until its expiry, then may ask again."""
        try:
            p, who = self._asked(pid, raw)
        except _Refused as refused:
            return refused.response
        now = self.clock()
        gone = replace(p, rejected_by=who, expires=now + self.cfg.approval.expire_s)
        with self._lock:
            if self._pending.get(p.key) != p:
                return _json(404, {"ok": False, "error": f"no pending decision {pid!r}"})
            self._pending[p.key] = gone
        self.store.add_pending(gone)
        self._settled(p, "rejected", f"by {gone.rejected_by}; not asked again before "
                      f"{control.clock_text(gone.expires)}", now)
        return _json(200, {"ok": True, "id": p.id, "outcome": "rejected"})

    def pause(self, raw: bytes) -> Response:
        """Pause a target: ``{"target", "for_s", "reason", "who"}``."""
        body = _body(raw)
        if not isinstance(body, dict):
            return body
        for k in body:
            if k not in ("target", "for_s", "reason", "who"):
                return _bad(k, "unknown field; allowed: target, for_s, reason, who")
        fields = [_text(body, "target", control.HOST), _text(body, "reason", ""),
                  _text(body, "who", "unknown")]
        for f in fields:
            if not isinstance(f, str):
                return f
        target, reason, who = (str(f) for f in fields)
        if not target:
            return _bad("target", "empty; 'host', or a stack, service or container name")
        for_s = body.get("for_s")
        if for_s is not None and (isinstance(for_s, bool) or not isinstance(for_s, (int, float))
                                  or not 0 < for_s < 1e9):
            return _bad("for_s", f"expected seconds > 0 or null, got {for_s!r}")
        now = self.clock()
        m = Maintenance(target, reason, who or "unknown", now,
                        None if for_s is None else now + float(for_s))
        self.store.pause(m)  # in the file before /status shows it
        with self._lock:
            self._pauses[target] = m
        self._paused_note(m, True, f"{target} paused: {m.why()}", now)
        return _json(200, {"ok": True, "maintenance": m.as_dict()})

    def resume(self, raw: bytes) -> Response:
        """End a pause: ``{"target"}`` (default ``host``); 404 when it is not paused."""
        body = _body(raw)
        if not isinstance(body, dict):
            return body
        for k in body:
            if k not in ("target", "who"):
                return _bad(k, "unknown field; allowed: target, who")
        target, who = _text(body, "target", control.HOST), _text(body, "who", "unknown")
        if not isinstance(target, str):
            return target
        if not isinstance(who, str):
            return who
        with self._lock:
            m = self._pauses.pop(target, None)
        if m is None:
            return _json(404, {"ok": False, "error": f"{target} is not paused"})
        self.store.resume(target)
        self._paused_note(m, False, f"{target} resumed by {who or 'unknown'} (paused by "
                          f"{m.who}: {m.reason or 'no reason given'})", self.clock())
        return _json(200, {"ok": True, "target": target, "resumed": m.as_dict()})

    def is_scale(self, p: Pending) -> bool:
        """Whether approving ``p`` means deciding the scalers again (not one container)."""
        return p.action in _SCALE
