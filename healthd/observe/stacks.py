"""The stacks as last observed: the topology value and each service's health (shell state).

Owns: rebuilding the pure ``Topology`` from the containers healthd tracks (and the compose
files their labels name), logging its problems once when they change, and folding the
members' assessments into one ``ServiceHealth`` per service. Must never: decide; the core's
stack rules read what this keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from healthd.core import scale, stack, topology
from healthd.core.model import ActionRecord, ContainerState, Failure, Resource
from healthd.core.settings import Config
from healthd.observe import composefile
from healthd.observe.memory import Memory, Tracked

log = logging.getLogger("healthd")

Fingerprint = tuple[str, str, tuple[tuple[str, str], ...], str]


class Stacks:
    """Topology and service health, refreshed by the main loop."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.files = composefile.Reader()
        self.topology = topology.build((), {}, cfg)
        self.health: dict[str, stack.ServiceHealth] = {}
        self.windows: dict[str, scale.Window] = {}  # per scalable service: recommendations
        # Per scalable service, what the last sweep's pressure asked for: the verdict on a
        # scale step reads it (still asking for more: the pressure is not relieved).
        self.asked: dict[str, scale.Recommendation] = {}
        self._problems: tuple[str, ...] = ()
        # What the topology was built from: everything of a container that ``topology.build``
        # reads, and the compose files' dependencies.
        self._built_from: list[Fingerprint] = []
        self._built_deps: topology.FileDeps = {}
        self._compose_files: dict[str, list[str]] = {}

    def rebuild(self, items: Iterable[Tracked]) -> None:
        """The topology of what is tracked now (each sweep: labels can change).

        Built again only when a container came, went, or changed what the topology reads
        (its id, name, labels, network mode), or a compose file's dependencies changed; an
        idle sweep keeps the same value.
        """
        states = [t.state for t in items if t.inspected and t.state.id != "host"]
        key = [(c.id, c.name, c.labels, c.network_mode) for c in states]
        changed = key != self._built_from
        deps: topology.FileDeps = {}
        if self.cfg.stacks.compose_files:
            if changed:
                self._compose_files = composefile.files(states)
            deps = self.files.read(self._compose_files)  # a stat per file; parsed on change
        if changed or deps != self._built_deps:
            self.topology = topology.build(states, deps, self.cfg)
            self._built_from, self._built_deps = key, deps
        problems = tuple(self.topology.problems) + tuple(self.files.problems)
        if problems != self._problems:
            for p in problems:
                if p not in self._problems:
                    log.warning("stack topology: %s", p)
            self._problems = problems
        known = self.topology.members_by_service
        for gone in [s for s in self.health if s not in known]:
            del self.health[gone]
        for gone in [s for s in self.windows if s not in known]:
            del self.windows[gone]

    def problems(self) -> tuple[str, ...]:
        """Cycles, missing services and bad labels, as last logged."""
        return self._problems

    def refresh(self, service: str, members: Iterable[stack.Member], now: float) -> None:
        """Fold ``service``'s members into its health."""
        self.health[service] = stack.service_health(
            service, list(members), self.health.get(service), now)


@dataclass(frozen=True)
class ScaleCandidate:
    """A scale verdict for one service, with the container the action works on."""

    service: str
    verdict: scale.ScaleVerdict
    target: ContainerState  # the template (up) or the replica to remove (down)
    number: int | None  # up: the new replica's container number


def scale_candidates(stacks: Stacks, memory: Memory, history: Sequence[ActionRecord],
                     busy: frozenset[str], now: float) -> list[ScaleCandidate]:
    """Scale verdicts for every compose service that allows scaling (replicas.max set)."""
    out = []
    topo, settings = stacks.topology, stacks.cfg.scaling
    for svc in topo.services():
        bounds = topo.bounds(svc)
        if bounds.max is None or svc.startswith("swarm/") or "/" not in svc:
            continue  # not scalable here: no bounds, a Swarm service, or a lone container
        if svc in busy:
            continue  # one scale step at a time; the next tick sees its result
        members = [t for t in (memory.get(c) for c in topo.members(svc)) if t and t.inspected]
        states = [t.state for t in members]
        running = [t for t in members if t.state.running]
        pressure = [scale.ReplicaPressure(
            t.state.name,
            cpu=t.usage.cpu_fraction if t.usage else None,
            memory=t.usage.mem_fraction if t.usage else None,
            forecast_alarm=any(f.alarm for f in t.forecasts
                               if f.resource in (Resource.MEMORY, Resource.CPU)))
            for t in running]
        mine = [r for r in history if r.container == svc]
        b = scale.Bounds(bounds.min, bounds.max, scale.operator_count(states))
        rec = scale.recommend(pressure, len(running), settings)
        stacks.asked[svc] = rec
        verdict = scale.scale(pressure, len(running), b, stacks.windows.get(svc, ()), mine,
                              settings, now, rec)
        stacks.windows[svc] = scale.remember(stacks.windows.get(svc, ()), now, rec.desired,
                                             settings)
        if verdict is None:
            continue
        if verdict.failure is Failure.SUSTAINED_PRESSURE:
            target, number = scale.pick_template(states), scale.next_number(states)
        else:
            target, number = scale.to_remove(states), None
        if target is not None:
            out.append(ScaleCandidate(svc, verdict, target, number))
    return out
