"""Benchmark: what watching many containers costs healthd (daemon and refit worker).

On a throwaway dockerd, starts N idle busybox containers (64 MiB limit, so each has a memory
and a CPU series), runs the real `healthd run` at a 5 s interval, and after a warm-up measures
for a window: the daemon's CPU seconds (as % of one core), its peak RSS (VmHWM), and the peak
RSS and CPU of the refit worker process. With the defaults, refits start after 60 samples
(5 minutes) and repeat hourly, so a short window sees none; ``--fit-min-samples 12
--refit-every 60`` puts every series through a refit each minute, a stress setting.

    python bench/watch_cost.py [--containers 200] [--seconds 120] [--runs 3]
    python bench/watch_cost.py --fit-min-samples 12 --refit-every 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import Engine  # noqa: E402
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


def one_run(engine: Engine, seconds: float, warmup: float,
            forecast: dict[str, float]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"watch": {"stats_interval_s": 5.0}, "forecast": forecast}
        h = Healthd(engine, Path(tmp), cfg=cfg)
        h.start()
        p = psutil.Process(h.proc.pid)  # type: ignore[union-attr]
        kids = ChildWatch(p)
        time.sleep(warmup)
        c0 = sum(p.cpu_times()[:2])
        k0 = sum(kids.cpu.values())
        time.sleep(seconds)
        cpu = sum(p.cpu_times()[:2]) - c0
        worker_cpu = sum(kids.cpu.values()) - k0
        sweep = float(next(ln.split()[-1] for ln in h.get("/metrics").decode().splitlines()
                           if ln.startswith("healthd_stats_sweep_duration_seconds ")))
        result = {"cpu_pct": 100 * cpu / seconds, "hwm_mib": vm_hwm_mib(p.pid),
                  "rss_mib": p.memory_info().rss / 2**20, "worker_hwm_mib": kids.peak_mib,
                  "worker_cpu_pct": 100 * worker_cpu / seconds, "sweep_ms": 1000 * sweep,
                  "statsmodels_in_daemon": float("statsmodels" in Path(
                      f"/proc/{p.pid}/maps").read_text())}
        kids.stop()
        h.stop()
        return result


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
    args = ap.parse_args()
    fc = {"fit_min_samples": args.fit_min_samples, "refit_every_s": args.refit_every}
    engine = Engine().start()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: engine.cli(
                "run", "-d", "--network", "none", "--memory", "64m", "--name", f"idle-{i}",
                engine.image, "sleep", "100000"), range(args.containers)))
        runs = [one_run(engine, args.seconds, args.warmup, fc) for _ in range(args.runs)]
        print(f"# {args.containers} containers, 5 s interval, {args.seconds:.0f} s window after "
              f"{args.warmup:.0f} s warm-up, median of {args.runs} runs, forecast {fc}")
        for key in runs[0]:
            vals = [r[key] for r in runs]
            print(f"{key}: {statistics.median(vals):.2f}  (runs: "
                  f"{', '.join(f'{v:.2f}' for v in vals)})")
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
