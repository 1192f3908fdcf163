"""Benchmark: what probing and scraping N containers costs healthd, and how soon it decides.

On a throwaway dockerd, starts N idle busybox containers (``--network none``: they serve
nothing themselves) whose labels point a probe (``healthd.probe.http``) and a scrape
(``healthd.metrics.url``) at one HTTP server in this process, on 127.0.0.1, so the figures
are healthd's cost, not the targets'. Runs the real ``healthd run`` at the default probe
(5 s) and scrape (15 s) intervals and, after a warm-up, measures the daemon's CPU seconds
(% of one core) and peak RSS (VmHWM) over a window; the same without the labels is the
baseline. Then, with one probed service, the time from the first failing answer the
server sends (HTTP 500) to healthd's first decision and to its restart (each: when its
ledger row is first seen, polled every 10 ms; a row's own time is its observation's),
the restart coming after ``signals.persist_s`` (set to 5 s here), several times.

    python bench/signals_cost.py [--containers 50 200] [--seconds 60] [--runs 3] [--decision-only]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import Engine, running_engine  # noqa: E402
from tests.integration.healthd_proc import Healthd  # noqa: E402

METRICS = ("# TYPE http_requests_total counter\n"
           'http_requests_total{code="200"} 1000\nhttp_requests_total{code="500"} 3\n'
           "# TYPE http_request_duration_seconds histogram\n"
           'http_request_duration_seconds_bucket{le="0.1"} 900\n'
           'http_request_duration_seconds_bucket{le="0.5"} 990\n'
           'http_request_duration_seconds_bucket{le="+Inf"} 1003\n'
           "http_request_duration_seconds_sum 50\nhttp_request_duration_seconds_count 1003\n")


class Target:
    """The HTTP server every container's labels point at; ``failing`` flips answers to 500."""

    def __init__(self) -> None:
        self.failing = False
        self.first_failure: float | None = None
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    body, status = METRICS.encode(), 200
                else:
                    status = 500 if target.failing else 200
                    if status == 500 and target.first_failure is None:
                        target.first_failure = time.time()
                    body = b"ok\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def vm_hwm_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    line = next((ln for ln in text.splitlines() if ln.startswith("VmHWM")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def start_containers(engine: Engine, n: int, port: int, labelled: bool) -> list[str]:
    def one(i: int) -> str:
        name = engine.name("bench-signals")
        labels = ["--label", f"healthd.probe.http=http://127.0.0.1:{port}/health/{i}",
                  "--label", f"healthd.metrics.url=http://127.0.0.1:{port}/metrics/{i}"]
        engine.cli("run", "-d", "--network", "none", "--name", name,
                   *(labels if labelled else []), engine.image, "sleep", "100000")
        return name
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def cost(engine: Engine, n: int, labelled: bool, seconds: float, warmup: float,
         target: Target) -> tuple[float, float]:
    start_containers(engine, n, target.port, labelled)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            h = Healthd(engine, Path(tmp), cfg={"watch": {"stats_interval_s": 5.0}})
            h.start()
            p = psutil.Process(h.proc.pid)  # type: ignore[union-attr]
            time.sleep(warmup)
            c0 = sum(p.cpu_times()[:2])
            time.sleep(seconds)
            cpu = (sum(p.cpu_times()[:2]) - c0) / seconds * 100
            rss = vm_hwm_mib(p.pid)
            h.stop()
            return cpu, rss
    finally:
        engine.remove_all_containers()


def decision_time(engine: Engine, target: Target) -> tuple[float, float]:
    target.failing, target.first_failure = False, None
    with tempfile.TemporaryDirectory() as tmp:
        h = Healthd(engine, Path(tmp), cfg={"signals": {"persist_s": 5.0},
                                           "watch": {"stats_interval_s": 5.0}})
        h.start()
        (name,) = start_containers(engine, 1, target.port, True)
        try:
            h.wait_sweeps(3, timeout=60)
            time.sleep(6)  # a few good probes in the window first
            target.failing = True
            # A row's own time is when its observation was taken (the probe's start), so the
            # latency is read from the outside: when the row is first seen in the ledger.
            seen: dict[str, float] = {}
            deadline = time.monotonic() + 60
            while "restart" not in seen and time.monotonic() < deadline:
                rows, now = h.rows(name), time.time()
                if rows:
                    seen.setdefault("first", now)
                if any(r["action"] == "restart" and r["outcome"] != "skipped" for r in rows):
                    seen["restart"] = now
                time.sleep(0.01)
            if "restart" not in seen:
                raise AssertionError(f"no restart within 60 s\n{h.log()}")
            first = target.first_failure or 0.0
            decided = seen["first"] - first
            restarted = seen["restart"] - first
            h.stop()
            return decided, restarted
        finally:
            target.failing = False
            engine.remove_all_containers()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=30.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--decision-only", action="store_true",
                    help="only the time from the first failing answer to the decision")
    args = ap.parse_args()
    target = Target()
    with running_engine() as engine:
        for n in [] if args.decision_only else args.containers:
            for labelled in (False, True):
                runs = [cost(engine, n, labelled, args.seconds, args.warmup, target)
                        for _ in range(args.runs)]
                what = "probe+scrape" if labelled else "baseline"
                print(f"{n} containers {what}: CPU {statistics.median(r[0] for r in runs):.2f} % "
                      f"of one core, peak RSS {statistics.median(r[1] for r in runs):.0f} MiB "
                      f"(median of {args.runs})", flush=True)
        times = [decision_time(engine, target) for _ in range(args.runs + 2)]
        decided = [t[0] for t in times]
        print(f"first failing answer -> first decision (alert): median "
              f"{statistics.median(decided):.2f} s, max {max(decided):.2f} s"
              f"; -> restart (persist_s 5 s): median {statistics.median(t[1] for t in times):.2f} s"
              f" (n={len(times)}, probe interval 5 s)")


if __name__ == "__main__":
    main()
