"""Compose scaling on the real engine: sustained CPU pressure earns replicas up to the max,
a window of slack takes healthd's replicas away again, and Compose sees them all along."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from healthd.cli import main
from tests.compose import Project
from tests.engine import Engine, wait_for
from tests.integration.healthd_proc import Healthd

pytestmark = pytest.mark.engine

# Busy while /shared/idle is missing; each replica is held to a fifth of a core, so it
# runs at its CPU limit (the pressure) without starving the machine.
HOT = """
version: "2.4"
services:
  worker:
    image: IMAGE
    network_mode: none
    cpus: 0.2
    volumes: [shared:/shared]
    stop_grace_period: 1s
    labels: {"healthd.replicas.max": "3"}
    command: ["sh", "-c", "while :; do if [ -e /shared/idle ]; then sleep 1; fi; done"]
volumes:
  shared:
"""
FAST_SCALING = {"scaling": {"scale_up_window_s": 2.0, "scale_down_window_s": 6.0,
                            "cooldown_s": 1.0, "target_cpu": 0.5}}


@pytest.fixture
def project(engine: Engine, tmp_path: Path) -> Iterator[Project]:
    p = Project(engine, tmp_path, HOT, hint="hot")
    yield p
    p.down()


def _scale_rows(h: Healthd, service: str, action: str) -> list[dict[str, Any]]:
    return [r for r in h.rows(service) if r["action"] == action and r["outcome"] == "succeeded"]


def _verdicts(h: Healthd, service: str) -> list[tuple[str, str]]:
    """(action, verdict) of the service's judged scale steps, from ``healthd history``."""
    out = CliRunner().invoke(main, ["history", "--state", str(h.state), "--json",
                                    "--container", service], env={"HEALTHD_CONFIG": ""})
    assert out.exit_code == 0, out.output
    return [(r["action"], r["verdict"]["kind"]) for r in json.loads(out.output)
            if r["action"] in ("scale_up", "scale_down") and r["outcome"] == "succeeded"
            and r["verdict"] and r["verdict"]["kind"] != "pending"]


def test_sustained_cpu_pressure_scales_up_to_max_then_down_after_the_window(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    project.up()
    service = f"{project.name}/worker"
    h = Healthd(engine, tmp_path, cfg={**FAST_SCALING, "verify": {
        "scale_up": 5.0, "scale_down": 5.0, "settle_s": 5.0}})
    try:
        h.start()
        wait_for(lambda: len(project.ids("worker")) == 3, 90,
                 what=f"3 replicas\n{h.log()}")
        ups = _scale_rows(h, service, "scale_up")
        assert len(ups) == 2 and all(r["rule"].startswith("sustained_pressure") for r in ups)
        assert "cpu" in ups[0]["explanation"] and "of limit" in ups[0]["explanation"]
        names = set(engine.cli("ps", "--format", "{{.Names}}").stdout.split())
        assert {project.container("worker", n) for n in (1, 2, 3)} <= names
        held = wait_for(lambda: [r for r in h.rows(service)
                                 if (r["suppressed_by"] or "").startswith("at-max")], 30,
                        what=f"the held scale-up says why\n{h.log()}")
        assert "3 replicas is the service's maximum" in held[0]["suppressed_by"]
        h.wait_sweeps(4)
        assert len(project.ids("worker")) == 3, "never beyond healthd.replicas.max"
        project.exec("worker", "touch", "/shared/idle")
        wait_for(lambda: len(project.ids("worker")) == 1, 90,
                 what=f"back to the operator's one replica\n{h.log()}")
        downs = _scale_rows(h, service, "scale_down")
        assert len(downs) == 2 and all(r["rule"].startswith("idle_replicas") for r in downs)
        assert engine.client.api.inspect_container(project.container("worker", 1))
        # Did each step hold? More replicas of a busy loop never relieved its pressure;
        # removing them once it was idle did not bring any back.
        got = wait_for(lambda: (lambda v: v if len(v) == 4 else None)(_verdicts(h, service)),
                       30, what=f"four verdicts: {_verdicts(h, service)}\n{h.log()}")
        assert sorted(k for a, k in got if a == "scale_up") == ["not_fixed", "not_fixed"], got
        assert [k for a, k in got if a == "scale_down"] == ["fixed", "fixed"], got
    finally:
        h.kill()
