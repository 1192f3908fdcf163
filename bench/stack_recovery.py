"""Benchmark: from a dependency's recovery to its held dependents' restarts.

On a throwaway dockerd, the web -> api -> db Compose v1 project of the stack tests: db is
broken (its healthcheck fails, so api and web fail with it), api is broken on its own too,
and the real ``healthd run`` heals db, holds api and web, and restarts api once db has been
healthy for ``settle_s``. Measured per run, from the engine's own events: db's
``health_status: healthy`` to healthd's restart call of api (the ledger's intent row), minus
settle_s: healthd's own reaction time on top of the settle time the operator asked for.

    python bench/stack_recovery.py [--runs 5] [--settle 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.compose import Project  # noqa: E402
from tests.engine import Engine, running_engine, wait_for  # noqa: E402
from tests.integration.healthd_proc import Healthd  # noqa: E402
from tests.integration.test_stacks import STACK  # noqa: E402


def _health(engine: Engine, name: str) -> str | None:
    return engine.client.api.inspect_container(name)["State"].get("Health", {}).get("Status")


def healthy_event_at(engine: Engine, name: str, since: float) -> float:
    """The engine's time of the first ``health_status: healthy`` of ``name`` after since."""
    events = engine.client.api.events(since=int(since), until=int(time.time()) + 1,
                                      decode=True, filters={"container": name,
                                                            "event": "health_status"})
    for ev in events:
        if ev.get("status", "").endswith(": healthy"):
            return float(ev["timeNano"]) / 1e9
    raise RuntimeError(f"no healthy event for {name}")


def one_run(engine: Engine, work: Path, settle: float) -> float:
    p = Project(engine, work, STACK.replace("LABELS_API", "{}"), hint="bench")
    h = Healthd(engine, work / p.name, cfg={"stacks": {"settle_s": settle}})
    try:
        p.up()
        for svc in ("db", "api", "web"):
            wait_for(lambda s=svc: _health(engine, p.container(s)) == "healthy", 60)
        h.start()
        broke = time.time()
        p.exec("db", "rm", "/run/ok")
        wait_for(lambda: _health(engine, p.container("api")) == "unhealthy", 30)
        p.exec("api", "touch", "/run/broken")
        api = wait_for(lambda: h.restarts(p.container("api")), 120)[0]
        db_healthy = healthy_event_at(engine, p.container("db"), broke)
        return float(api["at"]) - db_healthy - settle
    finally:
        h.kill()
        p.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--settle", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_engine() as engine:
        delays = [one_run(engine, Path(tmp) / f"run{i}", args.settle) for i in range(args.runs)]
    print(json.dumps({"runs": args.runs, "settle_s": args.settle,
                      "reaction_after_settle_s": [round(d, 3) for d in delays]}))
    print(f"db healthy -> api restart, beyond settle_s={args.settle:g}: median "
          f"{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms "
          f"over {args.runs} runs")


if __name__ == "__main__":
    main()
