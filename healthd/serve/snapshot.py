"""The /status snapshot: what ``healthd status`` and the dashboard read.

Owns: the JSON shape of /status, built from the daemon's memory and the ledger's last
actions. Must never: decide or change anything; it only reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from healthd.observe.memory import Tracked
from healthd.store.ledger import Ledger


def container_rows(items: Iterable[Tracked], ledger: Ledger) -> list[dict[str, Any]]:
    """One row per watched container, sorted by name."""
    rows = []
    for t in sorted(items, key=lambda x: x.state.name):
        last = ledger.last_action_for(t.state.name)
        rows.append({
            "id": t.state.id[:12], "name": t.state.name, "status": t.state.status,
            "health": t.assessment.health.value, "reasons": list(t.assessment.reasons),
            "decision": t.last_decision.explain() if t.last_decision else None,
            "last_action": last.explanation if last else None,
            "last_action_outcome": last.outcome if last else None,
            "last_action_at": last.at if last else None,
            "forecasts": [f.__dict__ | {"resource": f.resource.value} for f in t.forecasts],
            "usage": t.usage.__dict__ if t.usage else None,
        })
    return rows
