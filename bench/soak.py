"""Soak: container churn under a real `healthd run`, watching healthd's own resources.

On a throwaway dockerd (the test suite's harness) with the real `healthd run` subprocess
watching it, ``--workers`` threads churn containers back to back for ``--minutes``, each
worker cycling through a small pool of names of its own (so names are reused all the time)
and picking one scenario per lifecycle:

- ``crash-heal``: starts, exits 3 after 0.5 s, waits until healthd has restarted it (its
  ``StartedAt`` changes), removes it;
- ``unhealthy-heal``: a healthcheck that always fails; waits for healthd's restart, removes it;
- ``remove-after-create``: created and removed at once (never started);
- ``remove-after-start``: started and force-removed at once, while healthd is inspecting it;
- ``remove-after-crash``: force-removed right after it exits, racing healthd's restart;
- ``remove-while-unhealthy``: force-removed as soon as the engine calls it unhealthy,
  racing healthd's restart.

healthd's RSS, open file descriptors and threads (``/proc/<pid>/status`` and ``/proc/<pid>/fd``),
the state file's size (+ ``-wal``) and rows, the containers it tracks (``/status``) and the
number of series on ``/metrics``, healthd's CPU time and its event lag are sampled at start,
every ``--sample-s`` seconds and at the end (after the churn stops, every container is removed
and healthd has had a few sweeps). ``--dump-threads`` names every thread left at the end
(with py-spy).

    flock /tmp/hd-engine.lock python bench/soak.py [--minutes 2] [--workers 4]

Prints the table, the growth, and whether the bounds held: RSS growth from start to end
< ``--rss-bound-mib`` (10 MiB); fds and threads at the end no higher than their highest in
the first half of the run (the thread pools and the engine connection pool fill lazily under
load; a leak keeps growing after that); no container tracked and no per-container series
left on /metrics once every container is gone. The engine speaks only on its
own unix socket; healthd listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import Engine, WaitTimeout, running_engine, wait_for  # noqa: E402
from tests.integration.healthd_proc import Healthd  # noqa: E402

SOAK_CFG: dict[str, dict[str, Any]] = {
    "watch": {"stats_interval_s": 1.0},
    # Heal everything as fast as the engine allows: the soak is about healthd's own resources,
    # not about its guards holding restarts back.
    "guards": {"cooldown_s": 0.0, "backoff_base_s": 0.5, "backoff_max_s": 1.0,
               "budget_restarts": 100000, "global_actions_per_minute": 100000,
               "stop_timeout_s": 0},
    "classify": {"crash_loop_deaths": 100000},
}
SCENARIOS = ("crash-heal", "unhealthy-heal", "remove-after-create", "remove-after-start",
             "remove-after-crash", "remove-while-unhealthy")
MIB = 2**20


@dataclass(frozen=True)
class Sample:
    """healthd's resources at one instant."""

    t_s: float  # seconds since the churn started
    rss_mib: float
    fds: int
    threads: int
    state_kib: float
    wal_kib: float
    rows: int
    tracked: int
    series: frozenset[str]  # /metrics series names with their labels, values left out
    cpu_s: float  # healthd's CPU seconds so far (user + system)
    lag_s: float  # healthd_event_lag_seconds: how far behind the engine's events it runs


def proc_sample(pid: int) -> tuple[float, int, int]:
    """(VmRSS MiB, open fds, threads) of ``pid`` from /proc."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd")), int(fields["Threads"])


def size_kib(path: Path) -> float:
    try:
        return path.stat().st_size / 1024
    except FileNotFoundError:
        return 0.0


def take(h: Healthd, t0: float) -> Sample:
    """One sample of healthd ``h``."""
    assert h.proc is not None
    if h.proc.poll() is not None:
        raise SystemExit(f"healthd exited with {h.proc.returncode}\n{h.log()}")
    rss, fds, threads = proc_sample(h.proc.pid)
    # The sampler's own last HTTP request may still hold a handler thread and a socket in
    # healthd: of two reads half a second apart, the lower counts (a leak does not go away).
    time.sleep(0.5)
    _, fds2, threads2 = proc_sample(h.proc.pid)
    fds, threads = min(fds, fds2), min(threads, threads2)
    db = sqlite3.connect(f"file:{h.state}?mode=ro", uri=True, timeout=10)
    try:
        rows = int(db.execute("SELECT count(*) FROM actions").fetchone()[0])
    finally:
        db.close()
    metrics = dict(ln.rsplit(" ", 1) for ln in h.get("/metrics").decode().splitlines()
                   if ln and not ln.startswith("#"))
    stat = Path(f"/proc/{h.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return Sample(time.monotonic() - t0, rss, fds, threads, size_kib(h.state),
                  size_kib(h.state.with_name(h.state.name + "-wal")), rows,
                  len(h.status()["containers"]), frozenset(metrics), cpu_s,
                  float(metrics.get("healthd_event_lag_seconds", "nan")))


class Churn:
    """Worker threads that create, break, wait for healing and remove containers."""

    def __init__(self, engine: Engine, workers: int, names_per_worker: int, seed: int,
                 heal_timeout: float) -> None:
        self.api = engine.client.api
        self.image = engine.image
        self.workers = workers
        self.names_per_worker = names_per_worker
        self.heal_timeout = heal_timeout
        self.seed = seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done: collections.Counter[str] = collections.Counter()
        self.not_healed: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.heal_s: list[float] = []
        self.engine_calls = 0
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for w in range(self.workers):
            th = threading.Thread(target=self._worker, args=(w,), daemon=True)
            th.start()
            self._threads.append(th)

    def join(self) -> None:
        self.stop.set()
        for th in self._threads:
            th.join(timeout=self.heal_timeout + 60)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.engine_calls += 1
        return fn(*args, **kwargs)

    def _create(self, name: str, scenario: str) -> str:
        cmd = ["sh", "-c", "sleep 0.5; exit 3"] if "crash" in scenario else ["sleep", "100000"]
        health = None
        if "unhealthy" in scenario:
            health = {"test": ["CMD", "false"], "interval": 500_000_000, "retries": 1,
                      "timeout": 1_000_000_000}
        created = self._call(
            self.api.create_container, self.image, command=cmd, name=name,
            labels={"healthd.stop.timeout": "0", "soak": scenario}, healthcheck=health,
            host_config=self.api.create_host_config(network_mode="none"))
        return str(created["Id"])

    def _started_at(self, cid: str) -> tuple[str, str, str | None]:
        st = self._call(self.api.inspect_container, cid)["State"]
        return st["StartedAt"], st["Status"], (st.get("Health") or {}).get("Status")

    def _remove(self, name: str) -> None:
        try:
            self._call(self.api.remove_container, name, force=True, v=True)
        except docker.errors.NotFound:
            pass

    def _lifecycle(self, name: str, scenario: str) -> None:
        self._remove(name)  # a previous lifecycle's leftover, after an error
        cid = self._create(name, scenario)
        if scenario == "remove-after-create":
            self._remove(cid)
            return
        self._call(self.api.start, cid)
        if scenario == "remove-after-start":
            self._remove(cid)
            return
        first, _, _ = self._started_at(cid)
        if scenario in ("crash-heal", "unhealthy-heal"):
            t0 = time.monotonic()
            try:
                wait_for(lambda: self._started_at(cid)[0] != first, self.heal_timeout, 0.1,
                         what=f"{name} restarted")
                with self.lock:
                    self.heal_s.append(time.monotonic() - t0)
            except WaitTimeout:
                with self.lock:
                    self.not_healed[scenario] += 1
        elif scenario == "remove-after-crash":
            # healthd may restart it before a poll sees it exited: a new StartedAt counts too.
            wait_for(lambda: self._started_at(cid)[:2] != (first, "running"), 30, 0.05,
                     what="exited")
        elif scenario == "remove-while-unhealthy":
            wait_for(lambda: self._started_at(cid)[2] == "unhealthy", 30, 0.05,
                     what="unhealthy")
        self._remove(cid)

    def _worker(self, w: int) -> None:
        rng = random.Random(self.seed * 1000 + w)
        i = 0
        while not self.stop.is_set():
            name = f"soak-{w}-{i % self.names_per_worker}"
            scenario = rng.choice(SCENARIOS)
            i += 1
            try:
                self._lifecycle(name, scenario)
            except (docker.errors.DockerException, WaitTimeout, OSError) as exc:
                with self.lock:
                    self.errors[f"{scenario}: {type(exc).__name__}"] += 1
                continue
            with self.lock:
                self.done[scenario] += 1


def report(samples: list[Sample], churn: Churn, minutes: float, bound_mib: float) -> bool:
    print("| t min | RSS MiB | fds | threads | state KiB | wal KiB | ledger rows | tracked |"
          " /metrics series | CPU % since last | event lag ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for prev, s in zip([None, *samples[:-1]], samples, strict=True):
        cpu = "" if prev is None else f"{100 * (s.cpu_s - prev.cpu_s) / (s.t_s - prev.t_s):.1f}"
        print(f"| {s.t_s / 60:.1f} | {s.rss_mib:.1f} | {s.fds} | {s.threads} | "
              f"{s.state_kib:.0f} | {s.wal_kib:.0f} | {s.rows} | {s.tracked} | {len(s.series)} |"
              f" {cpu} | {1000 * s.lag_s:.0f} |")
    first, last = samples[0], samples[-1]
    # Thread pools and the engine connection pool fill lazily under load: a leak is growth
    # that goes on after that, so the end is held against the first half of the run.
    half = [s for s in samples[:-1] if s.t_s <= minutes * 30] or samples[:1]
    lifecycles = sum(churn.done.values())
    secs = minutes * 60
    print(f"\n# churn: {lifecycles} lifecycles in {minutes:g} min "
          f"({lifecycles / secs:.2f}/s), {churn.engine_calls} engine calls "
          f"({churn.engine_calls / secs:.1f}/s), {churn.workers} workers x "
          f"{churn.names_per_worker} reused names")
    for sc in SCENARIOS:
        print(f"  {sc}: {churn.done[sc]}"
              + (f" (not healed within {churn.heal_timeout:g} s: {churn.not_healed[sc]})"
                 if sc.endswith("-heal") else ""))
    if churn.heal_s:
        hs = sorted(churn.heal_s)
        print(f"  healed: {len(hs)}; wait for the restart median {hs[len(hs) // 2]:.2f} s, "
              f"max {hs[-1]:.2f} s (client poll every 0.1 s)")
    for what, n in sorted(churn.errors.items()):
        print(f"  error {what}: {n}")
    rows = last.rows - first.rows
    print(f"\n# growth start -> end: RSS {last.rss_mib - first.rss_mib:+.1f} MiB, "
          f"fds {last.fds - first.fds:+d}, threads {last.threads - first.threads:+d}, "
          f"state+wal {last.state_kib + last.wal_kib - first.state_kib - first.wal_kib:+.0f} KiB"
          f" for {rows:+d} ledger rows")
    peak = max(half, key=lambda s: s.rss_mib)
    print(f"# second half: RSS end - first-half peak {last.rss_mib - peak.rss_mib:+.1f} MiB; "
          f"fds first-half max {max(s.fds for s in half)}, end {last.fds}; threads first-half "
          f"max {max(s.threads for s in half)}, end {last.threads}")
    added = sorted(last.series - first.series)
    print(f"# /metrics series added between start and end ({len(added)}): "
          + ", ".join(added))
    checks = {
        f"RSS growth start->end < {bound_mib:g} MiB": last.rss_mib - first.rss_mib < bound_mib,
        "fds at end <= their first-half max": last.fds <= max(s.fds for s in half),
        "threads at end <= their first-half max": last.threads <= max(s.threads for s in half),
        "no container tracked at end": last.tracked == 0,
        "no per-container /metrics series left at end": not any(
            "container=" in s and 'container=""' not in s for s in added),
    }
    for what, ok in checks.items():
        print(f"bound {what}: {'held' if ok else 'NOT HELD'}")
    return all(checks.values())


def dump_threads(pid: int) -> None:
    """Each of healthd's threads with its innermost healthd (else outermost) frame."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        out = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"# no thread dump: {exc}")
        return
    print("\n# healthd's threads at the end (py-spy dump: name, innermost frame):")
    for block in ("\n" + out).split("\nThread ")[1:]:
        head, *frames = block.strip().splitlines()
        print(f"  {head.split(': ', 1)[-1]}: {frames[0].strip() if frames else '?'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--names", type=int, default=3, help="reused names per worker")
    ap.add_argument("--sample-s", type=float, default=60.0)
    ap.add_argument("--heal-timeout", type=float, default=20.0)
    ap.add_argument("--rss-bound-mib", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window-s", type=float, default=None,
                    help="guards.budget_window_s and alert_repeat_s: how far back the guards "
                         "read the ledger on every decision (default: healthd's, 3600 s)")
    ap.add_argument("--dump-threads", action="store_true",
                    help="at the end, print healthd's thread stacks (needs py-spy on PATH)")
    args = ap.parse_args()
    if args.window_s is not None:
        SOAK_CFG["guards"].update(budget_window_s=args.window_s, alert_repeat_s=args.window_s)
    with running_engine() as engine, tempfile.TemporaryDirectory(prefix="hd-soak-") as tmp:
        h = Healthd(engine, Path(tmp), cfg=SOAK_CFG)
        h.start()
        try:
            h.wait_sweeps(2)
            t0 = time.monotonic()
            samples = [take(h, t0)]
            churn = Churn(engine, args.workers, args.names, args.seed, args.heal_timeout)
            churn.start()
            end = t0 + args.minutes * 60
            while (now := time.monotonic()) < end:
                time.sleep(min(args.sample_s - (now - t0) % args.sample_s, end - now))
                if time.monotonic() < end - 1:
                    samples.append(take(h, t0))
                    s = samples[-1]
                    print(f"[{s.t_s / 60:5.1f} min] rss {s.rss_mib:.1f} MiB, fds {s.fds}, "
                          f"threads {s.threads}, rows {s.rows}, tracked {s.tracked}, "
                          f"lifecycles {sum(churn.done.values())}", file=sys.stderr, flush=True)
            churn.join()
            engine.remove_all_containers()
            try:
                wait_for(lambda: h.status()["containers"] == [], 60, what="nothing tracked")
            except WaitTimeout as exc:
                print(f"# {exc}", file=sys.stderr)
            h.wait_sweeps(3)
            samples.append(take(h, t0))
            print(f"# soak {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
                  f"{args.minutes:g} min, healthd pid {h.proc.pid if h.proc else '?'}, "
                  f"config {SOAK_CFG}")
            ok = report(samples, churn, args.minutes, args.rss_bound_mib)
            if args.dump_threads and h.proc is not None:
                dump_threads(h.proc.pid)
        finally:
            code = h.stop()
        print(f"healthd exit code on SIGTERM: {code}")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
