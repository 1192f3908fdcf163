"""[swarm]: how healthd watches and tends a Swarm (see healthd.core.swarm).

Owns: the settings of the Swarm support, their defaults and their checks. Kept apart from
``core.config`` (which registers the section) so that module stays one screen per job.
Must never: read the engine or act on anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SwarmSettings:
    """[swarm]: services, tasks and nodes of the Swarm this engine manages."""

    enabled: bool = True  # watch and tend the Swarm when this engine is a manager
    relist_s: float = 10.0  # re-list services, tasks and nodes at least this often
    # Failed tasks of a rolling update (started after it) before healthd rolls it back,
    # when Swarm's own failure_action does not pause it first.
    rollback_failed_tasks: int = 1
    # An update Swarm calls completed while fewer tasks run than it wants and its new tasks
    # fail is rolled back too, within this many seconds of its start.
    update_watch_s: float = 300.0
    # A failed new task must be this old before healthd rolls back an update Swarm has not
    # paused itself (its failure_action: pause acts within its 5 s monitor by default).
    rollback_wait_s: float = 15.0
    replace_cooldown_s: float = 60.0  # at most one task of a service replaced per this
    drain_recovered_s: float = 120.0  # a drained node's host fine this long: back to active
    # A node is exhausted (and drained, see the node_exhausted row) when its host's memory
    # or disk use reaches this fraction, or a host forecast alarms.
    host_memory_critical: float = 0.95
    host_disk_critical: float = 0.95
    peer_port: int = 0  # the port peers' healthd listen on; 0: this healthd's own port
    peer_timeout_s: float = 2.0  # a peer that does not answer in this is unknown, not idle

    def validate(self) -> list[str]:
        """Human-readable problems, one per bad field; empty when the settings are usable."""
        problems = []
        for name in ("relist_s", "peer_timeout_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.rollback_failed_tasks < 1:
            problems.append(f"rollback_failed_tasks: must be an integer >= 1, got "
                            f"{self.rollback_failed_tasks}")
        for name in ("host_memory_critical", "host_disk_critical"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name}: a fraction, 0 < {name} <= 1, got "
                                f"{getattr(self, name)}")
        if not 0 <= self.peer_port <= 65535:
            problems.append(f"peer_port: a TCP port 1..65535, or 0 for this healthd's own "
                            f"port, got {self.peer_port}")
        return problems
