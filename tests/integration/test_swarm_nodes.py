"""A real Swarm of three managers on one machine (tests.swarm.MultiNode), one healthd per
node, each listening on its node's address with the same port and token: the leader's
healthd scales a service whose tasks run on another node from that node's pressure, and
no other healthd acts; a node whose healthd does not answer is unknown, never idle; an
exhausted node is drained and made active after it recovers; after the leader's engine
stops, the new leader's healthd honours the cooldown the old one started."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine import EngineStartError, engine_unavailable, wait_for
from tests.integration.healthd_proc import Healthd, free_port, merge
from tests.swarm import MultiNode

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

TOKEN = "swarm-peers-token-0123456789"
BASE = {
    "daemon": {"token": TOKEN},
    "watch": {"stats_interval_s": 1.0},
    "swarm": {"relist_s": 1.0, "peer_timeout_s": 1.0, "drain_recovered_s": 5.0},
    "scaling": {"scale_up_window_s": 2.0, "scale_down_window_s": 6.0, "cooldown_s": 1.0,
                "target_cpu": 0.5},
}
HOT = ("sh", "-c", "while :; do if [ -e /shared/idle ]; then sleep 1; fi; done")


@pytest.fixture(scope="module")
def swarm3() -> Iterator[MultiNode]:
    nodes = MultiNode()
    try:
        yield nodes.start()
    except EngineStartError as exc:
        engine_unavailable(str(exc))
    finally:
        nodes.stop()


class Fleet:
    """One healthd per live node, all on one port, each in its own folder."""

    def __init__(self, nodes: MultiNode, tmp: Path) -> None:
        self.nodes, self.tmp = nodes, tmp
        self.port = free_port()
        self.procs: dict[int, Healthd] = {}

    def start(self, i: int, cfg: dict[str, Any] | None = None) -> Healthd:
        work = self.tmp / f"node{i + 1}-{len(list(self.tmp.glob(f'node{i + 1}-*')))}"
        work.mkdir()
        h = Healthd(self.nodes.engines[i], work, cfg=merge(BASE, cfg or {}),
                    listen_host=self.nodes.ADDRS[i], port=self.port, token=TOKEN)
        self.procs[i] = h.start()
        return h

    def stop(self, i: int) -> None:
        self.procs.pop(i).stop()

    def stop_all(self) -> None:
        for i in list(self.procs):
            self.stop(i)


@pytest.fixture
def fleet(swarm3: MultiNode, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(swarm3, tmp_path)
    yield f
    f.stop_all()
    api = swarm3.alive()[0].client.api
    for s in api.services():
        api.remove_service(s["ID"])
    for e in swarm3.alive():
        wait_for(lambda e=e: not e.client.api.containers(
            all=True, filters={"label": "com.docker.swarm.task.id"}), 60,
            what="task containers gone")


def acted(h: Healthd, action: str) -> list[dict[str, Any]]:
    return [r for r in h.rows() if r["action"] == action and r["outcome"] != "skipped"]


def verdicts(h: Healthd) -> dict[str, str]:
    """The final verdicts on the leader's node actions (drain, activate), from its state."""
    db = sqlite3.connect(f"file:{h.state}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT action, kind FROM verdicts WHERE action IN "
                          "('drain', 'activate') AND kind != 'pending'").fetchall()
    except sqlite3.OperationalError:
        return {}  # no verdicts table yet
    finally:
        db.close()
    return {str(a): str(k) for a, k in rows}


def service(nodes: MultiNode, name: str) -> dict[str, Any]:
    return dict(nodes.alive()[0].client.api.inspect_service(name))


def replicas(nodes: MultiNode, name: str) -> int:
    return int(service(nodes, name)["Spec"]["Mode"]["Replicated"]["Replicas"])


def running_on(nodes: MultiNode, name: str) -> list[str]:
    api = nodes.alive()[0].client.api
    host = {n["ID"]: n["Description"]["Hostname"] for n in api.nodes()}
    return sorted(host.get(t.get("NodeID", ""), "?") for t in api.tasks(filters={"service": name})
                  if t["Status"]["State"] == "running" and t["DesiredState"] == "running")


def create(nodes: MultiNode, name: str, *args: str, command: tuple[str, ...]) -> None:
    nodes.engines[0].cli("service", "create", "-d", "--name", name, "--stop-grace-period", "1s",
                         *args, nodes.engines[0].image, *command)


def test_the_leader_scales_from_another_nodes_pressure_and_no_other_healthd_acts(
    swarm3: MultiNode, fleet: Fleet, tmp_path: Path
) -> None:
    lead = swarm3.leader()
    assert lead is swarm3.engines[0], "node1 leads after init"
    shared = tmp_path / "shared"
    shared.mkdir()
    name = "should-scale-on-node2-by-the-leader"
    create(swarm3, name, "--replicas", "1", "--limit-cpu", "0.2", "--constraint",
           "node.hostname==node2", "--label", "healthd.replicas.max=2",
           "--mount", f"type=bind,src={shared},dst=/shared", command=HOT)
    wait_for(lambda: running_on(swarm3, name) == ["node2"], 60, what="a task on node2")
    hs = [fleet.start(i) for i in range(3)]
    wait_for(lambda: running_on(swarm3, name) == ["node2", "node2"], 90,
             what=f"2 tasks on node2\n{hs[0].log()}")
    assert service(swarm3, name)["Spec"]["Labels"]["healthd.swarm.scaled_by"] == "node1"
    assert len(acted(hs[0], "scale_up")) == 1
    for h in hs[1:]:
        # Followers decide too (held: not-leader, or the scaler's own at-max once the
        # leader's step shows), and never act.
        assert acted(h, "scale_up") == [] and acted(h, "scale_down") == []
        wait_for(lambda h=h: (h.status()["swarm"] or {}).get("is_leader") is False, 10,
                 what="a follower's status")
    nodes = {n["node"]: n for n in hs[0].status()["swarm"]["nodes"]}
    assert nodes["node2"]["peer"] == "answering" and nodes["node1"]["leader"]

    # node2's healthd stops answering; its tasks go idle: unknown, so never scaled down.
    fleet.stop(1)
    (shared / "idle").write_text("")
    wait_for(lambda: {n["node"]: n for n in hs[0].status()["swarm"]["nodes"]}["node2"]["peer"]
             == "unknown", 20, what="node2 unknown")
    hs[0].wait_sweeps(10)  # 10 s: more than the 6 s down window
    assert replicas(swarm3, name) == 2 and acted(hs[0], "scale_down") == []
    # Back: its idle tasks are known again and the leader scales down after the window.
    fleet.start(1)
    wait_for(lambda: replicas(swarm3, name) == 1, 60, what=f"back to 1\n{hs[0].log()}")
    assert len(acted(hs[0], "scale_down")) == 1
    assert all(acted(h, "scale_down") == [] for h in (fleet.procs[1], hs[2]))


def test_an_exhausted_node_is_drained_then_made_active_after_it_recovers(
    swarm3: MultiNode, fleet: Fleet
) -> None:
    name = "should-move-off-node3"
    create(swarm3, name, "--replicas", "3", "--replicas-max-per-node", "2",
           command=("sleep", "100000"))
    wait_for(lambda: len(running_on(swarm3, name)) == 3, 60, what="3 tasks")
    leader = fleet.start(0, {"verify": {"drain": 5.0, "activate": 5.0}})
    fleet.start(1)
    # node3's healthd sees its host memory as exhausted (any use is over 1 %).
    fleet.start(2, {"swarm": {"host_memory_critical": 0.01}})
    t0 = time.monotonic()
    api = swarm3.engines[0].client.api

    def node3() -> dict[str, Any]:
        return next(n for n in api.nodes() if n["Description"]["Hostname"] == "node3")

    wait_for(lambda: node3()["Spec"]["Availability"] == "drain", 60,
             what=f"node3 drained\n{leader.log()}")
    drained_s = time.monotonic() - t0
    assert node3()["Spec"]["Labels"]["healthd.swarm.drained_by"] == "node1"
    wait_for(lambda: len(running_on(swarm3, name)) == 3 and "node3" not in running_on(
        swarm3, name), 60, what="its task elsewhere")
    rows = acted(leader, "drain")
    assert len(rows) == 1 and rows[0]["rule"] == "node_exhausted.critical"
    assert "host memory" in rows[0]["explanation"]
    # Only one node at a time, and node3 stays drained while its host is exhausted.
    leader.wait_sweeps(6)
    assert node3()["Spec"]["Availability"] == "drain"
    # node3 recovers (its healthd now sees a normal host): active after the 5 s window.
    fleet.stop(2)
    fleet.start(2)
    wait_for(lambda: node3()["Spec"]["Availability"] == "active", 60,
             what=f"node3 active\n{leader.log()}")
    assert "healthd.swarm.drained_by" not in (node3()["Spec"].get("Labels") or {})
    assert len(acted(leader, "activate")) == 1
    # Did each hold? The drain never relieved a host that counts any use as exhaustion;
    # the node made active stayed fine.
    kinds = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(verdicts(leader)), 30,
                     what=f"verdicts on the drain and the activation\n{leader.log()}")
    assert kinds == {"drain": "not_fixed", "activate": "fixed"}, kinds
    print(f"\nexhausted node drained after {drained_s:.1f} s")


def test_after_the_leader_stops_the_new_leader_honours_the_old_ones_cooldown(
    swarm3: MultiNode, fleet: Fleet
) -> None:
    cooldown = 40.0
    cfg = {"scaling": {"cooldown_s": cooldown}}
    name = "should-scale-again-only-after-the-cooldown"
    create(swarm3, name, "--replicas", "1", "--limit-cpu", "0.2", "--constraint",
           "node.hostname==node2", "--label", "healthd.replicas.max=3",
           command=("sh", "-c", "while :; do :; done"))
    wait_for(lambda: running_on(swarm3, name) == ["node2"], 60, what="a task on node2")
    assert swarm3.leader() is swarm3.engines[0]
    hs = [fleet.start(i, cfg) for i in range(3)]
    wait_for(lambda: replicas(swarm3, name) == 2, 60, what=f"2 replicas\n{hs[0].log()}")
    first_at = float(service(swarm3, name)["Spec"]["Labels"]["healthd.swarm.scaled_at"])
    # The leader's healthd and engine stop right after its scale.
    fleet.stop(0)
    t_stop = time.monotonic()
    swarm3.engines[0].stop()
    new = wait_for(swarm3.leader, 60, what="a new leader")
    failover_s = time.monotonic() - t_stop
    i = swarm3.engines.index(new)
    labels = lambda: service(swarm3, name)["Spec"]["Labels"]  # noqa: E731
    wait_for(lambda: replicas(swarm3, name) == 3, 90,
             what=f"3 replicas\n{fleet.procs[i].log()}")
    second_at = float(labels()["healthd.swarm.scaled_at"])
    assert second_at - first_at >= cooldown
    assert labels()["healthd.swarm.scaled_by"] == f"node{i + 1}"
    held = [r for r in fleet.procs[i].rows(f"swarm/{name}") if r["outcome"] == "skipped"]
    assert any((r["suppressed_by"] or "").startswith("cooldown") for r in held), held
    other = 3 - i  # the index of the third node (1 + 2 = 3)
    assert acted(fleet.procs[other], "scale_up") == []
    print(f"\nleader stopped -> new leader after {failover_s:.1f} s; second scale "
          f"{second_at - first_at:.1f} s after the first (cooldown {cooldown:.0f} s)")
