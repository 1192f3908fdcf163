"""From decisions to notices, and which notice goes to which target when (pure).

Owns: the ``Notice`` value (what happened, to what, how bad, in one line), which decisions
and outcomes are worth one (``kind_of``), the alerts a container has open until it is
healthy again (``opened`` / ``resolution``: the "resolved" notice), a target's filter
(``for_target``), and the grouping along a timeline (``next_flush`` / ``after_flush``): a
new group waits ``group_wait_s`` for company, then is sent at most once per
``group_interval_s``; the same notice again only after ``repeat_interval_s``.
Must never: do I/O, read the clock or make IDs: ``now`` and every ``id`` are arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from healthd.core import labels as label_keys
from healthd.core.model import ENGINE_ACTIONS, Action, Decision, Health, Outcome
from healthd.core.notifyconfig import EventKind, NotifyTarget

# At most this many notices in one message; the rest of the group follows at once, not
# after group_interval_s (a receiver back from an outage gets its backlog in pieces).
MAX_PER_MESSAGE = 200
_RANK = {Health.HEALTHY: 0, Health.UNKNOWN: 0, Health.DEGRADED: 1, Health.CRITICAL: 2}


@dataclass(frozen=True)
class Alert:
    """One thing healthd notified about a container, open until the container is healthy."""

    kind: EventKind
    rule: str
    severity: Health
    at: float  # when it was first notified (Alertmanager's startsAt)
    service: str = ""
    stack: str = ""


@dataclass(frozen=True)
class Notice:
    """One notification-worthy event. ``id`` is unique: receivers may dedupe on it."""

    id: str
    kind: EventKind
    at: float  # epoch seconds
    severity: Health
    container: str = ""  # the container's name ("host" for the host's forecasts)
    container_id: str = ""
    service: str = ""  # "project/service" (compose) or the swarm service; "" outside one
    stack: str = ""  # the compose project
    rule: str = ""
    action: str = ""
    outcome: str = ""
    summary: str = ""  # one line: Decision.explain()
    error: str = ""  # what the engine said when an action failed
    resolves: tuple[Alert, ...] = ()  # for RESOLVED: the alerts it ends
    incident: str = ""  # the ladder's incident ("name@opened"); "" outside one

    def label(self, name: str) -> str:
        """The value of a group-by label (kind, severity, container, service, stack, rule)."""
        if name == "kind":
            return self.kind.value
        if name == "severity":
            return self.severity.value
        return str(getattr(self, name))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the spool's and the webhook payload's)."""
        d = dataclasses.asdict(self)
        d["kind"], d["severity"] = self.kind.value, self.severity.value
        d["resolves"] = [{**dataclasses.asdict(a), "kind": a.kind.value,
                          "severity": a.severity.value} for a in self.resolves]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Notice:
        """Inverse of ``as_dict``."""
        resolves = tuple(Alert(**{**a, "kind": EventKind(a["kind"]),
                                  "severity": Health(a["severity"])})
                         for a in d.get("resolves", ()))
        return cls(**{**d, "kind": EventKind(d["kind"]), "severity": Health(d["severity"]),
                      "resolves": resolves})


def kind_of(d: Decision, outcome: Outcome) -> EventKind | None:
    """The notice kind for a decision recorded with ``outcome``; None: not worth one.

    Actions notify when their outcome is known (not while pending); alerts when raised;
    held decisions only when a failing dependency holds them.
    """
    if d.suppressed_by is not None:
        if d.suppressed_by.split(":", 1)[0] in APPROVAL_GUARDS:
            return EventKind.APPROVAL
        return EventKind.HELD_BY_DEPENDENCY if d.rule.startswith("dependency_failure") else None
    if d.rung > 1 and (d.action is Action.ALERT or outcome is Outcome.SUCCEEDED):
        # Per incident: its first rung opened it (an action), each later one escalates it.
        return EventKind.ESCALATED
    if d.action in ENGINE_ACTIONS:
        return {Outcome.SUCCEEDED: EventKind.ACTION,
                Outcome.FAILED: EventKind.ACTION_FAILED}.get(outcome)
    if d.action is not Action.ALERT:
        return None
    if d.rule.endswith(".budget_exhausted"):
        return EventKind.BREAKER
    if d.rule.startswith("predicted_exhaustion"):
        return EventKind.PREDICTED_EXHAUSTION
    return EventKind.ALERT


# The guards of held decisions that a person is asked about (core.control); a rejection or
# an expiry is told by the shell once (``notice_for``'s ``kind``), not per held decision.
APPROVAL_GUARDS = ("awaiting-approval",)


def _service_and_stack(d: Decision,
                       container_labels: Iterable[tuple[str, str]]) -> tuple[str, str]:
    labels = tuple(container_labels)
    service = d.service or label_keys.parse(labels).service or ""
    stack = dict(labels).get(label_keys.COMPOSE_PROJECT, "")
    if not stack and "/" in service:
        stack = service.split("/", 1)[0]
    return service, stack


def notice_for(d: Decision, outcome: Outcome, container_labels: Iterable[tuple[str, str]],
               notice_id: str, now: float, error: str = "",
               kind: EventKind | None = None) -> Notice | None:
    """The notice for a recorded decision, or None when it is not worth one (or the
    container's labels say healthd.notify=false / autoheal.notify=false; what an operator
    is asked or did is sent regardless).
    kind: what it is about when the caller knows better than ``kind_of``."""
    kind = kind or kind_of(d, outcome)
    if kind is None:
        return None
    container_labels = tuple(container_labels)
    if kind not in _EACH_TIME and label_keys.parse(container_labels).notify is False:
        return None
    service, stack = _service_and_stack(d, container_labels)
    severity = d.severity if _RANK[d.severity] else Health.DEGRADED
    return Notice(id=notice_id, kind=kind, at=now, severity=severity,
                  container=d.target_name, container_id=d.target_id, service=service,
                  stack=stack, rule=d.rule, action=d.action.value, outcome=outcome.value,
                  summary=d.explain(), error=error or "", incident=d.incident)


def probe_notice(target: str, instance: str, notice_id: str, now: float) -> Notice:
    """The clearly marked message of ``healthd notify --test``."""
    return Notice(id=notice_id, kind=EventKind.TEST, at=now, severity=Health.DEGRADED,
                  rule="test", summary=f"TEST notification from healthd on {instance} to "
                  f"target {target}: if you can read this, notifications work")


SELF = "healthd"  # the "container" of notices about healthd's own footing


def state_file_notice(up: bool, error: str | None, set_aside: str | None, path: str,
                      notice_id: str, now: float) -> Notice | None:
    """A notice about healthd's state file (``store.ledger.LedgerHealth`` fields); None
    when the file takes writes and nothing was set aside. Its end is a ``resolution`` of
    ``SELF`` once the file takes writes again."""
    if not up:
        return Notice(id=notice_id, kind=EventKind.STATE_FILE, at=now, severity=Health.CRITICAL,
                      container=SELF, rule="state_file.not_persisted",
                      summary=f"healthd history NOT persisted to {path}: {error}; healing "
                      "goes on, rows wait in memory until the file takes writes again")
    if set_aside:
        return Notice(id=notice_id, kind=EventKind.STATE_FILE, at=now, severity=Health.DEGRADED,
                      container=SELF, rule="state_file.set_aside",
                      summary=f"healthd's state file was corrupt and is set aside as "
                      f"{set_aside}; history started afresh in {path}")
    return None


def maintenance_notice(target: str, started: bool, summary: str, notice_id: str,
                       now: float) -> Notice:
    """A pause began (``started``) or ended (resumed, or ran out); ``summary`` says who,
    why and until when. It opens no alert: nothing about a container resolves it."""
    return Notice(id=notice_id, kind=EventKind.MAINTENANCE, at=now, severity=Health.DEGRADED,
                  rule=f"maintenance.{'pause' if started else 'resume'}",
                  action="pause" if started else "resume", summary=summary,
                  service=target if target != "host" else "")


# ---- open alerts and their resolution ----------------------------------------------------

OpenAlerts = Mapping[str, tuple[Alert, ...]]  # container name -> what is open about it


def opened(open_alerts: OpenAlerts, n: Notice) -> dict[str, tuple[Alert, ...]]:
    """``open_alerts`` with ``n`` added (kept once per kind and rule, first time wins)."""
    out = dict(open_alerts)
    if n.kind in (EventKind.RESOLVED, EventKind.TEST) or not n.container:
        return out
    have = out.get(n.container, ())
    if any(a.kind is n.kind and a.rule == n.rule for a in have):
        return out
    out[n.container] = (*have, Alert(n.kind, n.rule, n.severity, n.at, n.service, n.stack))
    return out


def resolution(open_alerts: OpenAlerts, container: str, container_id: str, notice_id: str,
               now: float) -> tuple[Notice | None, dict[str, tuple[Alert, ...]]]:
    """When ``container`` is healthy again: the notice that ends what is open about it
    (None when nothing is) and the open alerts without it."""
    rest = dict(open_alerts)
    alerts = rest.pop(container, ())
    if not alerts:
        return None, rest
    worst = max(alerts, key=lambda a: _RANK[a.severity]).severity
    ends = ", ".join(f"{a.kind.value} ({a.rule})" for a in alerts)
    return Notice(id=notice_id, kind=EventKind.RESOLVED, at=now, severity=worst,
                  container=container, container_id=container_id, service=alerts[0].service,
                  stack=alerts[0].stack, rule=alerts[0].rule,
                  summary=f"{container} is healthy again; ends {ends}",
                  resolves=alerts), rest


# ---- a target's filter --------------------------------------------------------------------


def _any(globs: Sequence[str], *values: str) -> bool:
    return not globs or any(fnmatchcase(v, g) for g in globs for v in values if v)


def _passes(t: NotifyTarget, kind: EventKind, severity: Health, rule: str, container: str,
            service: str, stack: str) -> bool:
    return (kind in t.events and _RANK[severity] >= _RANK[t.min_severity]
            and _any(t.containers, container)
            and _any(t.services, service, service.rsplit("/", 1)[-1])
            and _any(t.stacks, stack) and _any(t.rules, rule))


def for_target(n: Notice, t: NotifyTarget) -> Notice | None:
    """``n`` as target ``t`` gets it, or None when its filter says no.

    A test notice passes every filter. A resolved notice passes when ``resolved`` is in
    the target's events and it ends at least one alert the target would have taken; it
    keeps only those (the target never heard of the others).
    """
    if n.kind is EventKind.TEST:
        return n
    if n.kind is EventKind.RESOLVED:
        if EventKind.RESOLVED not in t.events:
            return None
        mine = tuple(a for a in n.resolves if _passes(
            t, a.kind, a.severity, a.rule, n.container, a.service, a.stack))
        if not mine:
            return None
        return n if mine == n.resolves else dataclasses.replace(n, resolves=mine)
    ok = _passes(t, n.kind, n.severity, n.rule, n.container, n.service, n.stack)
    return n if ok else None


# ---- grouping along a timeline ------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    """A notice waiting in a target's spool. ``seq`` orders them."""

    seq: int
    notice: Notice
    queued_at: float


@dataclass(frozen=True)
class Pacing:
    """A target's memory of what it sent when (lost on restart: then groups start anew)."""

    flushed: Mapping[str, float] = field(default_factory=dict)  # group key -> last sent
    sent: Mapping[str, float] = field(default_factory=dict)  # fingerprint -> last sent


@dataclass(frozen=True)
class Flush:
    """One group's turn: the notices to send as one message, and the repeats held back."""

    group: str
    send: tuple[Queued, ...]
    suppressed: tuple[Queued, ...] = ()
    more: bool = False  # the group had more than MAX_PER_MESSAGE: the rest is due now


def group_key(n: Notice, t: NotifyTarget) -> str:
    """The group a notice joins at target ``t``: its ``group_by`` labels, ``k=v,...``.
    Test notices always form their own group."""
    if n.kind is EventKind.TEST:
        return f"kind=test,id={n.id}"
    return ",".join(f"{name}={n.label(name)}" for name in t.group_by)


# What an operator did or is asked is news each time (a rejection after the request, a
# second pause of another target): never held back as a repeat.
_EACH_TIME = (EventKind.APPROVAL, EventKind.MAINTENANCE)


def _fingerprint(n: Notice) -> str:
    if n.kind in _EACH_TIME:
        return f"{n.kind.value}|{n.id}"
    return f"{n.kind.value}|{n.container}|{n.rule}"


def next_flush(queue: Sequence[Queued], pacing: Pacing, t: NotifyTarget,
               now: float) -> tuple[Flush | None, float | None]:
    """The group to send now, or (None, when the next one is due; None if none waits).

    A group is due ``group_wait_s`` after its oldest waiting notice, and not before
    ``group_interval_s`` after it was last sent. The earliest due group goes first (on a
    tie, the one with the oldest notice), so a target's messages keep the notices' order
    wherever grouping allows. A notice sent less than ``repeat_interval_s`` ago (same
    kind, container and rule, no resolution since) is held back as a repeat.
    """
    groups: dict[str, list[Queued]] = {}
    for q in sorted(queue, key=lambda q: q.seq):
        groups.setdefault(group_key(q.notice, t), []).append(q)
    if not groups:
        return None, None

    def due(key: str) -> float:
        items = groups[key]
        wait = 0.0 if items[0].notice.kind is EventKind.TEST else t.group_wait_s
        last = pacing.flushed.get(key)
        return max(items[0].queued_at + wait,
                   last + t.group_interval_s if last is not None else float("-inf"))

    key = min(groups, key=lambda k: (due(k), groups[k][0].seq))
    when = due(key)
    if when > now:
        return None, when
    send: list[Queued] = []
    held: list[Queued] = []
    seen: set[str] = set()
    items = groups[key]
    for q in items[:MAX_PER_MESSAGE]:
        fp = _fingerprint(q.notice)
        last_sent = pacing.sent.get(fp)
        repeat = fp in seen or (last_sent is not None and now - last_sent < t.repeat_interval_s)
        if t.repeat_interval_s > 0 and q.notice.kind is not EventKind.RESOLVED and repeat:
            held.append(q)
        else:
            send.append(q)
            seen.add(fp)
    return Flush(key, tuple(send), tuple(held), more=len(items) > MAX_PER_MESSAGE), None


def after_flush(pacing: Pacing, flush: Flush, t: NotifyTarget, now: float) -> Pacing:
    """``pacing`` once ``flush`` has been handed to the sender at ``now``.

    A resolved notice forgets its container's fingerprints: after a recovery, a new
    failure is news again. Entries that no longer hold anything back are dropped, so the
    memory stays as small as the set of recent groups and notices.
    """
    flushed = {k: v for k, v in pacing.flushed.items() if now - v < t.group_interval_s}
    sent = {k: v for k, v in pacing.sent.items() if now - v < t.repeat_interval_s}
    if flush.send and not flush.more:
        flushed[flush.group] = now
    for q in flush.send:
        n = q.notice
        if n.kind is EventKind.RESOLVED:
            sent = {k: v for k, v in sent.items() if k.split("|")[1] != n.container}
        elif t.repeat_interval_s > 0:
            sent[_fingerprint(n)] = now
    if t.group_interval_s <= 0:
        flushed.pop(flush.group, None)
    return Pacing(flushed, sent)
