"""Operators steering healthd: approval modes, pending decisions and maintenance (pure).

Owns: the ``[approval]`` settings and the ``healthd.approval`` label's meaning, the
``Pending`` (a decision waiting for a person) and ``Maintenance`` (a paused target) values,
which names a decision answers to, what has expired by ``now``, and the one-line reasons
the decision table holds with (``awaiting-approval: ...``, ``maintenance: ...``).
Must never: do I/O, read the clock or make IDs: ``now`` and every id are arguments; the
shell (``act.control``, ``store.control``) keeps, persists and notifies.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from healthd.core import labels as label_keys
from healthd.core.model import Action

APPROVAL_LABEL = label_keys.APPROVAL  # auto | approve | off, every action on the container
HOST = "host"  # the maintenance target that pauses everything on this host
AWAITING = "awaiting-approval"  # the guard name of a decision waiting for a person
MAINTENANCE = "maintenance"  # the guard name of a decision held by a pause
OFF = "approval-off"  # the guard name of an action an operator turned off
REJECTED = "rejected"  # the guard name of a decision a person said no to (for a while)


class ApprovalMode(str, enum.Enum):
    """What healthd does with an action it decided on."""

    AUTO = "auto"  # act at once (the guards permitting)
    APPROVE = "approve"  # wait as a pending decision until a person approves it
    OFF = "off"  # never act; the decision is recorded as held


# Action kinds that go through the decision table's stages: a Swarm service's rollback and
# a node's drain/activate are decided by the leader's own table (core.swarm) and not gated.
GATED = (Action.RESTART, Action.RECREATE, Action.REPLACE_TASK, Action.SCALE_UP,
         Action.SCALE_DOWN)
_MODES = ", ".join(m.value for m in ApprovalMode)


@dataclass(frozen=True)
class ApprovalSettings:
    """[approval]: per action kind, ``auto`` (default), ``approve`` or ``off``."""

    default: ApprovalMode = ApprovalMode.AUTO
    actions: tuple[tuple[Action, ApprovalMode], ...] = ()  # overrides of ``default``
    expire_s: float = 3600.0  # a pending decision not approved by then is dropped

    def mode_for(self, action: Action) -> ApprovalMode:
        """The configured mode for an action kind."""
        for a, m in self.actions:
            if a is action:
                return m
        return self.default


APPROVAL_KEYS = ("default", "expire_s", *(a.value for a in GATED))


def parse_approval(raw: Any) -> tuple[ApprovalSettings, list[str]]:
    """The ``[approval]`` table into settings, with every problem naming its key."""
    if not isinstance(raw, Mapping):
        return ApprovalSettings(), [f"approval: expected a table, got {type(raw).__name__}"]
    problems: list[str] = []
    default, expire, actions = ApprovalMode.AUTO, 3600.0, []
    for k, v in raw.items():
        key = f"approval.{k}"
        if k not in APPROVAL_KEYS:
            problems.append(f"{key}: unknown key; allowed: {', '.join(APPROVAL_KEYS)}")
        elif k == "expire_s":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1e9:
                problems.append(f"{key}: expected seconds > 0, got {v!r}")
            else:
                expire = float(v)
        elif not isinstance(v, str) or v not in [m.value for m in ApprovalMode]:
            problems.append(f"{key}: {v!r} is not one of {_MODES}")
        elif k == "default":
            default = ApprovalMode(v)
        else:
            actions.append((Action(k), ApprovalMode(v)))
    return ApprovalSettings(default, tuple(actions), expire), problems


def approval_mode(settings: ApprovalSettings, action: Action,
                  container_labels: Iterable[tuple[str, str]]) -> tuple[ApprovalMode, str]:
    """The mode for ``action`` on a container and where it comes from ("label
    healthd.approval=off" or "approval.restart = off"). The label wins over the config;
    a bad label value is ignored (the config's mode applies)."""
    if action not in GATED:
        return ApprovalMode.AUTO, "not gated"
    raw = dict(container_labels).get(APPROVAL_LABEL)
    if raw is not None:
        v = raw.strip().lower()
        if v in [m.value for m in ApprovalMode]:
            return ApprovalMode(v), f"label {APPROVAL_LABEL}={v}"
    key = action.value if any(a is action for a, _ in settings.actions) else "default"
    mode = settings.mode_for(action)
    return mode, f"approval.{key} = {mode.value}"


@dataclass(frozen=True)
class Pending:
    """A decision waiting for a person's approval. ``target`` is a container's name or a
    service key; ``explain`` is the decision's one line when it was made."""

    id: str
    action: Action
    target: str
    target_id: str
    rule: str
    explain: str
    created: float  # epoch seconds
    expires: float  # epoch seconds; a rejected one: when healthd may ask again
    rejected_by: str = ""  # who rejected it; then it stays until ``expires``, holding

    @property
    def key(self) -> tuple[str, Action]:
        """What it is about: one pending decision per target and action kind."""
        return (self.target, self.action)

    def as_dict(self) -> dict[str, Any]:
        """The /status shape."""
        return {"id": self.id, "action": self.action.value, "target": self.target,
                "rule": self.rule, "explain": self.explain, "created": self.created,
                "expires": self.expires}


@dataclass(frozen=True)
class Maintenance:
    """A paused target: ``host``, a compose project, a service or a container name."""

    target: str
    reason: str
    who: str
    since: float  # epoch seconds
    until: float | None  # epoch seconds; None: until resumed

    def as_dict(self) -> dict[str, Any]:
        """The /status shape."""
        return {"target": self.target, "reason": self.reason, "who": self.who,
                "since": self.since, "until": self.until}

    def why(self) -> str:
        """The hold's reason, after ``maintenance: ``."""
        until = "resumed" if self.until is None else clock_text(self.until)
        return f"{self.reason or 'no reason given'} (by {self.who or 'unknown'}, until {until})"


def clock_text(t: float) -> str:
    """An epoch time as '2026-12-03 16:45:00 UTC'."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def names_of(target_name: str, service: str | None,
             container_labels: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Every name a pause can reach a decision by: the host, the target's own name, its
    service ("project/service" and the service alone) and its compose project."""
    d = dict(container_labels)
    names = {HOST, target_name}
    svc = service or label_keys.parse(d).service
    if svc:
        names.add(svc)
        names.add(svc.rsplit("/", 1)[-1])
        if "/" in svc and not svc.startswith("swarm/"):
            names.add(svc.split("/", 1)[0])
    project = d.get(label_keys.COMPOSE_PROJECT)
    if project:
        names.add(project)
    names.discard("")
    return frozenset(names)


def in_force(pauses: Iterable[Maintenance], now: float) -> list[Maintenance]:
    """The pauses that have not run out by ``now``."""
    return [m for m in pauses if m.until is None or m.until > now]


def covering(pauses: Iterable[Maintenance], names: frozenset[str],
             now: float) -> Maintenance | None:
    """The pause in force that reaches one of ``names``; the host's first."""
    hits = [m for m in in_force(pauses, now) if m.target in names]
    hits.sort(key=lambda m: (m.target != HOST, m.since))
    return hits[0] if hits else None


def split_expired(pending: Iterable[Pending],
                  now: float) -> tuple[list[Pending], list[Pending]]:
    """(still waiting, expired by ``now``)."""
    live: list[Pending] = []
    gone: list[Pending] = []
    for p in pending:
        (live if p.expires > now else gone).append(p)
    return live, gone


def awaiting_why(p: Pending, now: float) -> str:
    """The hold's reason, after ``awaiting-approval: `` (or ``rejected: ``)."""
    if p.rejected_by:
        return (f"{p.id} by {p.rejected_by}; not asked again before "
                f"{clock_text(p.expires)}")
    return (f"pending {p.id}, expires in {max(0.0, p.expires - now):.0f} s "
            f"(healthd approve {p.id} / healthd reject {p.id})")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0,
           "d": 86400.0}


def parse_duration(text: str) -> float:
    """'90', '90s', '30m', '2h', '1d' to seconds (> 0); ValueError saying what is allowed."""
    m = _DURATION.match(text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 2h or 1d")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def find(pending: Sequence[Pending], pid: str) -> Pending | None:
    """The pending decision with id ``pid`` (or a unique prefix of at least 4 characters)."""
    exact = [p for p in pending if p.id == pid]
    if exact:
        return exact[0]
    near = [p for p in pending if len(pid) >= 4 and p.id.startswith(pid)]
    return near[0] if len(near) == 1 else None
