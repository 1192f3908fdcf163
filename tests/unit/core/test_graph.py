"""healthd.core.graph: edges in, a validated graph with chains and an order out."""

from __future__ import annotations

import pytest

from healthd.core import graph

SHOP = ("web", "api", "db", "cache")


def test_upstreams_are_transitive_nearest_first_with_their_chain() -> None:
    g = graph.build(SHOP, [("web", "api"), ("api", "db"), ("api", "cache")])
    assert g.upstreams("web") == (("api", ("api",)), ("cache", ("api", "cache")),
                                  ("db", ("api", "db")))
    assert g.upstreams("db") == ()
    assert g.downstreams("db") == ("api", "web")


def test_order_puts_dependencies_first_and_is_deterministic() -> None:
    g = graph.build(SHOP, [("web", "api"), ("api", "db"), ("api", "cache")])
    assert g.order() == ("cache", "db", "api", "web")
    assert g.order(["web", "db"]) == ("db", "web")


@pytest.mark.parametrize(("edges", "cycle"), [
    ([("api", "api")], "api -> api"),
    ([("api", "db"), ("db", "api")], "api -> db -> api"),
    ([("web", "api"), ("api", "db"), ("db", "web")], "api -> db -> web -> api"),
], ids=["self", "two", "three"])
def test_a_cycle_is_reported_and_broken_never_looped_on(
        edges: list[tuple[str, str]], cycle: str) -> None:
    g = graph.build(SHOP, edges)
    assert any(cycle in p for p in g.problems), g.problems
    for node in SHOP:
        assert node not in [up for up, _ in g.upstreams(node)]
    assert sorted(g.order()) == sorted(SHOP)


def test_an_edge_to_a_missing_node_is_reported_and_dropped() -> None:
    g = graph.build(SHOP, [("api", "ghost"), ("api", "db")])
    assert g.problems == ("api depends on ghost, which does not exist",)
    assert g.upstreams("api") == (("db", ("db",)),)
