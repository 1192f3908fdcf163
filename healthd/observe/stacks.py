"""The stacks as last observed: the topology value and each service's health (shell state).

Owns: rebuilding the pure ``Topology`` from the containers healthd tracks (and the compose
files their labels name), logging its problems once when they change, and folding the
members' assessments into one ``ServiceHealth`` per service. Must never: decide; the core's
stack rules read what this keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from healthd.core import stack, topology
from healthd.core.config import Config
from healthd.observe import composefile
from healthd.observe.memory import Tracked

log = logging.getLogger("healthd")


class Stacks:
    """Topology and service health, refreshed by the main loop."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.files = composefile.Reader()
        self.topology = topology.build((), {}, cfg)
        self.health: dict[str, stack.ServiceHealth] = {}
        self._problems: tuple[str, ...] = ()

    def rebuild(self, items: Iterable[Tracked]) -> None:
        """A fresh topology from what is tracked now (each sweep: labels can change)."""
        states = [t.state for t in items if t.inspected and t.state.id != "host"]
        deps = self.files.dependencies(states) if self.cfg.stacks.compose_files else {}
        self.topology = topology.build(states, deps, self.cfg)
        problems = tuple(self.topology.problems) + tuple(self.files.problems)
        if problems != self._problems:
            for p in problems:
                if p not in self._problems:
                    log.warning("stack topology: %s", p)
            self._problems = problems
        known = set(self.topology.services())
        for gone in set(self.health) - known:
            del self.health[gone]

    def problems(self) -> tuple[str, ...]:
        """Cycles, missing services and bad labels, as last logged."""
        return self._problems

    def refresh(self, service: str, members: Iterable[stack.Member], now: float) -> None:
        """Fold ``service``'s members into its health."""
        self.health[service] = stack.service_health(
            service, list(members), self.health.get(service), now)
