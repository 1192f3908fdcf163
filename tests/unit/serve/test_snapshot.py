"""serve.snapshot: an open incident lists the containers held for it."""

from __future__ import annotations

from healthd.core.model import Action, ContainerState, Decision
from healthd.core.topology import Topology
from healthd.observe.containers import Limits
from healthd.observe.memory import Tracked
from healthd.serve.snapshot import with_held_dependents


def tracked(cid: str, name: str, held: str | None = None) -> Tracked:
    t = Tracked(state=ContainerState(id=cid, name=name), limits=Limits(None, None, None))
    if held is not None:
        t.last_decision = Decision(Action.RESTART, cid, name, "dependency_failure.critical",
                                   suppressed_by=f"dependency: {held}")
    return t


def test_an_incident_lists_the_dependents_held_for_its_target() -> None:
    topo = Topology(service_by_id={"a": "shop/api", "w": "shop/web", "x": "shop/worker",
                                   "d": "shop/db"})
    items = [tracked("a", "shop_api_1"),
             tracked("w", "shop_web_1", "shop_web_1 not restarted: depends on shop/api, "
                     "failing since 12:00"),
             tracked("x", "shop_worker_1", "shop_worker_1 waits for shop/api to settle: "
                     "healthy for 1 s of 30 s"),
             tracked("d", "shop_db_1")]
    incidents = [{"id": "shop_api_1@1", "target": "shop_api_1"},
                 {"id": "shop_db_1@1", "target": "shop_db_1"}]
    api, db = with_held_dependents(incidents, items, topo)
    assert api["held_dependents"] == ["shop_web_1", "shop_worker_1"]
    assert db["held_dependents"] == []
