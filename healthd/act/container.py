"""Actions on one container: restart, recreate, stop (quarantine).

Owns: turning a container Decision into the engine call that carries it out.
Must never: decide, record or retry; the runner records intent and outcome, and a failure
goes back through the guards as ``ActionFailed(retryable=...)``.
"""

from __future__ import annotations

from healthd.core.model import Decision
from healthd.observe.engine import Engine


def restart(eng: Engine, d: Decision) -> None:
    """Restart the decision's target with its stop timeout; raises ActionFailed."""
    eng.restart(d.target_id, d.stop_timeout_s)


def recreate(eng: Engine, d: Decision) -> str:
    """Recreate the target from ``d.source_id``'s configuration (itself when None); returns
    the new container's id (its verification window watches that one)."""
    return eng.recreate(d.target_id, d.source_id or d.target_id, d.stop_timeout_s)


def stop(eng: Engine, d: Decision) -> None:
    """Stop the target and leave it stopped (label action=stop); raises ActionFailed."""
    eng.stop(d.target_id, d.stop_timeout_s)
