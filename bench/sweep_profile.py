"""Profile: where one watch sweep's CPU goes, in process, on a throwaway engine.

Starts a throwaway dockerd with N idle busybox containers (as ``bench/watch_cost.py`` does),
builds the real ``Daemon`` on built-in defaults (but no refits) in this process (no threads
started; the events stream is marked connected so every sweep decides, as in the daemon) and
drives it
sweep by sweep on a clock that advances 5 s per sweep: ``Observer.sweep`` (list, cgroup and
host reads) then ``Daemon._apply_sweep`` (forecasts, topology, ``Decider.evaluate``, metrics,
cursor). Prints the median CPU time (thread time) and wall time of each half, then a cProfile
of ``--profiled`` more sweeps: the functions with the most own time and the most cumulative
time. Needs root (dockerd).

    python bench/sweep_profile.py [--containers 200] [--sweeps 60] [--profiled 60]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from healthd.cli import GC_THRESHOLD  # noqa: E402
from healthd.core import config  # noqa: E402
from healthd.daemon import Daemon  # noqa: E402
from healthd.observe import engine as engine_mod  # noqa: E402
from healthd.serve.metrics import Metrics  # noqa: E402
from healthd.store.ledger import Ledger  # noqa: E402
from tests.engine import Engine  # noqa: E402


class GcTimer:
    """Time spent in the cyclic garbage collector, by generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._t0 = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.thread_time()
        else:
            self.seconds[info["generation"]] += time.thread_time() - self._t0
            self.count[info["generation"]] += 1


class Timed:
    """Wraps a method and adds up the CPU time (thread time) spent in it."""

    def __init__(self, obj: object, name: str) -> None:
        self.fn = getattr(obj, name)
        self.seconds = 0.0
        setattr(obj, name, self)

    def __call__(self, *args: object, **kwargs: object) -> object:
        c0 = time.thread_time()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.thread_time() - c0


class Clock:
    """Epoch seconds that move only when told to: one sweep interval per sweep."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def _step(d: Daemon, clock: Clock) -> tuple[float, float, float, float]:
    """One sweep: (observe CPU, observe wall, apply CPU, apply wall), seconds."""
    c0, w0 = time.thread_time(), time.perf_counter()
    sw = d.observer.sweep()
    c1, w1 = time.thread_time(), time.perf_counter()
    d._apply_sweep(sw)
    c2, w2 = time.thread_time(), time.perf_counter()
    clock.t += 5.0
    return c1 - c0, w1 - w0, c2 - c1, w2 - w1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=200)
    ap.add_argument("--sweeps", type=int, default=60, help="timed sweeps (after 15 warm-up)")
    ap.add_argument("--profiled", type=int, default=60, help="sweeps under cProfile")
    ap.add_argument("--top", type=int, default=35)
    ap.add_argument("--gc-threshold", default=None, metavar="G0,G1,G2",
                    help="gc.set_threshold before the timed sweeps (default: the daemon's)")
    args = ap.parse_args()
    engine = Engine().start()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: engine.cli(
                "run", "-d", "--network", "none", "--memory", "64m", "--name", f"idle-{i}",
                engine.image, "sleep", "100000"), range(args.containers)))
        with tempfile.TemporaryDirectory() as tmp:
            # No refits: with the defaults they start after 60 samples and would run in a
            # worker process; bench/watch_cost.py's window never reaches one either.
            cfg = config.build(flags={"daemon": {"state": f"{tmp}/state.db"},
                                      "forecast": {"fit_min_samples": 1_000_000}}, environ={})
            eng = engine_mod.Engine(engine.docker_host)
            clock = Clock()
            d = Daemon(cfg, eng, Ledger(cfg.state_path), Metrics(), clock=clock)
            d.watcher.connected = True  # decide every sweep, as with the stream up
            for _ in range(15):  # the first picture, then forecasters past their start-up
                _step(d, clock)
            # As `healthd run` does once started: start-up objects frozen out of the
            # collector's passes (and its thresholds, unless --gc-threshold says otherwise).
            gc.collect()
            gc.freeze()
            gc.set_threshold(*(tuple(int(x) for x in args.gc_threshold.split(","))
                               if args.gc_threshold else GC_THRESHOLD))
            gct = GcTimer()
            parts = {"engine list": Timed(d.engine, "list"),
                     "stats sweep (cgroup files)": Timed(d.sampler, "sweep"),
                     "forecasts": Timed(d.foresight, "observe"),
                     "decisions (evaluate)": Timed(d.decider, "evaluate")}
            steps = [_step(d, clock) for _ in range(args.sweeps)]
            gc.callbacks.remove(gct._cb)
            for obj, name in ((d.engine, "list"), (d.sampler, "sweep"),
                              (d.foresight, "observe"), (d.decider, "evaluate")):
                delattr(obj, name)  # the instance attribute: the class's method again
            n = args.containers
            print(f"# {n} idle containers, built-in defaults, median of {args.sweeps} sweeps "
                  "after 15 warm-up sweeps, 5 s apart on the daemon's clock")
            for i, what in ((0, "observe CPU"), (1, "observe wall"), (2, "apply CPU"),
                            (3, "apply wall")):
                med = statistics.median(s[i] for s in steps)
                print(f"{what}: {1000 * med:.2f} ms per sweep, {1e6 * med / n:.1f} µs per "
                      "container")
            for what, timed in parts.items():
                print(f"  of which {what}: {1000 * timed.seconds / args.sweeps:.2f} ms per "
                      "sweep (mean)")
            total = statistics.median(s[0] + s[2] for s in steps)
            print(f"sweep CPU: {1000 * total:.2f} ms = {100 * total / 5.0:.2f} % of a core at 5 s")
            gens = ", ".join(f"gen{g} {gct.count[g]}x {1000 * gct.seconds[g]:.1f} ms"
                             for g in range(3))
            print(f"gc: {gens} over {args.sweeps} sweeps "
                  f"({1000 * sum(gct.seconds) / args.sweeps:.2f} ms per sweep), "
                  f"{len(gc.get_objects())} tracked objects")
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.profiled):
                _step(d, clock)
            prof.disable()
            for key in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
                text = out.getvalue()
                print(f"\n## cProfile of {args.profiled} sweeps, by {key}\n")
                print(text[text.find("   ncalls"):].rstrip())
            d.foresight.close()
            d.inspector.shutdown()
            d.ledger.close()
            eng.close()
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
