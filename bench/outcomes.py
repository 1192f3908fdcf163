"""Benchmark: the escalation ladder against restart-only healing, side by side.

On a throwaway dockerd, two real ``healthd run`` processes watch the same engine in opt-in
mode, each its own containers (opt-in labels ``bench.arm=ladder`` / ``bench.arm=restart``):
one with the default ladders, one with ``[ladder] enabled = false`` (restart every time
until the budget's breaker opens: healthd before ladders). Each arm gets the same Compose
v1 services, ``--per-kind`` replicas of three fault kinds, all broken at the same moment:

  transient        /run/bad on a tmpfs: one restart (fresh tmpfs) fixes it
  recreate-only    /poison in the container's writable layer: a restart keeps it, only a
                   recreate (a new container from the image) fixes it
  unfixable        turns unhealthy 3 s after every start: nothing fixes it

Per arm and fault kind, after ``--watch`` seconds: how many recovered (healthy at the end
and for the last 10 s), the time from the break to the first healthy of the container that
stayed healthy (median / p95 of the recovered), and the actions per incident (restarts,
recreates and alerts healthd took on it: median and max).

    python bench/outcomes.py [--runs 3] [--per-kind 3] [--watch 150] [--window 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.compose import Project  # noqa: E402
from tests.engine import Engine, running_engine, wait_for  # noqa: E402
from tests.integration.healthd_proc import Healthd  # noqa: E402

KINDS = ("transient", "recreate-only", "unfixable")
_COMMAND = {
    "transient": "exec sleep 100000",
    "recreate-only": "exec sleep 100000",
    # Once broken (/state/go, on a named volume a recreate keeps), healthy for 3 s after
    # every start, then unhealthy.
    "unfixable": "test -e /state/go && sleep 3 && touch /run/bad; exec sleep 100000",
}
_CHECK = {"transient": "test ! -e /run/bad", "recreate-only": "test ! -e /poison",
          "unfixable": "test ! -e /run/bad"}


def compose(arm: str, per_kind: int) -> str:
    services = []
    for kind in KINDS:
        for i in range(per_kind):
            volume = "\n    volumes: [faults:/state]" if kind == "unfixable" else ""
            services.append(f"""
  {kind.replace('-', '')}{i}:
    image: IMAGE
    network_mode: none
    command: sh -c "{_COMMAND[kind]}"
    tmpfs: [/run]{volume}
    stop_grace_period: 1s
    labels: {{bench.arm: "{arm}", bench.kind: "{kind}"}}
    healthcheck:
      test: ["CMD-SHELL", "{_CHECK[kind]}"]
      interval: 1s
      timeout: 2s
      retries: 1""")
    return 'version: "2.4"\nservices:' + "".join(services) + "\nvolumes:\n  faults:\n"


def _health(engine: Engine, name: str) -> tuple[str | None, float]:
    """(health status, start time) of the container named ``name`` now."""
    try:
        s = engine.client.api.inspect_container(name)["State"]
    except docker.errors.APIError:  # between a recreate's rename and create: no such name
        return None, time.time()
    return s.get("Health", {}).get("Status"), time.time()


def config(arm: str, window_s: float) -> dict[str, dict[str, Any]]:
    return {"watch": {"mode": "opt-in", "opt_in_label": f"bench.arm.{arm}"},
            "verify": {"default": window_s},
            "ladder": {"enabled": arm == "ladder"},
            "guards": {"budget_restarts": 5, "budget_window_s": 600.0,
                       "global_actions_per_minute": 600}}


def one_run(engine: Engine, work: Path, per_kind: int, watch_s: float,
            window_s: float) -> dict[tuple[str, str], list[dict[str, Any]]]:
    projects, healthds = {}, {}
    try:
        for arm in ("ladder", "restart"):
            text = compose(arm, per_kind).replace(
                f'bench.arm: "{arm}"', f'bench.arm: "{arm}", bench.arm.{arm}: "true"')
            projects[arm] = Project(engine, work / arm, text, hint=f"out{arm}")
            projects[arm].up()
        for p in projects.values():
            for kind in KINDS:
                for i in range(per_kind):
                    name = p.container(f"{kind.replace('-', '')}{i}")
                    wait_for(lambda n=name: _health(engine, n)[0] == "healthy", 60,
                             what=f"{name} healthy")
        for arm in projects:
            (work / f"h-{arm}").mkdir()
            healthds[arm] = Healthd(engine, work / f"h-{arm}", cfg=config(arm, window_s))
            healthds[arm].start()
        broke = time.time()
        for p in projects.values():  # every fault at once
            for i in range(per_kind):
                p.exec(f"transient{i}", "touch", "/run/bad")
                p.exec(f"recreateonly{i}", "touch", "/poison")
                p.exec(f"unfixable{i}", "sh", "-c", "touch /state/go /run/bad")
        well_since: dict[str, float | None] = {}
        first_well: dict[str, float | None] = {}
        names = {(arm, kind): [p.container(f"{kind.replace('-', '')}{i}")
                               for i in range(per_kind)]
                 for arm, p in projects.items() for kind in KINDS}
        while time.time() - broke < watch_s:
            for group in names.values():
                for n in group:
                    status, at = _health(engine, n)
                    if status == "healthy":
                        if well_since.get(n) is None:
                            well_since[n] = at
                            first_well[n] = at
                    else:
                        well_since[n] = None
            time.sleep(0.5)
        end = time.time()
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (arm, kind), group in names.items():
            rows = []
            for n in group:
                since = well_since.get(n)
                acts = [r for r in healthds[arm].rows(n)
                        if r["action"] in ("restart", "recreate", "alert")
                        and r["outcome"] == "succeeded"]
                recovered = since is not None and end - since >= 10.0
                rows.append({"recovered": recovered,
                             "to_recovery_s": (since - broke) if recovered and since else None,
                             "actions": len(acts),
                             "chain": [r["action"] for r in sorted(acts,
                                                                   key=lambda r: r["at"])]})
            out[(arm, kind)] = rows
        return out
    finally:
        for h in healthds.values():
            h.stop()
        for p in projects.values():
            p.down()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(results: dict[tuple[str, str], list[dict[str, Any]]], watch_s: float) -> str:
    lines = ["| fault | arm | recovered | to recovery: median / p95 | actions per incident:"
             " median / max | typical chain |", "|---|---|---|---|---|---|"]
    for kind in KINDS:
        for arm in ("ladder", "restart"):
            rows = results[(arm, kind)]
            rec = [r["to_recovery_s"] for r in rows if r["recovered"]]
            acts = [r["actions"] for r in rows]
            times = (f"{statistics.median(rec):.0f} / {_pct(rec, 0.95):.0f} s" if rec
                     else "-")
            chain = max((" → ".join(r["chain"]) for r in rows), key=len, default="")
            label = "ladder" if arm == "ladder" else "restart-only"
            lines.append(f"| {kind} | {label} | {len(rec)} of {len(rows)} | {times} | "
                         f"{statistics.median(acts):.0f} / {max(acts)} | {chain or '-'} |")
    return "\n".join(lines) + f"\n\n(watched {watch_s:.0f} s after the break)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs, their incidents pooled")
    ap.add_argument("--per-kind", type=int, default=3)
    ap.add_argument("--watch", type=float, default=150.0)
    ap.add_argument("--window", type=float, default=20.0,
                    help="verification window (s) for both arms")
    args = ap.parse_args()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with running_engine() as engine:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                one = one_run(engine, Path(tmp), args.per_kind, args.watch, args.window)
            for key, rows in one.items():
                results.setdefault(key, []).extend(rows)
    print(f"bench/outcomes.py {time.strftime('%Y-%m-%d')}: {args.runs} runs x "
          f"{args.per_kind} containers per fault kind and arm, broken at once, verify "
          f"window {args.window:.0f} s")
    print(report(results, args.watch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
