"""healthd.core.topology: container states (labels, network mode) in, a Topology out."""

from __future__ import annotations

import pytest

from healthd.core import config, settings, topology
from healthd.core.model import ContainerState

CFG = settings.Config()


def member(project: str, service: str, number: int = 1, cid: str | None = None,
           config_hash: str = "h1", **labels: str) -> ContainerState:
    base = {"com.docker.compose.project": project, "com.docker.compose.service": service,
            "com.docker.compose.container-number": str(number),
            "com.docker.compose.config-hash": config_hash}
    base.update({k.replace("__", "."): v for k, v in labels.items()})
    return ContainerState(id=cid or f"{service}{number}", name=f"{project}_{service}_{number}",
                          labels=tuple(sorted(base.items())))


def test_compose_labels_make_services_with_members_in_number_order() -> None:
    t = topology.build([member("shop", "api", 2), member("shop", "api", 1),
                        member("shop", "db")], {}, CFG)
    assert t.services() == ("shop/api", "shop/db")
    assert t.members("shop/api") == ("api1", "api2")
    assert t.service_of("db1") == "shop/db"


def test_a_one_off_container_is_not_a_member() -> None:
    t = topology.build([member("shop", "api", com__docker__compose__oneoff="True")], {}, CFG)
    assert t.service_of("api1") is None and t.services() == ()


def test_a_plain_container_is_its_own_node_and_labels_name_containers() -> None:
    app = ContainerState(id="a", name="app", labels=(("healthd.depends_on", "pg"),))
    pg = ContainerState(id="p", name="pg")
    t = topology.build([app, pg], {}, CFG)
    assert t.upstreams("app") == (("pg", ("pg",)),)


@pytest.mark.parametrize(("labels", "file", "cfg_deps", "want", "source"), [
    ({}, {"api": ("db",)}, None, "shop/db", "compose-file"),
    ({"com__docker__compose__depends_on": "cache:service_started:false"},
     {"api": ("db",)}, None, "shop/cache", "compose-v2"),
    ({"healthd__depends_on": "cache", "com__docker__compose__depends_on": "db:x:false"},
     {}, None, "shop/cache", "label"),
    ({"healthd__depends_on": "db"}, {}, ("shop/cache",), "shop/cache", "config"),
], ids=["file", "v2-over-file", "label-over-v2", "config-over-label"])
def test_the_highest_source_of_a_services_dependencies_wins(
        labels: dict[str, str], file: dict[str, tuple[str, ...]],
        cfg_deps: tuple[str, ...] | None, want: str, source: str) -> None:
    cfg = CFG
    if cfg_deps is not None:
        cfg = config.build({"dependencies": {"shop/api": {"depends_on": list(cfg_deps)}}})
    t = topology.build([member("shop", "api", **labels), member("shop", "db"),
                        member("shop", "cache")], {"shop": file}, cfg)
    assert [up for up, _ in t.upstreams("shop/api")] == [want]
    assert [e.source for e in t.edges] == [source]


def test_v2_restart_field_and_restart_with_label_make_followers() -> None:
    t = topology.build([
        member("shop", "api", com__docker__compose__depends_on="db:service_healthy:true"),
        member("shop", "web", healthd__restart_with="api"),
        member("shop", "db")], {}, CFG)
    assert t.restart_with("shop/api") == ("shop/db",)
    assert t.restart_with("shop/web") == ("shop/api",)
    assert t.upstreams("shop/web")[0][0] == "shop/api"


def test_junk_in_the_v2_label_is_a_problem_not_an_exception() -> None:
    t = topology.build([member("shop", "api", com__docker__compose__depends_on=":::,db:a:b:c")],
                       {}, CFG)
    assert any("cannot read" in p for p in t.problems)


def test_network_mode_of_another_container_is_an_implicit_follow_edge() -> None:
    gw = member("vpn", "gateway", cid="f" * 64)
    app = member("vpn", "app")
    app = ContainerState(id=app.id, name=app.name, labels=app.labels,
                         network_mode="container:" + "f" * 64)
    t = topology.build([gw, app], {}, CFG)
    assert t.restart_with("vpn/app") == ("vpn/gateway",)
    assert t.edges[0].source == "network-mode"


@pytest.mark.parametrize(("lo", "hi", "bounds", "problem"), [
    ("1", "3", topology.Bounds(1, 3), None),
    (None, "2", topology.Bounds(1, 2), None),
    ("x", "3", topology.Bounds(1, 3), "healthd.replicas.min='x'"),
    ("3", "2", topology.Bounds(3, None), "below min"),
    ("0", None, topology.Bounds(1, None), "healthd.replicas.min='0'"),
], ids=["both", "max-only", "junk-min", "max-below-min", "zero"])
def test_replicas_labels(lo: str | None, hi: str | None, bounds: topology.Bounds,
                         problem: str | None) -> None:
    labels = {}
    if lo is not None:
        labels["healthd__replicas__min"] = lo
    if hi is not None:
        labels["healthd__replicas__max"] = hi
    t = topology.build([member("shop", "api", **labels)], {}, CFG)
    assert t.bounds("shop/api") == bounds
    assert (problem is None) == (not t.problems)
    if problem:
        assert problem in t.problems[0]


def test_a_replica_whose_config_hash_differs_from_the_majority_has_drifted() -> None:
    t = topology.build([member("shop", "api", 1), member("shop", "api", 2),
                        member("shop", "api", 3, config_hash="old")], {}, CFG)
    assert t.drifted("api3") and not t.drifted("api1")
    tie = topology.build([member("shop", "api", 1), member("shop", "api", 2, config_hash="b")],
                         {}, CFG)
    assert not tie.drifted("api1") and not tie.drifted("api2")


def test_cycles_and_missing_services_show_in_problems_and_json() -> None:
    t = topology.build([member("loop", "a", healthd__depends_on="b"),
                        member("loop", "b", healthd__depends_on="a,ghost")], {}, CFG)
    assert any("cycle" in p for p in t.problems)
    assert any("loop/ghost, which does not exist" in p for p in t.problems)
    js = t.as_json()
    assert {n["service"] for n in js["nodes"]} == {"loop/a", "loop/b"}
    assert js["problems"] == list(t.problems)
