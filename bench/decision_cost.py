"""Benchmark: the decision work of one sweep, pure core only (no engine, no I/O).

200 containers in 40 compose stacks of 5 services each, half of them chains
(web -> api -> worker -> cache -> db, cache following db's restarts) and half fan-outs
(gateway -> a, b, c -> db). Every fifth stack has an unhealthy db; in another fifth a service
next to the db is unhealthy too (held by its upstream); in another a middle service has
crashed and its dependents are unhealthy (held); one stack in ten has an opted-out unhealthy
container (silenced); a few dbs were restarted recently (cooldown, budget). Every
container carries a usage sample and two (quiet) forecasts, as an idle daemon's do.

One sweep's decision work, in the order ``Daemon._apply_sweep`` does it: the topology from
the containers' labels (``topology.build``; the daemon skips this when nothing changed, so both
figures are printed), the dependencies-first order, then for each container ``classify.assess``,
its service's health folded from its members (``stack.service_health``), the
``dependency_restarted`` check, and ``decide.decide`` with a fresh ``Context`` when there is a
classification; a decision that acts puts its container in flight and folds its service again,
so its dependents see it. Median of ``--reps`` sweeps after a warm-up, on one thread, in CPU
time (``time.thread_time``: other processes on a shared machine do not inflate it) and, for
comparison, wall time.

    python bench/decision_cost.py [--reps 300] [--stacks 40]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from healthd.core import classify, decide, labels, stack, topology  # noqa: E402
from healthd.core.model import (  # noqa: E402
    Action,
    ActionRecord,
    ContainerState,
    ForecastView,
    Outcome,
    Resource,
    Usage,
)
from healthd.core.settings import Config  # noqa: E402

NOW = 1_800_000_000.0
CHAIN = ("web", "api", "worker", "cache", "db")
FAN = ("gateway", "a", "b", "c", "db")


def _depends(project: str, service: str) -> dict[str, str]:
    """Compose v2's depends_on label for one service of a chain or a fan-out stack."""
    if service in CHAIN[:-1] and project.endswith("c"):
        up = CHAIN[CHAIN.index(service) + 1]
        follow = "true" if service == "cache" else "false"
        return {labels.COMPOSE_DEPENDS_ON: f"{up}:service_healthy:{follow}"}
    if service == "gateway":
        return {labels.COMPOSE_DEPENDS_ON: "a:service_healthy:false,b:service_healthy:false,"
                                           "c:service_started:false"}
    if service in ("a", "b", "c"):
        return {labels.COMPOSE_DEPENDS_ON: "db:service_healthy:false"}
    return {}


def containers(n_stacks: int) -> list[ContainerState]:
    """The stacks' containers, each a running, healthy compose member unless broken below."""
    out = []
    for k in range(n_stacks):
        project = f"s{k:02d}{'c' if k % 2 == 0 else 'f'}"
        services = CHAIN if k % 2 == 0 else FAN
        for i, svc in enumerate(services):
            lab = {labels.COMPOSE_PROJECT: project, labels.COMPOSE_SERVICE: svc,
                   labels.COMPOSE_NUMBER: "1", labels.COMPOSE_CONFIG_HASH: f"h{k}{svc}",
                   **_depends(project, svc)}
            kw: dict[str, object] = {"health": "healthy"}
            broken = k % 5
            if svc == "db" and broken in (0, 1):
                kw = {"health": "unhealthy", "health_failing_streak": 3,
                      "health_last_output": "pg_isready: no response"}
            elif broken == 1 and i == 3:  # next to the db: held while the db fails
                kw = {"health": "unhealthy", "health_failing_streak": 5}
            elif broken == 2 and i == 2:  # a middle service crashed...
                kw = {"status": "exited", "exit_code": 1, "finished_at": NOW - 20,
                      "deaths": (NOW - 20,)}
            elif broken == 2 and i < 2:  # ...and what depends on it fails its checks
                kw = {"health": "unhealthy", "health_failing_streak": 2}
            if k % 10 == 3 and svc == "db":
                lab[labels.ENABLE] = "false"
                kw = {"health": "unhealthy", "health_failing_streak": 3}
            out.append(ContainerState(
                id=f"{k:02d}{i}".ljust(64, "0"), name=f"{project}-{svc}-1", image=f"{svc}:1",
                labels=tuple(sorted(lab.items())), started_at=NOW - 3600.0,
                created_at=NOW - 7200.0, **kw))  # type: ignore[arg-type]
    return out


def history(states: Sequence[ContainerState]) -> tuple[ActionRecord, ...]:
    """Recent restarts of some dbs: one in cooldown, one with budget used, one over budget."""
    dbs = [c.name for c in states if c.name.endswith("-db-1")]
    recs = [ActionRecord(dbs[0], Action.RESTART, NOW - 10, Outcome.SUCCEEDED, "unhealthy.critical"),
            ActionRecord(dbs[5], Action.RESTART, NOW - 200, Outcome.SUCCEEDED,
                         "unhealthy.critical"),
            ActionRecord(dbs[5], Action.RESTART, NOW - 100, Outcome.SUCCEEDED,
                         "unhealthy.critical")]
    recs += [ActionRecord(dbs[6], Action.RESTART, NOW - 3000 + 300 * i, Outcome.SUCCEEDED,
                          "unhealthy.critical") for i in range(3)]
    return tuple(recs)


class Sweep:
    """The decision half of one daemon sweep, over fixed observations."""

    def __init__(self, states: list[ContainerState], hist: tuple[ActionRecord, ...]) -> None:
        self.cfg = Config()
        self.states = states
        self.history = hist
        self.usage = Usage(t=NOW, cpu_fraction=0.01, cpu_percent=2.0, mem_bytes=20 * 2**20,
                           mem_limit_bytes=64 * 2**20, pids=3, pids_limit=None, source="cgroup")
        self.forecasts = (ForecastView(Resource.MEMORY, None, limit=64 * 2**20, value=20 * 2**20),
                          ForecastView(Resource.CPU, None, limit=1.0, value=0.01))
        self.topo = topology.build(states, {}, self.cfg)
        self.health: dict[str, stack.ServiceHealth] = {}
        self.run(rebuild=True)  # settle each service's health, as earlier sweeps would have
        self.settled = dict(self.health)

    def run(self, rebuild: bool) -> int:
        """One sweep; returns how many decisions it made."""
        cfg, now = self.cfg, NOW
        if rebuild:
            self.topo = topology.build(self.states, {}, cfg)
        topo = self.topo
        rank = {svc: i for i, svc in enumerate(topo.order())}
        by_id = {c.id: c for c in self.states}
        failures: dict[str, object] = {}
        in_flight: dict[str, str] = {}

        def refresh(cid: str) -> None:
            service = topo.service_of(cid)
            if service is None:
                return
            members = [stack.Member(by_id[m], failures.get(m),  # type: ignore[arg-type]
                                    in_flight=m in in_flight)
                       for m in topo.members(service) if m in by_id]
            self.health[service] = stack.service_health(service, members,
                                                        self.health.get(service), now)

        decided = 0
        for c in sorted(self.states, key=lambda s: rank.get(topo.service_of(s.id) or "", -1)):
            _, cls = classify.assess(c, self.usage if c.running else None,
                                     self.forecasts if c.running else (), now,
                                     cfg.classify, cfg.thresholds)
            failures[c.id] = cls.failure if cls else None
            refresh(c.id)
            if cls is None:
                cls = stack.followed_restart(c, topo, self.health, now, cfg.stacks.settle_s,
                                             0.0)
            if cls is None:
                continue
            ctx = decide.Context(now=now, config=cfg, history=self.history, watch_since=0.0,
                                 busy_services=frozenset(in_flight.values()), topology=topo,
                                 services=self.health)
            d = decide.decide(c, cls, ctx)
            decided += d is not None
            if d is not None and d.acts:
                in_flight[c.id] = labels.parse(c.labels).service or c.id
                refresh(c.id)
        return decided


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stacks", type=int, default=40)
    ap.add_argument("--reps", type=int, default=300)
    args = ap.parse_args()
    states = containers(args.stacks)
    sweep = Sweep(states, history(states))
    n = len(states)
    print(f"# {n} containers in {args.stacks} stacks of 5 services (chains and fan-outs), "
          f"median of {args.reps} sweeps after 20 warm-up; Python {platform.python_version()}, "
          f"{platform.machine()}")
    for rebuild, what in ((True, "with topology build"), (False, "topology unchanged")):
        cpu, wall, decided = [], [], 0
        for i in range(args.reps + 20):
            sweep.health = dict(sweep.settled)
            c0, w0 = time.thread_time(), time.perf_counter()
            decided = sweep.run(rebuild)
            if i >= 20:
                cpu.append(time.thread_time() - c0)
                wall.append(time.perf_counter() - w0)
        med = statistics.median(cpu)
        print(f"{what}: {1000 * med:.2f} ms per sweep, {1e6 * med / n:.1f} µs per container "
              f"(CPU; wall {1000 * statistics.median(wall):.2f} ms; {decided} decisions)")
    c0 = time.thread_time()
    for _ in range(args.reps):
        topology.build(states, {}, sweep.cfg)
    print(f"topology.build alone: {1000 * (time.thread_time() - c0) / args.reps:.2f} ms "
          "(CPU, mean)")


if __name__ == "__main__":
    main()
