"""healthd's memory of each container between observations (shell state).

Owns: one ``Tracked`` record per container, folded from events, inspects and sweeps: what
the engine last said, the deaths seen in events, whether a stop was asked for, the last
usage sample and forecasts, and the epoch that marks an inspect as stale. Thread-safe for
the readers outside the main loop (the observer's ``known()``, the HTTP snapshot).
Must never: decide anything or call the engine; it only remembers what it is told.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from healthd.core.model import (
    Assessment,
    ContainerState,
    Decision,
    Failure,
    ForecastView,
    Health,
    Usage,
)
from healthd.observe import containers
from healthd.observe.containers import Event, Limits
from healthd.observe.observer import Known
from healthd.observe.sampler import StatsTarget

_DEATH_MEMORY = 32  # die times kept per container: enough for any crash-loop window
# Signals sent to reload or reopen logs (nginx, haproxy, gunicorn...): `docker kill -s HUP`
# is not a stop. The engine names the signal by number (Linux numbering) or as sent.
_RELOAD_SIGNALS = frozenset({"1", "10", "12", "HUP", "USR1", "USR2",
                             "SIGHUP", "SIGUSR1", "SIGUSR2"})


@dataclass
class Tracked:
    """What healthd remembers of one container between observations."""

    state: ContainerState
    limits: Limits
    fingerprint: tuple[str, str | None] = ("", None)
    deaths: deque[float] = field(default_factory=lambda: deque(maxlen=_DEATH_MEMORY))
    stopped_on_purpose: bool = False
    stop_requested_at: float = 0.0  # the stop's kill event time, while it has not started since
    oom_seen: bool = False
    usage: Usage | None = None
    forecasts: tuple[ForecastView, ...] = ()
    assessment: Assessment = field(default_factory=lambda: Assessment(Health.UNKNOWN))
    failure: Failure | None = None  # its classification at the last evaluation
    last_decision: Decision | None = None
    last_recorded: tuple[Any, ...] | None = None
    inspected: bool = False  # False for a placeholder made from an event: never decided on
    epoch: int = 0  # bumped by each lifecycle event; an inspect taken before it is stale


def placeholder(cid: str, name: str) -> Tracked:
    """A record for a container known only from an event, until its inspect arrives."""
    return Tracked(state=ContainerState(id=cid, name=name, status="created"),
                   limits=Limits(None, None, None))


class Memory:
    """Every tracked container by id."""

    def __init__(self, own_ids: frozenset[str]) -> None:
        self.own_ids = own_ids
        self.tracked: dict[str, Tracked] = {}
        self._lock = threading.Lock()  # guards ``tracked`` against the observer/HTTP threads

    def get(self, cid: str) -> Tracked | None:
        """The record of ``cid``, if tracked."""
        return self.tracked.get(cid)

    def all(self) -> list[Tracked]:
        """A copy of every record (safe to iterate while the map changes)."""
        with self._lock:
            return list(self.tracked.values())

    def fresh(self, cid: str, epoch: int) -> bool:
        """False when an inspect taken at ``epoch`` predates a newer lifecycle event."""
        t = self.tracked.get(cid)
        return t is None or not t.inspected or t.epoch == epoch

    def apply_inspect(self, cid: str, data: dict[str, Any], is_self: bool) -> Tracked:
        """Fold an inspect body in; creates the record for a container new to us."""
        with self._lock:
            t = self.tracked.get(cid)
            limits = containers.limits_from_inspect(data)
            if t is None:
                t = Tracked(state=containers.from_inspect(data), limits=limits)
                self.tracked[cid] = t
            t.limits = limits
            t.state = containers.from_inspect(
                data, deaths=tuple(t.deaths), stopped_on_purpose=t.stopped_on_purpose,
                is_self=is_self, stop_requested_at=t.stop_requested_at)
            if t.state.running:
                t.oom_seen = False
            t.fingerprint = (t.state.status, t.state.health)
            t.inspected = True
        return t

    def on_event(self, ev: Event) -> Tracked:
        """Fold a lifecycle event in; returns the (possibly new, placeholder) record."""
        t = self.tracked.get(ev.id)
        if t is None:  # new to us: a placeholder keeps the event's memory until inspected
            t = placeholder(ev.id, ev.name)
            with self._lock:
                self.tracked[ev.id] = t
        t.epoch += 1
        if ev.verb == "kill" and (ev.signal or "").upper() not in _RELOAD_SIGNALS:
            t.stopped_on_purpose = True  # docker stop / kill / compose down: leave it be
            t.stop_requested_at = t.stop_requested_at or ev.time  # stop's SIGKILL: same stop
        elif ev.verb == "oom":
            t.oom_seen = True  # the die that follows carries the decision
        elif ev.verb == "start":
            t.stopped_on_purpose = t.oom_seen = False
            t.stop_requested_at = 0.0
            t.forecasts = ()
        elif ev.verb == "die" and not t.stopped_on_purpose:
            t.deaths.append(ev.time)
        return t

    @staticmethod
    def apply_die(t: Tracked, ev: Event) -> None:
        """What a die event says, enough to decide on before the next inspect."""
        t.state = dataclasses.replace(
            t.state, status="exited", exit_code=ev.exit_code or 0, finished_at=ev.time,
            oom_killed=t.oom_seen, deaths=tuple(t.deaths),
            stopped_on_purpose=t.stopped_on_purpose, stop_requested_at=t.stop_requested_at)
        t.fingerprint = ("", None)

    def forget(self, cid: str) -> Tracked | None:
        """Drop a container (destroyed, or gone from the list); returns its last record."""
        with self._lock:
            return self.tracked.pop(cid, None)

    def known(self) -> Known:
        """For the observer thread: fingerprints to diff the list against, stats targets."""
        items = self.all()
        return Known(
            fingerprints={t.state.id: t.fingerprint for t in items},
            epochs={t.state.id: t.epoch for t in items},
            targets=[StatsTarget(t.state.id, t.state.name, t.limits.mem_bytes,
                                 t.limits.cpu_cores, t.limits.pids)
                     for t in items if t.state.running],
        )

    def health_counts(self) -> dict[Health, int]:
        """How many containers are in each health state."""
        counts = dict.fromkeys(Health, 0)
        for t in self.all():
            counts[t.assessment.health] += 1
        return counts
