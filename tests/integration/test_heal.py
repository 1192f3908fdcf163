"""healthd heals containers on a real engine: the restart path end to end, and its guards.

Containers are named for the outcome the test expects (``should-restart``,
``should-not-restart-opted-out``). Every wait has a deadline; "healthd left it alone" is
checked after healthd has run several sweeps, not after a fixed sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd

pytestmark = pytest.mark.engine

# First run: misbehave once (marker file in the writable layer survives a restart);
# after one restart, behave. So "healed" is observable and not an endless loop.
CRASH_ONCE = "if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; sleep 0.3; exit 3"
UNHEALTHY_ONCE = "if [ -e /ran ]; then touch /ok; fi; touch /ran; exec sleep 1000"
HEALTHCHECK = ("--health-cmd", "test -e /ok", "--health-interval", "1s", "--health-retries", "1")


@pytest.fixture
def healthd(engine: Engine, tmp_path: Path) -> Iterator[list[Healthd]]:
    """Started healthd processes of one test; all are stopped at the end."""
    made: list[Healthd] = []
    yield made
    for h in made:
        h.kill()


def start(engine: Engine, tmp_path: Path, made: list[Healthd], **kw: object) -> Healthd:
    h = Healthd(engine, tmp_path, **kw)  # type: ignore[arg-type]
    made.append(h)
    return h.start()


def state(engine: Engine, name: str) -> dict[str, object]:
    return dict(engine.client.api.inspect_container(name)["State"])


def test_unhealthy_container_is_restarted_and_recovers(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthd)
    cid = containers.run("should-restart-unhealthy", "sh", "-c", UNHEALTHY_ONCE,
                         opts=(*HEALTHCHECK, "--label", "healthd.stop.timeout=1"))
    name = containers.name_of(cid)
    rows = wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 30,
                    what=f"a successful restart\n{h.log()}")
    assert rows[0]["rule"] == "unhealthy.critical"
    assert "healthcheck failing" in rows[0]["explanation"]
    wait_for(lambda: state(engine, name)["Health"]["Status"] == "healthy", 30,  # type: ignore[index]
             what="healthy after the restart")
    h.wait_sweeps(3)
    assert len(h.restarts(name)) == 1, h.log()


def test_container_that_exits_non_zero_is_restarted(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthd)
    cid = containers.run("should-restart-crashed", "sh", "-c", CRASH_ONCE)
    name = containers.name_of(cid)
    rows = wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 30,
                    what=f"a successful restart\n{h.log()}")
    assert rows[0]["rule"] == "crashed.critical"
    assert "exited with code 3" in rows[0]["explanation"]
    wait_for(lambda: state(engine, name)["Running"], 10, what="running again")
    snap = h.status()
    row = next(c for c in snap["containers"] if c["name"] == name)
    assert row["last_action"].startswith(f"restart {name}: rule crashed.critical")


def test_crash_loop_hits_the_budget_then_alerts_and_is_left_alone(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path
) -> None:
    cfg = {"guards": {"budget_restarts": 2, "cooldown_s": 0.0, "backoff_base_s": 0.2}}
    h = start(engine, tmp_path, healthd, cfg=cfg)
    cid = containers.run("should-restart-twice-then-alert", "sh", "-c", "sleep 0.3; exit 1")
    name = containers.name_of(cid)
    alert = wait_for(lambda: [r for r in h.rows(name) if r["action"] == "alert"], 60,
                     what=f"the budget alert\n{h.log()}")
    assert alert[0]["rule"] == "crashed.critical.budget_exhausted"
    assert alert[0]["outcome"] == "succeeded"
    assert len(h.restarts(name)) == 2
    h.wait_sweeps(4)
    assert len(h.restarts(name)) == 2, h.log()
    assert not state(engine, name)["Running"]
    assert len([r for r in h.rows(name) if r["action"] == "alert"
                and r["outcome"] == "succeeded"]) == 1, "the alert is raised once, not per tick"


@pytest.mark.parametrize("label", ["healthd.enable=false", "autoheal=false"],
                         ids=["healthd-label", "autoheal-label"])
def test_opted_out_container_is_never_touched(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path, label: str
) -> None:
    h = start(engine, tmp_path, healthd)
    cid = containers.run("should-not-restart-opted-out", "sh", "-c", "sleep 0.3; exit 1",
                         opts=("--label", label))
    name = containers.name_of(cid)
    rows = wait_for(lambda: h.rows(name), 30, what=f"the held decision\n{h.log()}")
    assert rows[0]["suppressed_by"].startswith("opted-out")
    h.wait_sweeps(3)
    assert h.restarts(name) == []
    assert state(engine, name)["Status"] == "exited"


def test_container_stopped_on_purpose_is_left_alone(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthd)
    cid = containers.run("should-not-restart-stopped", "sleep", "1000")
    engine.cli("stop", "-t", "1", cid)
    name = containers.name_of(cid)
    assert state(engine, name)["ExitCode"] != 0  # sleep ignores SIGTERM: killed, exit 137
    h.wait_sweeps(3)
    assert h.restarts(name) == []
    assert state(engine, name)["Status"] == "exited"


# Drains on SIGTERM the way servers do: it fails its healthcheck at once and keeps running
# until the engine's SIGKILL (sh holds TERM until its sleep ends, hence the short sleeps).
DRAINS = 'touch /ok; trap "rm -f /ok" TERM; while :; do sleep 0.2; done'


def test_a_container_turning_unhealthy_while_it_is_being_stopped_is_left_to_stop(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthd)
    cid = containers.run("should-not-restart-draining", "sh", "-c", DRAINS, opts=HEALTHCHECK)
    name = containers.name_of(cid)
    wait_for(lambda: state(engine, name)["Health"]["Status"] == "healthy", 30,  # type: ignore[index]
             what="healthy before the stop")
    engine.cli("stop", "-t", "6", cid)  # returns once the engine's SIGKILL has ended it
    held = wait_for(lambda: h.rows(name), 30, what=f"the held decision\n{h.log()}")
    assert held[0]["suppressed_by"].startswith("stopping"), held[0]["explanation"]
    h.wait_sweeps(3)
    assert h.restarts(name) == [], "a restart would undo the operator's docker stop"
    assert state(engine, name)["Status"] == "exited"


def test_dry_run_records_the_decision_and_touches_nothing(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthd, args=("--dry-run",))
    cid = containers.run("should-not-restart-dry-run", "sh", "-c", "sleep 0.3; exit 1")
    name = containers.name_of(cid)
    rows = wait_for(lambda: h.rows(name), 30, what=f"the dry-run decision\n{h.log()}")
    assert rows[0]["action"] == "restart"
    assert rows[0]["suppressed_by"].startswith("dry-run")
    assert rows[0]["outcome"] == "skipped"
    h.wait_sweeps(3)
    assert h.restarts(name) == []
    assert state(engine, name)["Status"] == "exited"
    assert h.status()["dry_run"] is True


def test_healthd_never_acts_on_its_own_container(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path
) -> None:
    # healthd joins the container's cgroup, as it would running inside it: then
    # /proc/self/cgroup names that container, and an unhealthy "self" must be left alone.
    cid = containers.run("should-not-restart-self", "sleep", "100000",
                         opts=("--health-cmd", "false", "--health-interval", "1s",
                               "--health-retries", "1"))
    procs = Path(f"/sys/fs/cgroup/pids/docker/{cid}/cgroup.procs")
    if not procs.exists():
        pytest.skip("needs the cgroup v1 cgroupfs layout of the test engine")
    h = Healthd(engine, tmp_path, join_cgroup=str(procs))
    healthd.append(h)
    h.start()
    name = containers.name_of(cid)
    rows = wait_for(lambda: h.rows(name), 30, what=f"the held decision\n{h.log()}")
    assert rows[0]["suppressed_by"].startswith("self"), rows[0]
    h.wait_sweeps(3)
    assert h.restarts(name) == []


def test_oom_killed_container_is_restarted_as_oom_killed(
    engine: Engine, containers: Containers, healthd: list[Healthd], tmp_path: Path
) -> None:
    # No pre-emptive memory restart: on a loaded machine the read can take long enough for
    # the forecast to see it coming and restart it first (predicted_exhaustion, once seen).
    h = start(engine, tmp_path, healthd, cfg={"decisions": {
        '"predicted_exhaustion.memory"': {"degraded": "none", "critical": "none"}}})
    # PID 1 reads 60 MB into a shell variable under a 32 MiB limit: the kernel OOM-kills
    # it within a second or so. Once restarted, it behaves.
    oom_once = ('if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; '
                'x=$(head -c 60000000 /dev/zero | tr "\\0" a); sleep 1000')
    cid = containers.run("should-restart-after-oom", "sh", "-c", oom_once,
                         opts=("--memory", "32m", "--memory-swap", "32m"))
    name = containers.name_of(cid)
    rows = wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 30,
                    what=f"a restart after the OOM kill\n{h.log()}")
    assert rows[0]["rule"] == "oom_killed.critical", rows[0]
    assert "OOM-killed" in rows[0]["explanation"]
    wait_for(lambda: state(engine, name)["Running"], 10, what="running again")
