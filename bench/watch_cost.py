"""Benchmark: what watching many containers costs healthd (daemon and refit worker).

On a throwaway dockerd, starts N idle busybox containers (64 MiB limit, so each has a memory
and a CPU series), runs the real `healthd run` at a 5 s interval, and after a warm-up measures
for a window: the daemon's CPU seconds (as % of one core), its peak RSS (VmHWM), the mean
sweep time over the window, and the peak RSS and CPU of the refit worker process. With the
defaults, refits start after 60 samples (5 minutes) and repeat hourly, so a short window sees
none; ``--fit-min-samples 12 --refit-every 60`` puts every series through a refit each minute,
a stress setting.

``--baseline TREE`` runs another checkout's healthd (its own ``TREE/.venv/bin/python``, started
in ``TREE`` so that ``-m healthd`` imports that tree) the same way against the same engine and
containers, alternating with this tree run by run (which goes first alternates too), so both
see the same machine state; the medians are printed side by side. ``--profile DIR`` adds one
run per tree under ``py-spy record --format raw`` for the window (not counted in the medians:
the sampler slows the process it watches) and writes the raw stacks and a summary
(``bench/profile_summary.py``) to DIR.

    python bench/watch_cost.py [--containers 200] [--seconds 120] [--runs 3]
    python bench/watch_cost.py --baseline /work/wt-baseline --profile bench/results/profile
    python bench/watch_cost.py --fit-min-samples 12 --refit-every 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import Engine, exit_on_sigterm  # noqa: E402
from tests.integration.healthd_proc import Healthd  # noqa: E402


def vm_hwm_mib(pid: int) -> float:
    """Peak resident set of a process (MiB), 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((ln for ln in text.splitlines() if ln.startswith("VmHWM")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


class ChildWatch:
    """Polls a process's children (the refit worker) for their peak RSS and CPU time."""

    def __init__(self, parent: psutil.Process) -> None:
        self.parent = parent
        self.peak_mib = 0.0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                for child in self.parent.children(recursive=True):
                    self.peak_mib = max(self.peak_mib, vm_hwm_mib(child.pid))
                    self.cpu[child.pid] = sum(child.cpu_times()[:2])
            except psutil.Error:
                continue

    def stop(self) -> None:
        self._stop.set()


class Tree:
    """A checkout whose healthd is measured: its interpreter and its directory."""

    def __init__(self, label: str, root: Path) -> None:
        self.label = label
        self.root = root
        self.python = str(root / ".venv" / "bin" / "python") if root != ROOT else sys.executable

    def describe(self) -> str:
        rev = subprocess.run(["git", "-C", str(self.root), "log", "-1", "--format=%h %s"],
                             capture_output=True, text=True, check=False).stdout.strip()
        return f"{self.label}: {self.root} ({rev or 'no git'})"


def task_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, by native thread id."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _sweep_sum_count(h: Healthd) -> tuple[float, float]:
    total = count = 0.0
    for ln in h.get("/metrics").decode().splitlines():
        if ln.startswith("healthd_stats_sweep_seconds_sum "):
            total = float(ln.split()[-1])
        elif ln.startswith("healthd_stats_sweep_seconds_count "):
            count = float(ln.split()[-1])
    return total, count


def one_run(engine: Engine, tree: Tree, seconds: float, warmup: float,
            forecast: dict[str, float], profile: Path | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"watch": {"stats_interval_s": 5.0}, "forecast": forecast}
        h = Healthd(engine, Path(tmp), cfg=cfg, python=tree.python, cwd=tree.root)
        h.start()
        try:
            return _measure(h, seconds, warmup, profile)
        finally:
            # Whatever failed (a missing py-spy did), the daemon must not outlive the run:
            # one left spinning on a stopped engine skewed every later measurement.
            h.stop()


def _py_spy() -> str:
    """The py-spy to profile with: on PATH, or next to this Python."""
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def _measure(h: Healthd, seconds: float, warmup: float,
             profile: Path | None) -> dict[str, float]:
    """One measured window of a started healthd."""
    p = psutil.Process(h.proc.pid)  # type: ignore[union-attr]
    kids = ChildWatch(p)
    time.sleep(warmup)
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [_py_spy(),
             "record", "--format", "raw", "--rate", "500", "--threads", "--gil",
             "--nonblocking",
             "--duration", str(int(seconds)), "--pid", str(p.pid), "--output", str(profile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c0 = sum(p.cpu_times()[:2])
    t0 = task_cpu(p.pid)
    k0 = sum(kids.cpu.values())
    s0, n0 = _sweep_sum_count(h)
    time.sleep(seconds)
    cpu = sum(p.cpu_times()[:2]) - c0
    worker_cpu = sum(kids.cpu.values()) - k0
    s1, n1 = _sweep_sum_count(h)
    t1 = task_cpu(p.pid)
    if spy is not None and profile is not None:
        spy.wait(timeout=seconds + 60)
        profile.with_suffix(".threads").write_text("".join(
            f"{tid} {t1[tid] - t0.get(tid, 0.0):.2f}\n" for tid in sorted(t1)))
    result = {"cpu_pct": 100 * cpu / seconds, "hwm_mib": vm_hwm_mib(p.pid),
              "rss_mib": p.memory_info().rss / 2**20, "worker_hwm_mib": kids.peak_mib,
              "worker_cpu_pct": 100 * worker_cpu / seconds,
              "sweep_ms": 1000 * (s1 - s0) / max(n1 - n0, 1), "sweeps": n1 - n0,
              "statsmodels_in_daemon": float("statsmodels" in Path(
                  f"/proc/{p.pid}/maps").read_text())}
    kids.stop()
    return result


def _machine(engine: Engine) -> str:
    ver = engine.client.version()
    cg = "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1"
    return (f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"kernel {platform.release()}, cgroup {cg}, dockerd {ver.get('Version')}, "
            f"Python {platform.python_version()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--warmup", type=float, default=75.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fit-min-samples", type=int, default=60,
                    help="samples before the first refit (12: refits inside the window)")
    ap.add_argument("--refit-every", type=float, default=3600.0,
                    help="seconds between refits of a series (60: a stress setting)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout (with its own .venv) to measure alternately")
    ap.add_argument("--profile", type=Path, default=None,
                    help="directory for one py-spy profile per tree (extra runs)")
    args = ap.parse_args()
    fc = {"fit_min_samples": args.fit_min_samples, "refit_every_s": args.refit_every}
    trees = [Tree("now", ROOT)]
    if args.baseline is not None:
        trees.append(Tree("baseline", args.baseline.resolve()))
    if args.profile is not None and not Path(_py_spy()).exists():
        # Checked before the runs: a missing one used to end the script after them.
        ap.error(f"--profile needs py-spy ({_py_spy()} not found): pip install py-spy")
    exit_on_sigterm()  # a killed run must still stop its engine and 200 containers
    engine = Engine().start()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: engine.cli(
                "run", "-d", "--network", "none", "--memory", "64m", "--name", f"idle-{i}",
                engine.image, "sleep", "100000"), range(args.containers)))
        runs: dict[str, list[dict[str, float]]] = {t.label: [] for t in trees}
        for i in range(args.runs):
            # Alternate which tree goes first, so neither always follows the other.
            for tree in trees if i % 2 == 0 else trees[::-1]:
                r = one_run(engine, tree, args.seconds, args.warmup, fc)
                runs[tree.label].append(r)
                print(f"# run {i + 1} {tree.label}: cpu {r['cpu_pct']:.2f} %, "
                      f"hwm {r['hwm_mib']:.1f} MiB, sweep {r['sweep_ms']:.1f} ms", flush=True)
        print(f"# {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {_machine(engine)}")
        for t in trees:
            print(f"# {t.describe()}")
        print(f"# {args.containers} containers, 5 s interval, {args.seconds:.0f} s window after "
              f"{args.warmup:.0f} s warm-up, median of {args.runs} runs, forecast {fc}")
        for key in runs["now"][0]:
            cells = []
            for t in trees:
                vals = [r[key] for r in runs[t.label]]
                cells.append(f"{t.label} {statistics.median(vals):.2f} (runs: "
                             f"{', '.join(f'{v:.2f}' for v in vals)})")
            print(f"{key}: {'  |  '.join(cells)}")
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for t in trees:
                out = args.profile / f"{t.label}.raw"
                one_run(engine, t, args.seconds, args.warmup, fc, profile=out)
                print(f"# profile of {t.label}: {out}")
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
