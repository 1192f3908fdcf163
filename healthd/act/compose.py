"""Actions on a compose service: add a replica, remove one healthd added.

Owns: turning a scale Decision into the engine calls that carry it out (the engine makes a
replica the way Compose v1 would: ``healthd.observe.engine.create_replica``).
Must never: decide which replica or how many; the pure scaler has done that.
"""

from __future__ import annotations

from healthd.core.model import Decision
from healthd.observe.engine import ActionFailed, Engine


def scale_up(eng: Engine, d: Decision) -> None:
    """Create replica ``d.number`` from ``d.source_id``; raises ActionFailed."""
    if d.number is None or d.source_id is None:
        raise ActionFailed(f"scale up {d.target_name}: no replica number or template",
                           retryable=False)
    eng.create_replica(d.source_id, d.number)


def scale_down(eng: Engine, d: Decision) -> None:
    """Stop and remove ``d.target_id``, a replica healthd created."""
    eng.remove_replica(d.target_id, d.stop_timeout_s)
