"""What healthd exports: /metrics (promtool-clean), /status and the `healthd status` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd, assert_promtool_clean

pytestmark = pytest.mark.engine


@pytest.fixture
def running(engine: Engine, tmp_path: Path) -> Iterator[Healthd]:
    h = Healthd(engine, tmp_path)
    yield h.start()
    assert h.stop() == 0, "SIGTERM must end healthd cleanly with exit 0\n" + h.log()


def test_metrics_pass_promtool_and_count_what_healthd_sees(
    running: Healthd, containers: Containers
) -> None:
    containers.run("should-be-watched", "sleep", "1000", opts=("--memory", "64m"))
    running.wait_sweeps(2)
    text = running.get("/metrics").decode()
    for name in ("healthd_containers{health=", "healthd_decisions_total",
                 "healthd_actions_total", "healthd_event_lag_seconds",
                 "healthd_stats_sweep_duration_seconds",
                 "healthd_event_to_action_seconds_bucket", "healthd_stats_path_info{path="):
        assert name in text, name
    assert 'healthd_containers{health="healthy"} 1.0' in text
    assert_promtool_clean(text)


def test_status_cli_shows_one_row_per_container(running: Healthd, containers: Containers) -> None:
    cid = containers.run("should-show-in-status", "sleep", "1000")
    name = containers.name_of(cid)
    wait_for(lambda: any(c["name"] == name for c in running.status()["containers"]), 30,
             what="the container in /status")
    out = subprocess.run([sys.executable, "-m", "healthd", "status", "--url", running.url],
                         capture_output=True, text=True, check=True, env={**os.environ}).stdout
    assert "CONTAINER" in out and "HEALTH" in out and "LAST ACTION" in out
    line = next(ln for ln in out.splitlines() if ln.startswith(name))
    assert "healthy" in line
    assert running.get("/healthz") == b"ok\n"
