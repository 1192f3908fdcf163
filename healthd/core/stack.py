"""Stack rules: root cause first, dependents after (pure).

Owns: how a service is doing as a whole (``ServiceHealth``), the inhibit stage that holds a
container whose upstream is failing or still settling (classification
``dependency_failure``, the chain as evidence), and the ``dependency_restarted``
classification of a restart_with dependent whose upstream came back. Must never: do I/O or
read the clock; the topology, the services' health and ``now`` come in as values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from healthd.core import scale
from healthd.core.model import (
    Classification,
    ContainerState,
    Decision,
    Failure,
    Health,
)


class Topology(Protocol):
    """What the stack rules need of the observed topology."""

    def service_of(self, container_id: str) -> str | None:
        """The service key of a container, None when it is in no stack."""
        ...

    def upstreams(self, service: str) -> Sequence[tuple[str, tuple[str, ...]]]:
        """Every service ``service`` depends on, transitively, nearest first, each with the
        chain that leads to it (``("shop/api", "shop/db")``)."""
        ...

    def restart_with(self, service: str) -> Sequence[str]:
        """Upstreams whose restarts ``service`` follows."""
        ...

    def drifted(self, container_id: str) -> bool:
        """True when its compose config hash differs from most of its siblings'."""
        ...


@dataclass(frozen=True)
class ServiceHealth:
    """A service as a whole: failing while any member fails or is being acted on.

    ``since``: when it last turned failing (or, when not failing, healthy) in epoch seconds;
    ``started_at``: the newest start of any member (a restart shows here).
    """

    service: str
    failing: bool
    since: float
    reason: str = ""
    started_at: float = 0.0
    restarted_by: str = ""  # "healthd" when healthd's own action started it last


def clock_text(t: float) -> str:
    """Epoch seconds as the HH:MM:SS (UTC) an operator matches against logs."""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M:%S")


def _chain_text(chain: tuple[str, ...]) -> str:
    return " -> ".join(chain)


def inhibit(
    d: Decision,
    c: ContainerState,
    topology: Topology,
    health: Mapping[str, ServiceHealth],
    now: float,
    settle_s: float,
) -> Decision:
    """Hold ``d`` while an upstream of ``c``'s service fails or has not settled.

    Returns ``d`` itself when nothing upstream is wrong; otherwise a held decision
    classified ``dependency_failure``, naming the upstream, since when, and the chain.
    """
    service = topology.service_of(c.id)
    if service is None or d.failure is Failure.DEPENDENCY_RESTARTED:
        return d
    for up, chain in topology.upstreams(service):
        h = health.get(up)
        if h is None:
            continue
        path = _chain_text((service, *chain))
        if h.failing:
            why = (f"{c.name} not {d.action.value}ed: depends on {up}, "
                   f"{h.reason or 'failing'} since {clock_text(h.since)}")
        elif now - h.since < settle_s:
            why = (f"{c.name} waits for {up} to settle: healthy for {now - h.since:.0f} s "
                   f"of {settle_s:.0f} s")
        else:
            continue
        return dataclasses.replace(
            d, failure=Failure.DEPENDENCY_FAILURE,
            rule=f"dependency_failure.{d.severity.value}",
            evidence=(*d.evidence, f"chain {path}"),
            suppressed_by=f"dependency: {why}")
    return d


def followed_restart(
    c: ContainerState,
    topology: Topology,
    health: Mapping[str, ServiceHealth],
    now: float,
    settle_s: float,
    watch_since: float,
) -> Classification | None:
    """``dependency_restarted`` when an upstream ``c`` follows restarted after ``c`` started
    and has been healthy for ``settle_s``; None otherwise (also while it settles)."""
    service = topology.service_of(c.id)
    if service is None or not c.running or not c.started_at:
        return None
    for up in topology.restart_with(service):
        h = health.get(up)
        # Starts before healthd watched are history it cannot place: leave them.
        if h is None or h.failing or h.started_at <= max(c.started_at, watch_since):
            continue
        if now - h.since < settle_s or now - h.started_at < settle_s:
            continue
        by = f" by {h.restarted_by}" if h.restarted_by else ""
        return Classification(
            Failure.DEPENDENCY_RESTARTED, Health.DEGRADED,
            (f"{up} restarted{by} at {clock_text(h.started_at)} and is healthy again",
             f"{c.name} holds connections from before (started {clock_text(c.started_at)})"))
    return None


# Failures that make a service "down" for the services that depend on it. Pressure and
# forecasts do not: a busy database still answers. An application failing its requests
# (application_error) is down for its dependents; a slow one (latency_degraded) still
# answers, and its dependents' own slowness is theirs to heal.
_DOWN = frozenset({Failure.UNHEALTHY, Failure.CRASHED, Failure.OOM_KILLED, Failure.CRASH_LOOP,
                   Failure.DEPENDENCY_FAILURE, Failure.APPLICATION_ERROR})


@dataclass(frozen=True)
class Member:
    """One container of a service as the stack rules see it."""

    state: ContainerState
    failure: Failure | None  # its classification now, None when nothing is wrong
    in_flight: bool = False  # healthd is acting on it right now
    started_by_healthd: bool = False  # its last start was healthd's own action


def drift(c: ContainerState, cls: Classification | None, topology: Topology,
          image_tags: Mapping[str, str]) -> Classification | None:
    """``config_drift`` for a failing container whose configuration is out of date: its
    compose config hash differs from its siblings', or its image tag now names another
    local image. A restart brings the same old configuration back, so it needs a recreate
    (or a person). Returns ``cls`` unchanged otherwise.

    image_tags: tag -> image id of the local images, as last listed.
    """
    if cls is None or cls.failure not in _DOWN:
        return cls
    if topology.drifted(c.id):
        why = "its compose config hash differs from its siblings'"
    elif c.image_id and image_tags.get(c.image, c.image_id) != c.image_id:
        why = f"its image tag {c.image} now names another local image"
    else:
        return cls
    return Classification(Failure.CONFIG_DRIFT, Health.CRITICAL,
                          (*cls.evidence, f"{why}: a restart keeps the old configuration"))


def with_recreate_source(d: Decision, c: ContainerState, topology: Topology,
                         states: Sequence[ContainerState]) -> Decision:
    """A recreate takes the configuration of a running sibling that has not drifted (the
    lowest-numbered of the operator's); with none, it is made again from its own."""
    service = topology.service_of(c.id)
    siblings = [s for s in states if s.id != c.id and s.running and service is not None
                and topology.service_of(s.id) == service and not topology.drifted(s.id)]
    source = scale.pick_template(siblings)
    return dataclasses.replace(d, source_id=source.id if source else c.id)


def with_scale_up(d: Decision, c: ContainerState, topology: Topology,
                  states: Sequence[ContainerState]) -> Decision:
    """The ladder's scale-up rung for container ``c`` (its Compose service's next replica,
    copied from the best running one, ``c`` itself when none), still named for ``c``: the
    rung is a step of ``c``'s incident, and its window watches ``c``."""
    service = topology.service_of(c.id)
    members = [s for s in states if service is not None and topology.service_of(s.id) == service]
    template = scale.pick_template(members) or c
    running = sum(1 for s in members if s.running)
    return dataclasses.replace(d, service=service, replicas=running + 1,
                               number=scale.next_number(members or [c]),
                               source_id=template.id)


def service_health(
    service: str,
    members: Sequence[Member],
    previous: ServiceHealth | None,
    now: float,
) -> ServiceHealth:
    """Fold the members' states into the service's health.

    previous: the last value, so ``since`` moves only when failing flips.
    """
    reasons = []
    for m in members:
        s = m.state
        if m.in_flight:
            reasons.append(f"{s.name} being acted on")
        elif m.failure in _DOWN:
            reasons.append(f"{s.name} {m.failure.value if m.failure else ''}".strip())
        elif s.running and s.health == "starting":
            reasons.append(f"{s.name} starting")
    failing = bool(reasons)
    since = previous.since if previous is not None and previous.failing == failing else now
    newest = max(members, key=lambda m: m.state.started_at) if members else None
    return ServiceHealth(
        service=service, failing=failing, since=since, reason=", ".join(reasons),
        started_at=newest.state.started_at if newest else 0.0,
        restarted_by="healthd" if newest is not None and newest.started_by_healthd else "",
    )
