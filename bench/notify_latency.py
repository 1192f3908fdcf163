"""Benchmark: how fast a notification reaches its receiver, and a backlog after an outage.

1. Delivery path alone (no engine): the notifier with its SQLite spool and a webhook
   receiver on 127.0.0.1 (group_wait_s = 0): from ``submit`` to the receiver's arrival
   time, one notice at a time.
2. End to end (the test suite's throwaway dockerd, the real ``healthd run``): containers
   that crash once are restarted; from the ledger's "restart done" time (healthd's
   outcome record, the moment it submits the notice) and from the decision time (before
   the restart call) to the webhook receiver's arrival time. Same host clock.
3. Outage: the receiver is down for ``--outage`` seconds (``--ten-minutes``: 600) while a
   notice is submitted every ``--every`` seconds; then it comes back. Reports how long the
   spool takes to drain after the receiver is back, and checks that every notice arrived,
   once, in order. Retry back-off as configured by default (1 s doubling to 30 s) unless
   ``--retry-max`` says otherwise.

    python bench/notify_latency.py [--notices 200] [--containers 10] [--runs 3]
                                   [--outage 60 | --ten-minutes] [--every 1] [--no-engine]

Prints medians and p95; figures go in the README (group_wait_s adds to them as configured).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from healthd.act.notifier import Notifier  # noqa: E402
from healthd.core.model import Action, Decision, Failure, Health, Outcome  # noqa: E402
from healthd.core.notifyconfig import NotifyTarget, TargetKind  # noqa: E402
from healthd.serve.metrics import Metrics  # noqa: E402
from healthd.store.spool import Spool  # noqa: E402
from tests.engine import Engine, wait_for  # noqa: E402
from tests.integration.healthd_proc import Healthd  # noqa: E402
from tests.integration.receiver import Receiver  # noqa: E402

IMMEDIATE = {"group_wait_s": 0.0, "group_interval_s": 0.0, "repeat_interval_s": 0.0}
# First run: crash; after one restart, stay up (marker in the writable layer).
CRASH_ONCE = "if [ -e /ran ]; then exec sleep 100000; fi; touch /ran; sleep 0.3; exit 3"


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def summary(ms: list[float]) -> str:
    return f"n={len(ms)} median {statistics.median(ms):.1f} ms, p95 {pct(ms, 0.95):.1f} ms"


def alert(i: int) -> Decision:
    return Decision(Action.ALERT, f"cid{i}", f"bench-{i}", "crashed.critical.budget_exhausted",
                    Failure.CRASHED, Health.CRITICAL, ("exited with code 1",))


def notifier(tmp: Path, url: str, **target: float) -> Notifier:
    t = NotifyTarget("bench", TargetKind.WEBHOOK, url, **{**IMMEDIATE, **target})
    n = Notifier([t], Spool(str(tmp / "state.spool.db")), instance="bench",
                 status_url="http://bench/status", metrics=Metrics())
    n.start()
    return n


def delivery_path(count: int) -> list[float]:
    """Submit -> receiver, one notice at a time; milliseconds."""
    rx = Receiver().up()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        n = notifier(Path(tmp), rx.url)
        for i in range(count):
            t0 = time.time()
            n.submit(alert(i), Outcome.SUCCEEDED)
            got = rx.wait(i + 1)[-1]
            out.append((got.at - t0) * 1000)
        n.stop()
        n.spool.close()
    rx.close()
    return out


def end_to_end(engine: Engine, containers: int, runs: int) -> tuple[list[float], list[float]]:
    """(restart done -> receiver, decision -> receiver) in milliseconds."""
    rx = Receiver().up()
    done_ms: list[float] = []
    decided_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        h = Healthd(engine, Path(tmp), cfg={"guards": {"global_actions_per_minute": 10000}})
        h.config.write_text(h.config.read_text() + "[[notify]]\nname = \"bench\"\n"
                            f"kind = \"webhook\"\nurl = \"{rx.url}\"\n"
                            "events = [\"action\"]\ngroup_wait_s = 0.0\n"
                            "group_interval_s = 0.0\nrepeat_interval_s = 0.0\n")
        h.start()
        for run in range(runs):
            for i in range(containers):
                name = f"notify-bench-{run}-{i}"
                engine.cli("run", "-d", "--network", "none", "--name", name, engine.image,
                           "sh", "-c", CRASH_ONCE)
                doc = wait_for(lambda nm=name: next(
                    (r for r in rx.got for x in r.body["notices"] if x["container"] == nm),
                    None), 60, what=f"the notice about {name}\n{h.log()}")
                row = next(r for r in h.restarts(name) if r["outcome"] == "succeeded")
                done_ms.append((doc.at - row["completed_at"]) * 1000)
                decided_ms.append((doc.at - row["at"]) * 1000)
            engine.remove_all_containers()
        h.stop()
    rx.close()
    return done_ms, decided_ms


def outage(seconds: float, every: float, retry_max: float) -> None:
    """Receiver down for ``seconds`` while notices keep coming; then drain."""
    rx = Receiver()  # down
    with tempfile.TemporaryDirectory() as tmp:
        n = notifier(Path(tmp), rx.url, retry_max_s=retry_max)
        start = time.monotonic()
        sent = 0
        while time.monotonic() - start < seconds:
            n.submit(alert(sent), Outcome.SUCCEEDED)
            sent += 1
            time.sleep(every)
        attempts = n.metrics.registry.get_sample_value(
            "healthd_notifications_total", {"target": "bench", "result": "failed"}) or 0
        rx.up()
        back = time.monotonic()
        wait_for(lambda: len(rx.notice_ids()) >= sent, max(600.0, retry_max * 2),
                 interval=0.01, what="the backlog")
        drained = time.monotonic() - back
        wait_for(lambda: n.spool.depth("bench") == 0, 10, what="an empty spool")
        got = [x["container"] for b in rx.bodies() for x in b["notices"]]
        n.stop()
        n.spool.close()
    rx.close()
    in_order = got == [f"bench-{i}" for i in range(sent)]
    print(f"outage {seconds:.0f} s, a notice every {every:g} s: {sent} notices spooled, "
          f"{attempts:.0f} failed attempts (per notice in the message) while down; "
          f"retry back-off 1 s doubling to {retry_max:g} s")
    print(f"drained {drained:.2f} s after the receiver came back, in {len(rx.got)} messages; "
          f"received {len(got)} of {sent}, {len(set(got))} distinct, in order: {in_order}")
    assert in_order, "lost, duplicated or reordered notices"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notices", type=int, default=200)
    ap.add_argument("--containers", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--outage", type=float, default=60.0)
    ap.add_argument("--ten-minutes", action="store_true", help="--outage 600")
    ap.add_argument("--every", type=float, default=1.0)
    ap.add_argument("--retry-max", type=float, default=30.0)
    ap.add_argument("--no-engine", action="store_true")
    args = ap.parse_args()
    logging.getLogger("healthd").setLevel(logging.ERROR)  # failed attempts are expected here
    print(f"# {' '.join(sys.argv)} ({time.strftime('%Y-%m-%d')})")
    print(f"delivery path, submit -> receiver: {summary(delivery_path(args.notices))}")
    if not args.no_engine:
        engine = Engine().start()
        try:
            done, decided = end_to_end(engine, args.containers, args.runs)
        finally:
            engine.stop()
        print(f"end to end, restart done -> receiver: {summary(done)}")
        print(f"end to end, decision -> receiver (includes the restart): {summary(decided)}")
    outage(600.0 if args.ten_minutes else args.outage, args.every, args.retry_max)


if __name__ == "__main__":
    main()
