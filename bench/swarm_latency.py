"""Benchmark: how fast healthd tends a Swarm, next to the engine's own floors.

On throwaway dockerd engines (the test suite's harness), with the real `healthd run`:
1. Scale: a one-replica service under CPU pressure (busy loop, --limit-cpu 0.2,
   healthd.replicas.max=3), healthd started with up window 2 s and cooldown 1 s: seconds
   from healthd's start to three tasks running. Floor: ``docker service scale`` 1 -> 3,
   from the call to three tasks running.
2. Rollback: ``docker service update --args "sh -c 'exit 3'"`` of a running two-replica
   service: seconds to Swarm's own pause (failure_action pause, default 5 s monitor), to
   healthd's rollback (its ledger row) and to ``rollback_completed``.
3. Failover (three managers, one healthd each): the leader's engine stopped with a scale
   pending on node2: seconds to a new leader (the engine's floor) and to the new leader's
   healthd's first action (the scale, labels ``scaled_by``).

    python bench/swarm_latency.py [--runs 3] [--failover-runs 1]

Prints the median (and each run) of every figure; they go in the README.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import Engine, wait_for  # noqa: E402
from tests.integration.healthd_proc import Healthd, free_port  # noqa: E402
from tests.swarm import MultiNode, Services, single_node  # noqa: E402

BUSY = ("sh", "-c", "while :; do :; done")
FAST = {"swarm": {"relist_s": 1.0},
        "scaling": {"scale_up_window_s": 2.0, "cooldown_s": 1.0, "target_cpu": 0.5}}
TOKEN = "bench-swarm-token-0123456789"


def fmt(values: list[float]) -> str:
    each = ", ".join(f"{v:.2f}" for v in values)
    return f"median {statistics.median(values):.2f} s ({each})"


def _floor(eng: Engine, svc: Services) -> float:
    name = svc.create("floor", command=("sleep", "100000"))
    wait_for(lambda: svc.running(name) == 1, 60)
    t0 = time.monotonic()
    eng.cli("service", "scale", "-d", f"{name}=3")
    wait_for(lambda: svc.running(name) == 3, 60, interval=0.01)
    return time.monotonic() - t0


def _scale(eng: Engine, svc: Services, work: Path) -> float:
    name = svc.create("hot", "--limit-cpu", "0.2", "--label", "healthd.replicas.max=3",
                      command=BUSY)
    wait_for(lambda: svc.running(name) == 1, 60)
    h = Healthd(eng, work, cfg=FAST)
    t0 = time.monotonic()
    try:
        h.start()
        wait_for(lambda: svc.running(name) == 3, 120, interval=0.05)
        return time.monotonic() - t0
    finally:
        h.stop()


def _rollback(eng: Engine, svc: Services, work: Path) -> tuple[float, float, float]:
    name = svc.create("update", "--replicas", "2", command=("sleep", "100000"))
    wait_for(lambda: svc.running(name) == 2, 60)
    h = Healthd(eng, work, cfg=FAST).start()

    def state() -> str:
        return str(svc.inspect(name).get("UpdateStatus", {}).get("State", ""))

    try:
        t0 = time.monotonic()
        eng.cli("service", "update", "-d", "--args", "sh -c 'exit 3'", name)
        try:
            wait_for(lambda: state() in ("paused", "rollback_started", "rollback_completed"),
                     90, interval=0.02, what="paused")
        except AssertionError:
            tasks = [(t["Slot"], t["DesiredState"], t["Status"]["State"], t["Status"].get("Err"))
                     for t in svc.tasks(name, running=False)]
            raise AssertionError(f"{svc.inspect(name).get('UpdateStatus')} {tasks}\n"
                                 f"{h.log()}") from None
        paused = time.monotonic() - t0
        wait_for(lambda: [r for r in h.rows(f"swarm/{name}") if r["action"] == "rollback"],
                 90, interval=0.02, what=f"rollback row\n{h.log()}")
        issued = time.monotonic() - t0
        wait_for(lambda: state() == "rollback_completed", 90, interval=0.05, what="completed")
        return paused, issued, time.monotonic() - t0
    finally:
        h.stop()


def scale_runs(runs: int, tmp: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in (
        "floor", "healthd", "rollback_paused", "rollback_issued", "rollback_completed")}
    with single_node() as eng:
        for i in range(runs):
            svc = Services(eng)
            try:
                out["floor"].append(_floor(eng, svc))
                svc.remove_all()
                (tmp / f"scale-{i}").mkdir()
                out["healthd"].append(_scale(eng, svc, tmp / f"scale-{i}"))
                svc.remove_all()
                (tmp / f"rollback-{i}").mkdir()
                paused, issued, done = _rollback(eng, svc, tmp / f"rollback-{i}")
                out["rollback_paused"].append(paused)
                out["rollback_issued"].append(issued)
                out["rollback_completed"].append(done)
            finally:
                svc.remove_all()
    return out


def failover_run(tmp: Path) -> tuple[float, float]:
    nodes = MultiNode()
    try:
        nodes.start()
        first = nodes.engines[0]
        name = "pending"
        first.cli("service", "create", "-d", "--name", name, "--stop-grace-period", "1s",
                  "--limit-cpu", "0.2", "--constraint", "node.hostname==node2",
                  "--label", "healthd.replicas.max=3", first.image, *BUSY)
        api = first.client.api
        wait_for(lambda: any(t["Status"]["State"] == "running"
                             for t in api.tasks(filters={"service": name})), 60)
        port = free_port()
        procs = []
        for i, eng in enumerate(nodes.engines):
            work = tmp / f"failover-node{i + 1}"
            work.mkdir(exist_ok=True)
            cfg = {"daemon": {"token": TOKEN}, "watch": {"stats_interval_s": 1.0},
                   "swarm": {"relist_s": 1.0, "peer_timeout_s": 1.0},
                   # The old leader never acts: a long window holds it (the others start
                   # their window afresh after the failover, like the first leader).
                   "scaling": {"scale_up_window_s": 600.0 if i == 0 else 2.0,
                               "cooldown_s": 1.0, "target_cpu": 0.5}}
            procs.append(Healthd(eng, work, cfg=cfg, listen_host=nodes.ADDRS[i], port=port,
                                 token=TOKEN).start())
        time.sleep(3)  # the followers fill their windows while node1 leads (not-leader)
        procs[0].stop()
        t0 = time.monotonic()
        first.stop()
        new = wait_for(nodes.leader, 120, interval=0.05)
        elected = time.monotonic() - t0
        api = new.client.api
        wait_for(lambda: "healthd.swarm.scaled_by" in (
            api.inspect_service(name)["Spec"].get("Labels") or {}), 120, interval=0.05)
        acted = time.monotonic() - t0
        for p in procs[1:]:
            p.stop()
        return elected, acted
    finally:
        nodes.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--failover-runs", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hd-swarm-bench-") as d:
        tmp = Path(d)
        got = scale_runs(args.runs, tmp)
        print(f"# one-node swarm, {args.runs} runs")
        print(f"engine floor, service scale 1 -> 3 tasks running: {fmt(got['floor'])}")
        print("healthd start -> 3 tasks running (up window 2 s, cooldown 1 s, two steps): "
              f"{fmt(got['healthd'])}")
        print(f"update -> Swarm paused it (its own floor): {fmt(got['rollback_paused'])}")
        print(f"update -> healthd's rollback issued: {fmt(got['rollback_issued'])}")
        print(f"update -> rollback_completed: {fmt(got['rollback_completed'])}")
        if args.failover_runs:
            runs = [failover_run(tmp) for _ in range(args.failover_runs)]
            print(f"# three managers, {args.failover_runs} run(s)")
            print(f"leader engine stopped -> new leader (engine floor): "
                  f"{fmt([r[0] for r in runs])}")
            print(f"leader engine stopped -> new leader's healthd's first action: "
                  f"{fmt([r[1] for r in runs])}")


if __name__ == "__main__":
    main()
