"""healthd.observe.swarm and .peers: recorded Swarm bodies into values, peer reports both ways.

The bodies in tests/fixtures/swarm/ were recorded from a real dockerd (see its README.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from healthd.core import swarm
from healthd.core.scale import ReplicaPressure
from healthd.core.swarm import HostReport
from healthd.observe import peers
from healthd.observe.swarm import service_from, view_from

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "swarm"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def view(services: str = "services-paused.json") -> swarm.SwarmView:
    return view_from(load("info-swarm.json"), load(services), load("tasks-paused.json"),
                     load("nodes.json"), at=0.0)


def test_a_paused_update_is_read_with_its_previous_spec() -> None:
    v = view()
    web = v.service_named("web")
    assert web is not None
    assert (web.mode, web.replicas, web.update_state, web.has_previous) == (
        swarm.REPLICATED, 2, "paused", True)
    assert web.version == 44 and "update paused due to failure" in web.update_message
    assert web.update_started_at > 1.7e9
    assert web.label("healthd.replicas.max") == "3"
    agent = v.service_named("agent")
    assert agent is not None and (agent.mode, agent.replicas, agent.update_state) == (
        swarm.GLOBAL, None, "")


def test_tasks_nodes_and_the_leader() -> None:
    v = view()
    assert v.is_leader and v.leader is not None and v.leader.hostname == "vm"
    assert v.leader.addr == "127.0.0.1" and v.leader.role == "manager"
    web = v.service_named("web")
    assert web is not None
    failed = [t for t in v.tasks_of(web.id) if t.state == "failed"]
    assert len(failed) == 2 and failed[0].error == "task: non-zero exit (3)"
    assert all(t.container_id and t.node_id == v.self_node for t in failed)
    assert v.running(web.id) == ()  # the update stopped the old tasks before it paused
    agent = v.service_named("agent")
    assert agent is not None and len(v.running(agent.id)) == 1


def test_the_recorded_paused_update_is_rolled_back_by_the_leader() -> None:
    from healthd.core.settings import Config

    plan = swarm.decide(swarm.Inputs(view(), Config(), now=2e9))
    (d,) = plan.decisions
    assert d.action.value == "rollback" and d.acts and d.target_name == "swarm/web"


def test_after_the_rollback_nothing_is_decided() -> None:
    from healthd.core.settings import Config

    v = view("services-rolled-back.json")
    web = v.service_named("web")
    assert web is not None and web.update_state == "rollback_completed"
    assert swarm.decide(swarm.Inputs(v, Config(), now=2e9)).decisions == ()


def test_a_job_and_a_broken_body_do_not_raise() -> None:
    job = service_from({"ID": "j", "Spec": {"Name": "once", "Mode": {"ReplicatedJob": {}}}})
    assert job.mode == swarm.JOB
    odd = service_from({"ID": "x", "Spec": {"Mode": {"Replicated": {"Replicas": "many"}}},
                        "Version": {"Index": "?"}})
    assert odd.replicas is None and odd.version == 0


def test_a_peer_report_round_trips() -> None:
    body = peers.report_json("n2", {"t1": ReplicaPressure("t1", cpu=0.9, memory=None,
                                                          forecast_alarm=True)},
                             HostReport(False, ok_since=12.5), at=100.0)
    rep = peers.report_from(json.loads(json.dumps(body)), at=101.0)
    assert rep is not None and rep.node == "n2" and rep.at == 101.0
    assert rep.tasks["t1"] == ReplicaPressure("t1", cpu=0.9, memory=None, forecast_alarm=True)
    assert rep.host == HostReport(False, "", 12.5)


def test_a_body_that_is_no_report_is_unknown() -> None:
    assert peers.report_from(["no"], at=1.0) is None
    assert peers.report_from({"node": "n"}, at=1.0) is None
    rep = peers.report_from({"tasks": {"t": {"cpu": "hot"}}, "host": {"exhausted": "yes"}}, 1.0)
    assert rep is not None and rep.tasks["t"].cpu is None and rep.host is None
