"""healthd.observe.blueprint: recorded compose inspect bodies in, create bodies out.

The templates are real inspects of compose v1 containers (tests/fixtures/engine/README.md):
``shop_web_1`` (network_mode none, limits, healthcheck, an anonymous and a named volume)
and ``shop_api_1`` (two user networks with aliases, a fixed and an ephemeral host port).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from healthd.core import labels
from healthd.observe import blueprint

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "engine"
T = 1_700_000_123.5


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"inspect_compose_shop_{name}_1.json").read_text()))


@pytest.fixture
def web() -> dict[str, Any]:
    return fixture("web")


@pytest.fixture
def api() -> dict[str, Any]:
    return fixture("api")


def test_replica_copies_config_and_host_config(web: dict[str, Any]) -> None:
    bp = blueprint.for_replica(web, name="shop_web_2", number=2, image="healthd-test/busybox:1",
                               created_at=T)
    body = bp.body
    assert bp.name == "shop_web_2" and bp.networks == ()
    for key in ("Cmd", "Entrypoint", "Env", "Healthcheck", "Volumes", "WorkingDir", "User"):
        assert body[key] == web["Config"][key], key
    hc = body["HostConfig"]
    assert (hc["NetworkMode"], hc["Memory"], hc["NanoCpus"]) == ("none", 64 * 2**20, 500_000_000)
    assert hc["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert hc["Binds"] == ["shop_data:/data:rw"]  # the named volume is shared, as compose does
    assert "ContainerIDFile" not in hc
    assert "NetworkingConfig" not in body


def test_replica_labels_carry_its_number_the_config_hash_and_healthds_mark(
    web: dict[str, Any],
) -> None:
    lab = blueprint.for_replica(web, name="shop_web_2", number=2, image="x",
                                created_at=T).body["Labels"]
    tpl = web["Config"]["Labels"]
    assert lab[labels.COMPOSE_NUMBER] == "2"
    assert lab[labels.COMPOSE_CONFIG_HASH] == tpl[labels.COMPOSE_CONFIG_HASH]
    assert (lab[labels.COMPOSE_PROJECT], lab[labels.COMPOSE_SERVICE]) == ("shop", "web")
    assert lab["com.docker.compose.oneoff"] == "False"
    assert (lab[labels.CREATED], lab[labels.CREATED_AT]) == ("true", "1700000123.500")
    assert web["Config"]["Labels"][labels.COMPOSE_NUMBER] == "1"  # the template is untouched


def test_replica_drops_the_hostname_the_engine_made_up_but_keeps_a_chosen_one(
    web: dict[str, Any], api: dict[str, Any]
) -> None:
    assert web["Config"]["Hostname"] == web["Id"][:12]
    assert "Hostname" not in blueprint.for_replica(web, name="n", number=2, image="x",
                                                   created_at=T).body
    api["Config"]["Hostname"] = "api-host"
    assert blueprint.for_replica(api, name="n", number=2, image="x",
                                 created_at=T).body["Hostname"] == "api-host"


def test_replica_gets_ephemeral_host_ports_for_the_fixed_ones(api: dict[str, Any]) -> None:
    hc = blueprint.for_replica(api, name="shop_api_2", number=2, image="x",
                               created_at=T).body["HostConfig"]
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": ""}],
                                  "9000/tcp": [{"HostIp": "", "HostPort": ""}]}


def test_replica_joins_every_user_network_with_the_templates_aliases(api: dict[str, Any]) -> None:
    bp = blueprint.for_replica(api, name="shop_api_2", number=2, image="x", created_at=T)
    # Compose made the service's first network (here: backend) the network mode.
    assert bp.body["HostConfig"]["NetworkMode"] == "shop_backend"
    endpoints = bp.body["NetworkingConfig"]["EndpointsConfig"]
    assert endpoints == {"shop_backend": {"Aliases": ["api-backend", "api"]}}
    assert bp.networks == (("shop_default", {"Aliases": ["api"]}),)


def test_replica_never_copies_static_addresses(api: dict[str, Any]) -> None:
    api["NetworkSettings"]["Networks"]["shop_default"]["IPAMConfig"] = {"IPv4Address": "10.0.0.9"}
    api["Config"]["MacAddress"] = "02:42:0a:00:00:09"
    bp = blueprint.for_replica(api, name="n", number=2, image="x", created_at=T)
    assert "IPAMConfig" not in dict(bp.networks)["shop_default"]
    assert "MacAddress" not in bp.body


def test_inspect_links_are_turned_back_into_create_links(web: dict[str, Any]) -> None:
    web["HostConfig"]["Links"] = ["/shop_db_1:/shop_web_1/db", "/shop_db_1:/shop_web_1/shop_db_1"]
    hc = blueprint.for_replica(web, name="n", number=2, image="x", created_at=T).body["HostConfig"]
    assert hc["Links"] == ["shop_db_1:db", "shop_db_1:shop_db_1"]


def test_anonymous_volumes_are_those_not_bound_by_name(web: dict[str, Any]) -> None:
    anon = blueprint.anonymous_volumes(web)
    assert [dest for _, dest in anon] == ["/cache"]
    assert len(anon[0][0]) == 64


def test_recreate_keeps_name_number_ownership_and_anonymous_volumes(web: dict[str, Any]) -> None:
    old = copy.deepcopy(web)
    old["Name"] = "/shop_web_3"
    old["Id"] = "f" * 64
    old["Config"]["Labels"].update({labels.COMPOSE_NUMBER: "3", labels.CREATED: "true",
                                    labels.CREATED_AT: "1700000000.000",
                                    labels.COMPOSE_CONFIG_HASH: "old-hash"})
    bp = blueprint.for_recreate(web, old, image="healthd-test/busybox:1")
    lab = bp.body["Labels"]
    assert bp.name == "shop_web_3"
    assert lab[labels.COMPOSE_NUMBER] == "3" and lab[labels.CREATED] == "true"
    assert lab[labels.CREATED_AT] == "1700000000.000"
    assert lab[labels.COMPOSE_CONFIG_HASH] == web["Config"]["Labels"][labels.COMPOSE_CONFIG_HASH]
    (vol, _), = blueprint.anonymous_volumes(old)
    assert bp.body["HostConfig"]["Binds"] == ["shop_data:/data:rw", f"{vol}:/cache:rw"]


def test_recreating_an_operator_replica_from_a_healthd_one_leaves_it_the_operators(
    web: dict[str, Any],
) -> None:
    tpl = copy.deepcopy(web)
    tpl["Id"] = "e" * 64
    tpl["Config"]["Labels"].update({labels.CREATED: "true", labels.CREATED_AT: "1"})
    lab = blueprint.for_recreate(tpl, web, image="x").body["Labels"]
    assert labels.CREATED not in lab and labels.CREATED_AT not in lab
    assert lab[labels.COMPOSE_NUMBER] == "1"


def test_recreate_keeps_the_host_ports_and_addresses_the_old_container_held(
    api: dict[str, Any],
) -> None:
    api["NetworkSettings"]["Networks"]["shop_default"]["IPAMConfig"] = {"IPv4Address": "10.0.0.9"}
    bp = blueprint.for_recreate(api, api, image="x")
    assert bp.body["HostConfig"]["PortBindings"]["80/tcp"] == [{"HostIp": "", "HostPort": "8080"}]
    assert dict(bp.networks)["shop_default"]["IPAMConfig"] == {"IPv4Address": "10.0.0.9"}
    assert bp.name == "shop_api_1"
