"""Foresight on a real engine: a leaking container is restarted before the kernel OOM-kills it;
one sitting at steady high memory is left alone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd

pytestmark = pytest.mark.engine

# 2 MiB every 0.5 s into a tmpfs, which the memory cgroup charges and cannot reclaim
# (no swap): about 4 MiB/s towards a 96 MiB limit, so the kernel would OOM-kill it in ~25 s.
LEAK = "i=0; while :; do dd if=/dev/zero of=/tmp/f$i bs=1M count=2 2>/dev/null; i=$((i+1)); " \
       "sleep 0.5; done"
# 60 MiB of 96 MiB (62%), allocated at once and then held: high, but not rising. /ready
# says the allocation is done: on a loaded machine it takes long enough to look like a
# leak in the making (an honest forecast of its rise), so healthd starts watching after.
STEADY = ("dd if=/dev/zero of=/tmp/f bs=1M count=60 2>/dev/null; touch /ready; "
          "exec sleep 100000")
LIMITS = ("--memory", "96m", "--memory-swap", "96m", "--tmpfs", "/tmp:size=200m",
          "--label", "healthd.stop.timeout=0")
FORESIGHT = {
    "watch": {"stats_interval_s": 0.5},
    # step_s 0: the forecaster takes every one of the 0.5 s sweeps (10 s horizons).
    "forecast": {"horizon_s": 10.0, "min_samples": 10, "step_s": 0.0},
}


@pytest.fixture
def healthd(engine: Engine, tmp_path: Path) -> Iterator[Healthd]:
    h = Healthd(engine, tmp_path, cfg=FORESIGHT)
    yield h.start()
    h.kill()


def test_leaking_container_is_restarted_before_the_oom_killer(
    engine: Engine, containers: Containers, tmp_path: Path
) -> None:
    steady = containers.run("should-not-restart-steady-high", "sh", "-c", STEADY, opts=LIMITS)
    wait_for(lambda: engine.cli("exec", steady, "test", "-e", "/ready", check=False)
             .returncode == 0, 30, what="the steady container's allocation done")
    healthd = Healthd(engine, tmp_path, cfg=FORESIGHT).start()
    try:
        _leak_is_restarted_in_time(engine, containers, healthd, steady)
    finally:
        healthd.kill()


def _leak_is_restarted_in_time(engine: Engine, containers: Containers, healthd: Healthd,
                               steady: str) -> None:
    leak = containers.run("should-restart-before-oom", "sh", "-c", LEAK, opts=LIMITS)
    name = containers.name_of(leak)

    def shown_forecast() -> str | None:
        out = subprocess.run([sys.executable, "-m", "healthd", "status", "--url", healthd.url],
                             capture_output=True, text=True, check=True).stdout
        line = next((ln for ln in out.splitlines() if ln.startswith(name)), "")
        return line if "memory full in" in line else None

    # Before acting, healthd shows what it foresees, in status and in /metrics.
    wait_for(shown_forecast, 60, what=f"the forecast in healthd status\n{healthd.log()}")
    assert f'healthd_forecast_exhaustion_seconds{{container="{name}",resource="memory"}}' \
        in healthd.get("/metrics").decode()
    rows = wait_for(lambda: healthd.restarts(name), 90, what=f"a pre-emptive restart\n"
                    f"{healthd.log()}")
    assert rows[0]["rule"] == "predicted_exhaustion.memory.critical", rows[0]
    assert "memory full in" in rows[0]["explanation"]
    assert "memory full in" in healthd.log()
    state = engine.client.api.inspect_container(leak)["State"]
    assert state["OOMKilled"] is False
    wait_for(lambda: healthd.restarts(name)[0]["outcome"] == "succeeded", 30, what="restarted")
    assert engine.client.api.inspect_container(leak)["State"]["OOMKilled"] is False
    assert engine.client.api.inspect_container(leak)["State"]["Running"] is True
    steady_name = containers.name_of(steady)
    assert healthd.rows(steady_name) == []
    snap = healthd.status()
    row = next(c for c in snap["containers"] if c["name"] == steady_name)
    assert row["health"] == "healthy"
    assert any(f["resource"] == "memory" for f in row["forecasts"])


def test_replicas_of_one_service_are_restarted_one_at_a_time(
    engine: Engine, containers: Containers, healthd: Healthd
) -> None:
    # Two replicas leaking in step. PID 1 ignores SIGTERM, so each restart takes the full
    # 3 s stop timeout: while one replica restarts, the other must wait its turn.
    service = ("--label", "com.docker.compose.project=shop",
               "--label", "com.docker.compose.service=web",
               "--label", "healthd.stop.timeout=3")
    opts = (*LIMITS[:-2], *service)
    ids = [containers.run("should-restart-in-turn", "sh", "-c", LEAK, opts=opts)
           for _ in range(2)]
    names = [containers.name_of(c) for c in ids]

    def both_done() -> bool:
        return all(any(r["outcome"] == "succeeded" for r in healthd.restarts(n)) for n in names)

    wait_for(both_done, 120, what=f"both replicas restarted\n{healthd.log()}")
    first, second = sorted((healthd.restarts(n)[0] for n in names), key=lambda r: r["at"])
    assert second["at"] >= first["completed_at"], (first, second)
    held = [r["suppressed_by"] for r in healthd.rows(second["container"]) if r["suppressed_by"]]
    assert any(h.startswith("one-at-a-time") for h in held), held
    for c in ids:
        assert engine.client.api.inspect_container(c)["State"]["OOMKilled"] is False
