"""The escalation ladder on the real engine: a fix that does not hold takes the next rung,
the last rung hands the target to people (one alert with the whole chain, then hands off
until it recovers or a person resumes it), and a rung that never fixed a service's problem
is skipped with the counts as the reason.

Containers are named for what the test expects of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from healthd.cli import main
from healthd.store.verdicts import Record, VerdictStore
from tests.compose import Project
from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.engine

# api is healthy for about 3 s after every start (a restart clears /run, a tmpfs), then
# unhealthy: no restart or recreate ever holds. web depends on it (its healthcheck reads
# the marker api's keeps): while api fails, web fails too and is held, never acted on.
RELAPSING = """
version: "2.4"
services:
  api:
    image: IMAGE
    network_mode: none
    command: sh -c "sleep 3; touch /run/bad; exec sleep 100000"
    tmpfs: [/run]
    volumes: [shared:/shared]
    stop_grace_period: 1s
    healthcheck:
      test:
        - CMD-SHELL
        - >-
          if test ! -e /run/bad; then touch /shared/api-up;
          else rm -f /shared/api-up; false; fi
      interval: 1s
      timeout: 2s
      retries: 1
  web:
    image: IMAGE
    network_mode: none
    command: sleep 100000
    volumes: [shared:/shared]
    depends_on: [api]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test -e /shared/api-up"]
      interval: 1s
      timeout: 2s
      retries: 1
volumes:
  shared:
"""
# Unhealthy at its first start only: a restart (same writable layer, fresh /run) fixes it.
ONCE = RELAPSING.replace(
    'sh -c "sleep 3; touch /run/bad; exec sleep 100000"',
    'sh -c "test -e /ran || touch /ran /run/bad; exec sleep 100000"')
# Healthy until broken from outside (/run/bad, on a tmpfs: a restart mends it).
MENDABLE = RELAPSING.replace('sh -c "sleep 3; touch /run/bad; exec sleep 100000"',
                             "sleep 100000")
# OOM-killed within a second of every start (a 60 MB shell variable under 32 MiB); scaling
# is allowed up to two replicas.
STARVED = """
version: "2.4"
services:
  api:
    image: IMAGE
    network_mode: none
    command: sh -c 'x=$$(head -c 60000000 /dev/zero | tr "\\0" a); sleep 1000'
    mem_limit: 32m
    memswap_limit: 32m
    stop_grace_period: 1s
    labels: {healthd.replicas.max: "2"}
"""
# Long windows: each verdict must come from the relapse itself, not a window's end.
LONG = {"verify": {"restart": 600.0, "recreate": 600.0}}


TOKEN = "ladder-test-token-0123456789"


def cli(h: Healthd, *args: str) -> Any:
    """A command that reads the state file (works with healthd down)."""
    out = CliRunner().invoke(main, [*args, "--state", str(h.state)],
                             env={"HEALTHD_CONFIG": ""})
    assert out.exit_code == 0, out.output
    return out


def ask(h: Healthd, *args: str) -> Any:
    """A command that talks to the running healthd, as the operator 'tester'."""
    who = ("--who", "tester") if args[0] != "status" else ()
    out = CliRunner().invoke(main, [*args, "--url", h.url, "--token", TOKEN, *who],
                             env={"HEALTHD_CONFIG": "", "HEALTHD_TOKEN": ""})
    assert out.exit_code == 0, out.output
    return out


def history(h: Healthd, name: str) -> list[dict[str, Any]]:
    return list(json.loads(cli(h, "history", "--json", "--container", name).output))


def acted(h: Healthd, name: str) -> list[str]:
    """Actions healthd carried out (or raised, for alerts) on ``name``, oldest first."""
    rows = [r for r in h.rows(name) if r["outcome"] == "succeeded"]
    return [r["action"] for r in sorted(rows, key=lambda r: float(r["at"]))]


@pytest.fixture
def project(engine: Engine, tmp_path: Path) -> Iterator[Project]:
    p = Project(engine, tmp_path / "stack", RELAPSING, hint="relapse")
    yield p
    p.down()


def test_a_relapsing_service_climbs_restart_recreate_then_is_held_for_people(
        engine: Engine, project: Project, healthds: list[Healthd], tmp_path: Path) -> None:
    rx = Receiver().up()
    try:
        h = Healthd(engine, tmp_path, cfg={**LONG, "daemon": {"token": TOKEN}},
                    token=TOKEN).add_notify(
            {"name": "ops", "kind": "webhook", "url": rx.url, "group_wait_s": 0.0,
             "group_interval_s": 0.0, "retry_min_s": 0.05, "retry_max_s": 0.3})
        healthds.append(h)
        h.start()
        project.up()
        name = project.container("api")
        wait_for(lambda: "alert" in acted(h, name), 90,
                 what=f"the ladder to reach people: {acted(h, name)}\n{h.log()}")
        # Hands off from here: the container stays unhealthy and nothing more is done.
        h.wait_sweeps(6)
        assert acted(h, name) == ["restart", "recreate", "alert"], h.log()
        hold = next(r for r in h.rows(name) if r["action"] == "alert")
        assert hold["rule"] == "unhealthy.critical.ladder_hold", hold
        line = hold["explanation"]
        assert "restart did not hold (unhealthy again " in line, line
        assert "recreate did not hold (unhealthy again " in line, line
        assert line.endswith("rung 3 of 3"), line

        rows = history(h, name)
        kinds = {r["action"]: (r["verdict"] or {}).get("kind") for r in rows}
        assert kinds["restart"] == "recurred" and kinds["recreate"] == "recurred", rows
        status = h.status()
        held = [m for m in status["maintenance"] if m["target"] == name]
        assert held and held[0]["who"] == "healthd ladder", status["maintenance"]
        assert "restart did not hold" in held[0]["reason"]
        shown = ask(h, "status").output
        assert "held for people" in shown and f"INCIDENT {name}@" in shown, shown
        # Its dependent is part of the incident: held for it, never acted on.
        web = project.container("web")
        wait_for(lambda: [i for i in h.status()["incidents"] if i["target"] == name
                          and web in i["held_dependents"]], 30,
                 what=f"{web} held in {name}'s incident: {h.status()['incidents']}")
        assert f"holding {web}" in ask(h, "status").output
        assert acted(h, web) == [], h.rows(web)
        assert "restart recurred → recreate recurred → alert-and-hold held" in shown, shown
        incidents = json.loads(cli(h, "history", "--incidents", "--json").output)
        mine = [i for i in incidents if i["target"] == name]
        assert mine and mine[0]["state"] == "held", incidents
        outcomes = ask(h, "status", "--outcomes").output
        assert "unhealthy" in outcomes and "0 % of 1" in outcomes, outcomes

        def alerts() -> list[dict[str, Any]]:
            return [x for b in rx.bodies() for x in b["notices"]
                    if x["container"] == name and "rung 3 of 3" in x["summary"]]
        got = wait_for(alerts, 30, what=f"the hold at the webhook\n{h.log()}")
        assert len(got) == 1 and "recreate did not hold" in got[0]["summary"], got
        # Per incident: the restart opened it, the recreate and the hold escalated it.
        mine = [x for b in rx.bodies() for x in b["notices"] if x["container"] == name]
        assert [(x["kind"], x["action"]) for x in mine] == [
            ("action", "restart"), ("escalated", "recreate"), ("escalated", "alert")], mine
        assert len({x["incident"] for x in mine}) == 1, mine
        assert mine[0]["incident"].startswith(f"{name}@"), mine

        # A person takes it back: the ladder starts again at rung 1.
        ask(h, "resume", name)
        wait_for(lambda: acted(h, name)[3:4] == ["restart"], 60,
                 what=f"rung 1 again after the resume: {acted(h, name)}\n{h.log()}")
    finally:
        rx.close()


def test_a_target_held_for_people_that_recovers_by_itself_is_released(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    h = Healthd(engine, tmp_path, cfg=LONG)
    healthds.append(h)
    h.start()
    # Unhealthy 3 s after every start; a lone container: no recreate rung.
    cid = containers.run("should-be-held-then-released", "sh", "-c",
                         "rm -f /tmp/bad; sleep 3; touch /tmp/bad; exec sleep 100000",
                         opts=("--health-cmd", "test ! -e /tmp/bad", "--health-interval",
                               "1s", "--health-retries", "1"))
    name = containers.name_of(cid)

    def held() -> bool:
        return any(m["target"] == name for m in h.status()["maintenance"])
    wait_for(held, 60, what=f"the hold: {acted(h, name)}\n{h.log()}")
    assert acted(h, name) == ["restart", "alert"], h.log()
    engine.cli("exec", cid, "rm", "/tmp/bad")  # it gets well by itself
    wait_for(lambda: not held(), 30, what=f"the hold released\n{h.log()}")
    (inc,) = [i for i in json.loads(cli(h, "history", "--incidents", "--json").output)
              if i["target"] == name]
    assert inc["state"] == "fixed" and inc["closed"], inc
    assert "recovered by itself" in inc["rungs"][-1]["evidence"], inc
    assert acted(h, name) == ["restart", "alert"]


def test_a_fix_that_holds_is_fixed_and_the_next_problem_starts_at_rung_one(
        engine: Engine, healthds: list[Healthd], tmp_path: Path) -> None:
    project = Project(engine, tmp_path / "stack", MENDABLE, hint="mended")
    h = Healthd(engine, tmp_path, cfg={"verify": {"restart": 5.0}})
    healthds.append(h)
    h.start()
    try:
        project.up()
        name = project.container("api")
        wait_for(lambda: _health(engine, name) == "healthy", 30, what="healthy at first")
        for n in (1, 2):
            project.exec("api", "touch", "/run/bad")
            wait_for(lambda n=n: acted(h, name).count("restart") == n, 60,
                     what=f"restart {n}: {acted(h, name)}\n{h.log()}")

            def fixed(n: int = n) -> list[dict[str, Any]] | None:
                rows = [r for r in history(h, name) if r["action"] == "restart"
                        and (r["verdict"] or {}).get("kind") == "fixed"]
                return rows if len(rows) >= n else None
            wait_for(fixed, 40, what=f"restart {n} fixed\n{h.log()}")
        assert acted(h, name) == ["restart", "restart"], h.log()
        second = next(r for r in history(h, name) if r["action"] == "restart")  # newest
        assert second["explanation"].endswith("rung 1 of 3") or \
            "; rung 1 of 3" in second["explanation"], second
    finally:
        project.down()


def _health(engine: Engine, name: str) -> str | None:
    state = engine.client.api.inspect_container(name)["State"]
    return state.get("Health", {}).get("Status")


def test_a_restart_cut_short_by_a_compose_recreate_is_superseded(
        engine: Engine, healthds: list[Healthd], tmp_path: Path) -> None:
    project = Project(engine, tmp_path / "stack", ONCE, hint="redeployed")
    h = Healthd(engine, tmp_path, cfg=LONG)
    healthds.append(h)
    h.start()
    try:
        _superseded_by_compose(h, project)
    finally:
        project.down()


def _superseded_by_compose(h: Healthd, project: Project) -> None:
    project.up()
    name = project.container("api")
    wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 60,
             what=f"the first restart\n{h.log()}")
    project.up("--force-recreate")  # someone redeploys during the restart's window

    def first() -> dict[str, Any] | None:
        rows = [r for r in history(h, name) if r["action"] == "restart"]
        v = rows[-1]["verdict"] if rows else None  # newest first: the first restart is last
        return v if v and v["kind"] != "pending" else None
    v = wait_for(first, 30, what=f"the first restart's verdict\n{h.log()}")
    assert v["kind"] == "superseded", (v, h.log())
    assert "by someone else" in v["evidence"], v


def test_memory_exhaustion_climbs_restart_then_a_replica_more_then_people(
        engine: Engine, healthds: list[Healthd], tmp_path: Path) -> None:
    project = Project(engine, tmp_path / "stack", STARVED, hint="starved")
    # No pre-emptive restart (the forecast may see the fill coming); a quick not_fixed.
    h = Healthd(engine, tmp_path, cfg={"verify": {"settle_s": 4.0}, "decisions": {
        '"predicted_exhaustion.memory"': {"degraded": "none", "critical": "none"}}})
    healthds.append(h)
    h.start()
    try:
        project.up()
        name = project.container("api")

        def holds() -> list[dict[str, Any]]:
            return [r for r in h.rows(name) if r["rule"].endswith(".ladder_hold")
                    and r["outcome"] == "succeeded"]
        wait_for(holds, 90, what=f"the ladder to reach people: {acted(h, name)}\n{h.log()}")
        # (A resource_pressure alert may come first: the table's, sampled before the kill.)
        assert [a for a in acted(h, name) if a != "alert"] == ["restart", "scale_up"], \
            h.log()
        hold = holds()[0]
        assert hold["rule"] == "oom_killed.critical.ladder_hold", hold
        assert "scale_up did not fix it" in hold["explanation"], hold
        assert hold["explanation"].endswith("rung 3 of 3"), hold
        second = project.container("api", 2)  # the replica the rung made
        assert engine.client.api.inspect_container(second)["Config"]["Labels"][
            "com.docker.compose.service"] == "api"
    finally:
        project.down()


def test_restarts_that_never_fixed_memory_exhaustion_are_skipped_with_the_counts(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    name = containers.name("should-not-restart-never-fixed")
    h = Healthd(engine, tmp_path, cfg={"decisions": {
        '"predicted_exhaustion.memory"': {"degraded": "none", "critical": "none"}}})
    store = VerdictStore(str(h.state))
    now = time.time()
    for i in range(6):  # six OOM kills of this container an hour ago that no restart fixed
        store.put(Record(f"old{i}", "restart", now - 3600 + i, name, "oom_killed",
                         now - 3599 + i, 600.0, "not_fixed", "oom_killed again",
                         now - 3500 + i))
    store.close()
    healthds.append(h)
    h.start()
    oom_once = ('if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; '
                'x=$(head -c 60000000 /dev/zero | tr "\\0" a); sleep 1000')
    engine.cli("run", "-d", "--network", "none", "--name", name, "--memory", "32m",
               "--memory-swap", "32m", engine.image, "sh", "-c", oom_once)
    # Stats can catch the climb just before the kill, and resource_pressure alerts on
    # that too (its default); only the OOM kill's own decision is the hold.
    alerts = wait_for(lambda: [r for r in h.rows(name) if r["action"] == "alert"
                               and r["rule"].startswith("oom_killed")], 30,
                      what=f"the hold after the OOM kill\n{h.log()}")
    line = alerts[0]["explanation"]
    assert (f"restart skipped: fixed 0 of 6 memory exhaustions of {name} in 7 days"
            in line), line
    assert "scale_up skipped: no replicas allowed" in line, line
    h.wait_sweeps(3)
    assert h.restarts(name) == []
