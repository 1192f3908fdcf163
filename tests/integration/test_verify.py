"""Did the fix hold? A real healthd watches its own restarts on the real engine and
records a verdict beside each: fixed once the container stayed well for its window,
recurred at once when it failed again, and a window running at a SIGKILL is resumed from
the state file (the verdict still given, the restart not repeated).

Containers are named for the verdict the test expects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from healthd.cli import main
from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd

pytestmark = pytest.mark.engine

# Exits 3 once; after one restart it runs on.
CRASH_ONCE = "if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; sleep 0.3; exit 3"
# Crashes 2 s after every start: a restart never holds.
CRASH_ALWAYS = "sleep 2; exit 3"
WINDOW_S = 6.0
CFG: dict[str, dict[str, Any]] = {"verify": {"restart": WINDOW_S}}


def history(h: Healthd, name: str) -> list[dict[str, Any]]:
    """``healthd history --json`` rows of ``name``, as an operator would read them."""
    out = CliRunner().invoke(main, ["history", "--state", str(h.state), "--json",
                                    "--container", name], env={"HEALTHD_CONFIG": ""})
    assert out.exit_code == 0, out.output
    return list(json.loads(out.output))


def verdicts(h: Healthd, name: str) -> list[dict[str, Any]]:
    return [r["verdict"] for r in history(h, name)
            if r["action"] == "restart" and r["verdict"] and r["verdict"]["kind"] != "pending"]


def metric(h: Healthd, verdict: str) -> float:
    for line in h.get("/metrics").decode().splitlines():
        if line.startswith("healthd_action_verdicts_total{") and f'verdict="{verdict}"' in line:
            return float(line.split()[-1])
    return 0.0


def test_a_restart_that_holds_gets_fixed_after_its_window(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    h = Healthd(engine, tmp_path, cfg=CFG)
    healthds.append(h)
    h.start()
    name = containers.name_of(containers.run("should-be-fixed", "sh", "-c", CRASH_ONCE))
    wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 30,
             what=f"the restart\n{h.log()}")
    watching = wait_for(lambda: [w for w in h.status()["verifying"] if w["container"] == name],
                        10, what="the window in /status")
    assert watching[0]["action"] == "restart" and watching[0]["window_s"] == WINDOW_S
    got = wait_for(lambda: verdicts(h, name), WINDOW_S + 30, what=f"a verdict\n{h.log()}")
    assert got[0]["kind"] == "fixed", (got, h.log())
    assert got[0]["evidence"].startswith(f"crashed stayed away for {WINDOW_S:.0f} s after "
                                         "the restart at "), got
    assert metric(h, "fixed") == 1.0
    assert len(h.restarts(name)) == 1


def test_a_restart_that_does_not_hold_gets_recurred_at_once(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    # A long window: the verdict must come with the crash, not at the window's end.
    h = Healthd(engine, tmp_path, cfg={"verify": {"restart": 600.0}})
    healthds.append(h)
    h.start()
    name = containers.name_of(containers.run("should-recur", "sh", "-c", CRASH_ALWAYS))
    got = wait_for(lambda: verdicts(h, name), 60, what=f"a verdict\n{h.log()}")
    assert got[-1]["kind"] == "recurred", (got, h.log())
    assert got[-1]["after_s"] is not None and 1.0 <= got[-1]["after_s"] < 30.0, got
    assert metric(h, "recurred") >= 1.0
    assert "verdict on restart " + name + ": recurred" in h.log()


def test_a_window_running_at_a_sigkill_is_resumed_and_the_restart_not_repeated(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    h = Healthd(engine, tmp_path, cfg=CFG)
    healthds.append(h)
    h.start()
    cid = containers.run("should-be-fixed-after-sigkill", "sh", "-c", CRASH_ONCE)
    name = containers.name_of(cid)
    wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 30,
             what=f"the restart\n{h.log()}")
    wait_for(lambda: [r for r in history(h, name)
                      if r["verdict"] and r["verdict"]["kind"] == "pending"], 10,
             what="the pending verdict in the state file")
    h.kill()
    again = Healthd(engine, tmp_path, cfg=CFG)
    healthds.append(again)
    again.start()
    got = wait_for(lambda: verdicts(again, name), WINDOW_S + 30,
                   what=f"a verdict after the restart of healthd\n{again.log()}")
    assert got[0]["kind"] == "fixed", (got, h.log(), again.log())
    assert "watched again" in again.log()
    again.wait_sweeps(2)
    assert len(again.restarts(name)) == 1, "the restart was not repeated"
    assert engine.client.api.inspect_container(cid)["State"]["Running"]
