"""Benchmark: how fast healthd reacts, and what watching costs.

On a throwaway dockerd (the test suite's harness), with the real `healthd run`:
1. Breaks N containers per run, half by a failing healthcheck, half by SIGKILL of their main
   process from the host, and measures from the engine's `health_status: unhealthy` / `die`
   event (the engine's own timeNano) to healthd's restart call (healthd's log record, same
   host clock) and to the engine's first event of that restart (`kill` or `start`).
2. Watches 50 idle containers for a minute and reports healthd's CPU seconds and peak RSS.

    python bench/heal_latency.py [--containers 20] [--runs 3] [--idle 50] [--idle-seconds 60]

Prints medians and p95 over all broken containers of all runs; figures go in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import Engine, wait_for  # noqa: E402
from tests.integration.healthd_proc import Healthd  # noqa: E402

# /run is a tmpfs, new at every start: a restart really heals the "broken" container.
HEALTHY_UNTIL_BROKEN = ("--health-cmd", "test ! -e /run/broken", "--health-interval", "1s",
                        "--health-retries", "1", "--label", "healthd.stop.timeout=0",
                        "--tmpfs", "/run")
BENCH_CFG = {
    "daemon": {"log_level": "debug", "log_format": "json"},
    "guards": {"global_actions_per_minute": 10000, "cooldown_s": 0.0, "budget_restarts": 1000},
}


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


class EventLog:
    """Collects the engine's container events in the background."""

    def __init__(self, engine: Engine) -> None:
        self.events: list[dict[str, Any]] = []
        self._stream = engine.client.api.events(decode=True, filters={"type": ["container"]})
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for ev in self._stream:
                self.events.append(ev)
        except Exception:  # noqa: BLE001 - the stream ends when we close it
            return

    def first(self, cid: str, actions: tuple[str, ...], after_ns: int) -> int | None:
        for ev in list(self.events):
            if ev.get("id") == cid and ev["timeNano"] >= after_ns and \
                    ev.get("Action", "").startswith(actions):
                return int(ev["timeNano"])
        return None

    def close(self) -> None:
        self._stream.close()


def sends(h: Healthd) -> dict[str, float]:
    """Container id -> healthd's wall time of its first 'sending restart' log record."""
    out: dict[str, float] = {}
    for line in h.log_path.read_text(errors="replace").splitlines():
        if '"sending restart' in line:
            rec = json.loads(line)
            out.setdefault(rec["msg"].split()[2], float(rec["t"]))
    return out


def run_once(engine: Engine, h: Healthd, n: int, run: int) -> list[tuple[str, float, float]]:
    names = [f"bench-{run}-{i}" for i in range(n)]
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda nm: engine.cli(
            "run", "-d", "--network", "none", "--name", nm, *HEALTHY_UNTIL_BROKEN,
            engine.image, "sleep", "100000").stdout.strip(), names))
    wait_for(lambda: all(engine.client.api.inspect_container(c)["State"]["Health"]["Status"]
                         == "healthy" for c in ids), 60, what="all healthy")
    events = EventLog(engine)
    start_ns = time.time_ns()
    # One failure at a time, as failures usually come: this measures healthd's reaction, not
    # the queue of a burst (restarts of a burst run action_workers at a time).
    for i, cid in enumerate(ids):
        if i % 2 == 0:
            engine.cli("exec", cid, "touch", "/run/broken")
        else:
            os.kill(engine.client.api.inspect_container(cid)["State"]["Pid"], signal.SIGKILL)
        wait_for(lambda c=cid: c in sends(h), 60, what="the restart sent")
    got = sends(h)
    wait_for(lambda: all(events.first(c, ("kill", "start"), start_ns) for c in ids), 60,
             what="the restarts' engine events")
    out = []
    for i, cid in enumerate(ids):
        kind = "unhealthy" if i % 2 == 0 else "die"
        t0 = events.first(cid, ("health_status: unhealthy",) if kind == "unhealthy" else ("die",),
                          start_ns)
        assert t0 is not None
        first_restart_ev = events.first(cid, ("kill", "start"), t0 + 1)
        assert first_restart_ev is not None
        out.append((kind, got[cid] - t0 / 1e9, (first_restart_ev - t0) / 1e9))
    events.close()
    for cid in ids:
        engine.client.api.remove_container(cid, force=True)
    return out


def idle_cost(engine: Engine, workdir: Path, n: int, seconds: float) -> tuple[float, float, float]:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: engine.cli("run", "-d", "--network", "none", "--name",
                                           f"idle-{i}", engine.image, "sleep", "100000"),
                      range(n)))
    h = Healthd(engine, workdir, cfg={"watch": {"stats_interval_s": 5.0}})
    h.start()
    time.sleep(10)  # warm-up: first list, inspects, first sweeps
    p = psutil.Process(h.proc.pid)  # type: ignore[union-attr]
    c0 = sum(p.cpu_times()[:2])
    time.sleep(seconds)
    cpu = sum(p.cpu_times()[:2]) - c0
    status = Path(f"/proc/{p.pid}/status").read_text()
    hwm = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM")).split()[1]) / 1024
    rss = p.memory_info().rss / 2**20
    h.stop()
    engine.remove_all_containers()
    return cpu, hwm, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle", type=int, default=50)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--idle-runs", type=int, default=3)
    args = ap.parse_args()
    engine = Engine().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            h = Healthd(engine, Path(tmp), cfg=BENCH_CFG)
            h.start()
            samples: list[tuple[str, float, float]] = []
            for r in range(args.runs):
                samples += run_once(engine, h, args.containers, r)
            h.stop()
            print(f"# event -> restart, {args.runs} runs x {args.containers} containers")
            print("| break | n | call median ms | call p95 ms | engine median ms | engine p95 ms |")
            print("|---|---|---|---|---|---|")
            for kind in ("unhealthy", "die", "all"):
                sel = [s for s in samples if kind in ("all", s[0])]
                calls = [s[1] * 1000 for s in sel]
                engs = [s[2] * 1000 for s in sel]
                print(f"| {kind} | {len(sel)} | {statistics.median(calls):.1f} | "
                      f"{pct(calls, 0.95):.1f} | {statistics.median(engs):.1f} | "
                      f"{pct(engs, 0.95):.1f} |")
        costs = []
        for _ in range(args.idle_runs):
            with tempfile.TemporaryDirectory() as tmp:
                costs.append(idle_cost(engine, Path(tmp), args.idle, args.idle_seconds))
        cpu = statistics.median(c[0] for c in costs)
        print(f"\n# idle: {args.idle} containers, {args.idle_seconds:.0f} s, 5 s interval, "
              f"median of {args.idle_runs}")
        print(f"cpu seconds: {cpu:.2f} ({100 * cpu / args.idle_seconds:.2f}% of one core); "
              f"peak RSS {statistics.median(c[1] for c in costs):.1f} MiB; "
              f"RSS at end {statistics.median(c[2] for c in costs):.1f} MiB")
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
