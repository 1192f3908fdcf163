"""The stacks as the engine describes them: services, members, dependencies (pure).

Owns: building one ``Topology`` value from the containers' states (their
``com.docker.compose.*`` and ``healthd.*`` labels, their network mode), the dependencies
read from compose files, and config.toml. Sources of a service's dependencies, highest
first; a higher one replaces the lower ones for that service: config.toml,
``healthd.depends_on``, Compose v2's ``com.docker.compose.depends_on``, the compose file.
``network_mode: service:X`` (``container:<id>`` to the engine) is an implicit edge that is
also restart_with. Must never: do I/O or raise on a bad label; problems are reported.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthd.core import graph, labels
from healthd.core.model import ContainerState
from healthd.core.settings import Config

# project -> service -> the services its compose file says it depends on
FileDeps = Mapping[str, Mapping[str, tuple[str, ...]]]


@dataclass(frozen=True)
class Bounds:
    """How far healthd may scale a service; ``max`` None: not at all."""

    min: int = 1
    max: int | None = None


@dataclass(frozen=True)
class Edge:
    """One dependency: ``dependent`` needs ``upstream``; ``source`` says who said so."""

    dependent: str
    upstream: str
    source: str  # config, label, compose-v2, compose-file, network-mode
    restart_with: bool = False


@dataclass(frozen=True)
class Topology:
    """Services (``project/service``, or a lone container's name) and their dependencies.

    A value: what its methods derive (the order, each service's upstreams) is computed once
    per instance and kept with it, since the daemon asks for them every sweep.
    """

    service_by_id: Mapping[str, str] = field(default_factory=dict)
    members_by_service: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    edges: tuple[Edge, ...] = ()
    graph: graph.Graph = field(default_factory=graph.Graph)
    follows: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bounds_by_service: Mapping[str, Bounds] = field(default_factory=dict)
    drifted_ids: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()

    def service_of(self, container_id: str) -> str | None:
        """The service key of a container; None when it is in no stack or graph."""
        return self.service_by_id.get(container_id)

    def services(self) -> tuple[str, ...]:
        """Every service key, sorted."""
        return self._services

    @functools.cached_property
    def _services(self) -> tuple[str, ...]:
        return tuple(sorted(self.members_by_service))

    def members(self, service: str) -> tuple[str, ...]:
        """Container ids of a service, by container number."""
        return self.members_by_service.get(service, ())

    def upstreams(self, service: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """What ``service`` depends on, transitively, nearest first, with the chain."""
        found = self._upstreams.get(service)
        if found is None:
            found = self._upstreams[service] = self.graph.upstreams(service)
        return found

    @functools.cached_property
    def _upstreams(self) -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
        return {}

    def restart_with(self, service: str) -> tuple[str, ...]:
        """Upstreams whose restarts ``service`` follows."""
        return self.follows.get(service, ())

    def order(self) -> tuple[str, ...]:
        """Every service, dependencies first."""
        return self._order

    @functools.cached_property
    def _order(self) -> tuple[str, ...]:
        return self.graph.order(self.members_by_service)

    def bounds(self, service: str) -> Bounds:
        """Scaling bounds; ``max`` None when the service may not be scaled."""
        return self.bounds_by_service.get(service, Bounds())

    def drifted(self, container_id: str) -> bool:
        """True when its compose config hash differs from most of its siblings'."""
        return container_id in self.drifted_ids

    def as_json(self) -> dict[str, Any]:
        """For /status: nodes with members, edges with their source, problems."""
        return {
            "nodes": [{"service": s, "members": list(m)}
                      for s, m in sorted(self.members_by_service.items())],
            "edges": [{"dependent": e.dependent, "upstream": e.upstream, "source": e.source,
                       "restart_with": e.restart_with} for e in self.edges],
            "problems": list(self.problems),
        }


def service_key(c: ContainerState) -> str | None:
    """``project/service`` for a compose member, ``swarm/name`` for a Swarm task, else the
    container's name; None for a compose one-off (``docker-compose run``)."""
    d = dict(c.labels)
    if d.get(labels.COMPOSE_ONEOFF, "").lower() == "true":
        return None
    if labels.SWARM_SERVICE in d:
        return f"swarm/{d[labels.SWARM_SERVICE]}"
    if labels.COMPOSE_SERVICE in d:
        return f"{d.get(labels.COMPOSE_PROJECT, '')}/{d[labels.COMPOSE_SERVICE]}"
    return c.name


def _resolve(name: str, project: str | None) -> str:
    name = name.strip()
    return name if "/" in name or project is None else f"{project}/{name}"


def _names(raw: str) -> list[str]:
    return [n.strip() for n in raw.split(",") if n.strip()]


def _v2_depends_on(raw: str, project: str | None) -> tuple[list[str], list[str], list[str]]:
    """Compose v2's ``db:service_healthy:false,...``: (depends, restart_with, problems)."""
    deps, follow, problems = [], [], []
    for item in _names(raw):
        parts = item.split(":")
        if not parts[0] or len(parts) > 3:
            problems.append(f"label {labels.COMPOSE_DEPENDS_ON}={raw!r}: cannot read {item!r}")
            continue
        deps.append(_resolve(parts[0], project))
        if len(parts) == 3 and parts[2].strip().lower() == "true":
            follow.append(_resolve(parts[0], project))
    return deps, follow, problems


def _int_label(d: Mapping[str, str], key: str, problems: list[str]) -> int | None:
    raw = d.get(key)
    if raw is None:
        return None
    try:
        v = int(raw.strip())
    except ValueError:
        v = 0
    if v < 1:
        problems.append(f"label {key}={raw!r} ignored: expected a whole number >= 1")
        return None
    return v


def build(states: Sequence[ContainerState], file_deps: FileDeps, cfg: Config) -> Topology:
    """The topology of what the engine runs now."""
    problems: list[str] = []
    by_id: dict[str, str] = {}
    members: dict[str, list[tuple[int, str]]] = {}
    project_of: dict[str, str | None] = {}
    by_source: dict[str, dict[str, list[str]]] = {}  # service -> source -> upstreams
    follow: dict[str, set[str]] = {}
    bounds_raw: dict[str, tuple[int | None, int | None]] = {}
    hashes: dict[str, list[tuple[str, str]]] = {}
    for c in states:
        svc = service_key(c)
        if svc is None:
            continue
        d = dict(c.labels)
        project = d.get(labels.COMPOSE_PROJECT) if labels.COMPOSE_SERVICE in d else None
        by_id[c.id] = svc
        project_of[svc] = project
        number = d.get(labels.COMPOSE_NUMBER, "")
        ordinal = int(number) if number.isascii() and number.isdigit() else 0
        members.setdefault(svc, []).append((ordinal, c.id))
        if labels.COMPOSE_CONFIG_HASH in d:
            hashes.setdefault(svc, []).append((c.id, d[labels.COMPOSE_CONFIG_HASH]))
        src = by_source.setdefault(svc, {})
        if labels.DEPENDS_ON in d:
            src["label"] = [_resolve(n, project) for n in _names(d[labels.DEPENDS_ON])]
        if labels.COMPOSE_DEPENDS_ON in d:
            deps, fol, errs = _v2_depends_on(d[labels.COMPOSE_DEPENDS_ON], project)
            src["compose-v2"] = deps
            follow.setdefault(svc, set()).update(fol)
            problems += errs
        if labels.RESTART_WITH in d:
            follow.setdefault(svc, set()).update(
                _resolve(n, project) for n in _names(d[labels.RESTART_WITH]))
        lo = _int_label(d, labels.REPLICAS_MIN, problems)
        hi = _int_label(d, labels.REPLICAS_MAX, problems)
        if lo is not None or hi is not None:
            bounds_raw[svc] = (lo, hi)
    for svc, project in project_of.items():
        if project is not None and project in file_deps:
            named = file_deps[project].get(svc.split("/", 1)[1], ())
            if named:
                by_source[svc]["compose-file"] = [_resolve(n, project) for n in named]
    for spec in cfg.dependencies:
        src = by_source.setdefault(spec.service, {})
        if spec.depends_on is not None:
            src["config"] = list(spec.depends_on)
        follow.setdefault(spec.service, set()).update(spec.restart_with)
        if spec.replicas_min is not None or spec.replicas_max is not None:
            lo, hi = bounds_raw.get(spec.service, (None, None))
            bounds_raw[spec.service] = (spec.replicas_min or lo, spec.replicas_max or hi)
    edges = _edges(by_source, follow, _network_edges(states, by_id))
    g = graph.build(members, [(e.dependent, e.upstream) for e in edges])
    kept = {(down, up) for down, ups in g.needs.items() for up in ups}
    follows = {svc: tuple(sorted(up for up in ups if (svc, up) in kept))
               for svc, ups in _follows(edges).items()}
    return Topology(
        service_by_id=by_id,
        members_by_service={s: tuple(cid for _, cid in sorted(m)) for s, m in members.items()},
        edges=tuple(e for e in edges if (e.dependent, e.upstream) in kept),
        graph=g,
        follows={s: f for s, f in follows.items() if f},
        bounds_by_service=_bounds(bounds_raw, problems),
        drifted_ids=_drift(hashes),
        problems=tuple(problems) + g.problems,
    )


_PRECEDENCE = ("config", "label", "compose-v2", "compose-file")


def _edges(by_source: Mapping[str, Mapping[str, list[str]]], follow: Mapping[str, set[str]],
           network: Iterable[Edge]) -> list[Edge]:
    edges: dict[tuple[str, str], Edge] = {}
    for svc, sources in sorted(by_source.items()):
        best = next((s for s in _PRECEDENCE if s in sources), None)
        for up in sources.get(best, []) if best else []:
            edges[(svc, up)] = Edge(svc, up, best or "", up in follow.get(svc, set()))
        for up in sorted(follow.get(svc, set())):
            if (svc, up) not in edges:  # restart_with alone implies the dependency
                edges[(svc, up)] = Edge(svc, up, "label", True)
    for e in network:
        edges[(e.dependent, e.upstream)] = e
    return sorted(edges.values(), key=lambda e: (e.dependent, e.upstream))


def _follows(edges: Iterable[Edge]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in edges:
        if e.restart_with:
            out.setdefault(e.dependent, set()).add(e.upstream)
    return out


def _network_edges(states: Sequence[ContainerState], by_id: Mapping[str, str]) -> list[Edge]:
    """``network_mode: service:X``: the engine names the other container by id."""
    out = []
    for c in states:
        mode = c.network_mode
        if not mode.startswith("container:") or c.id not in by_id:
            continue
        other = mode.split(":", 1)[1]
        up = by_id.get(other) or next((s for cid, s in by_id.items()
                                       if cid.startswith(other)), None)
        if up is not None and up != by_id[c.id]:
            out.append(Edge(by_id[c.id], up, "network-mode", True))
    return out


def _bounds(raw: Mapping[str, tuple[int | None, int | None]],
            problems: list[str]) -> dict[str, Bounds]:
    out = {}
    for svc, (lo, hi) in raw.items():
        lo = lo or 1
        if hi is not None and hi < lo:
            problems.append(f"{svc}: replicas max {hi} is below min {lo}; not scaled")
            hi = None
        out[svc] = Bounds(lo, hi)
    return out


def _drift(hashes: Mapping[str, list[tuple[str, str]]]) -> frozenset[str]:
    """Members whose config hash differs from the most common one of their service."""
    out: set[str] = set()
    for members in hashes.values():
        counts = Counter(h for _, h in members)
        if len(counts) < 2:
            continue
        (top, n), *rest = counts.most_common()
        if rest and rest[0][1] == n:
            continue  # no majority: nothing to call drifted
        out.update(cid for cid, h in members if h != top)
    return frozenset(out)
