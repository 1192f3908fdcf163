"""healthd survives what goes wrong around it: engine restarts, SIGKILL, bad config."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd
from tests.integration.wedge import wedged_main_loop

pytestmark = pytest.mark.engine


def test_events_stream_reconnects_after_engine_restart_and_heals_what_broke_meanwhile(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path
) -> None:
    h = Healthd(engine, tmp_path)
    healthds.append(h)
    h.start()
    engine.restart()  # healthd's events stream drops; it backs off and retries
    # Break a container right away, before healthd is back on the stream.
    cid = containers.run("should-restart-after-outage", "sh", "-c",
                         "if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; exit 4")
    name = containers.name_of(cid)
    rows = wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 60,
                    what=f"restart after the outage\n{h.log()}")
    assert rows[0]["rule"] == "crashed.critical"
    wait_for(h.ready, 30, what="healthz back to 200")
    assert "re-established" in h.log()
    assert "healthd_engine_reconnects_total 1.0" in h.get("/metrics").decode()


def test_sigkill_mid_action_keeps_history_and_does_not_repeat_the_action(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path
) -> None:
    first = Healthd(engine, tmp_path, cfg={"guards": {"cooldown_s": 60.0}})
    healthds.append(first)
    first.start()
    # Unhealthy once; `sleep` as PID 1 ignores SIGTERM, so the restart takes the full
    # 4 s stop timeout: a window to kill healthd while the action is in flight.
    cid = containers.run(
        "should-restart-once-across-sigkill", "sh", "-c",
        "if [ -e /ran ]; then touch /ok; fi; touch /ran; exec sleep 1000",
        opts=("--health-cmd", "test -e /ok", "--health-interval", "1s", "--health-retries", "1",
              "--label", "healthd.stop.timeout=4"))
    name = containers.name_of(cid)
    since = time.time()
    wait_for(lambda: [r for r in first.rows(name) if r["outcome"] == "pending"], 30,
             what=f"the pending restart\n{first.log()}")
    # The intent is written before the call: wait until the engine has the restart (its
    # SIGTERM to the container), so the kill lands while the action is in flight there.
    wait_for(lambda: list(engine.client.api.events(
        since=since, until=time.time(), decode=True,
        filters={"container": name, "event": "kill"})), 30,
        what=f"the engine's kill of the container\n{first.log()}")
    first.kill()
    second = Healthd(engine, tmp_path, cfg={"guards": {"cooldown_s": 60.0}})
    healthds.append(second)
    second.start()
    rows = second.rows(name)
    sent = [r["outcome"] for r in rows if r["action"] == "restart" and r["outcome"] != "skipped"]
    assert sent == ["abandoned"], rows
    wait_for(lambda: engine.client.api.inspect_container(name)["State"].get("Health", {})
             .get("Status") == "healthy", 30, what="the container healthy after the restart")
    second.wait_sweeps(4)
    restarts = [r for r in second.rows(name) if r["action"] == "restart"
                and r["outcome"] != "skipped"]
    assert len(restarts) == 1, second.log()
    history = subprocess.run(
        [sys.executable, "-m", "healthd", "history", "--state", str(second.state), "--json"],
        capture_output=True, text=True, check=True, env={**os.environ})
    assert "abandoned" in history.stdout


BAD = """
[guards]
cooldown_s = "soon"
budget_restart = 3
[watch]
mode = "sometimes"
[decisions]
crashed = { critical = "reboot" }
"""


def test_bad_config_gives_clear_errors_naming_each_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    for cmd in (["check-config", str(bad)], ["run", "--config", str(bad)]):
        done = subprocess.run([sys.executable, "-m", "healthd", *cmd], capture_output=True,
                              text=True, timeout=60,
                              env={**os.environ, "DOCKER_HOST": "unix:///nonexistent"})
        assert done.returncode == 2, done
        for key in ("guards.cooldown_s", "guards.budget_restart", "watch.mode",
                    "decisions.crashed.critical"):
            assert key in done.stderr, (key, done.stderr)
        assert "Traceback" not in done.stderr


def _healthz(h: Healthd) -> tuple[int, str]:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(h.url + "/healthz", timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_a_wedged_main_loop_turns_healthz_unhealthy_and_back(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path
) -> None:
    h = Healthd(engine, tmp_path, cfg={"daemon": {"liveness_s": 2.0}})
    healthds.append(h)
    h.start()
    h.wait_sweeps(2)
    with wedged_main_loop(containers, tmp_path):
        _, body = wait_for(lambda: (r := _healthz(h))[0] == 503 and r, 15,
                           what=f"/healthz 503 while the loop is stuck\n{h.log()}")
        assert "main loop stalled" in body
    wait_for(h.ready, 15, what=f"/healthz back to 200 once the loop turns\n{h.log()}")
    assert h.proc is not None and h.proc.poll() is None
