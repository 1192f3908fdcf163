"""Stacks on the real engine: root cause first, dependents after, followers follow.

A real three-service Compose v1 project (web -> api -> db) on the throwaway engine. The
services share a volume: db's healthcheck keeps /shared/db-up while db is healthy, and the
others' healthchecks need it, so breaking db really breaks its dependents (the way a lost
database connection does), and mending db mends them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compose import Project
from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd

pytestmark = pytest.mark.engine

CHECK = 'interval: 1s\n      timeout: 2s\n      retries: 1'
# db is healthy while /run/ok exists (a tmpfs: a restart mends it); its healthcheck keeps
# the shared marker in step. /run/broken (tmpfs too) breaks a service on its own.
STACK = f"""
version: "2.4"
services:
  db:
    image: IMAGE
    network_mode: none
    command: sh -c "touch /run/ok; exec sleep 100000"
    tmpfs: [/run]
    volumes: [shared:/shared]
    stop_grace_period: 1s
    healthcheck:
      test:
        - CMD-SHELL
        - >-
          if test -e /run/ok; then touch /shared/db-up;
          else rm -f /shared/db-up; false; fi
      {CHECK}
  api:
    image: IMAGE
    network_mode: none
    command: sleep 100000
    tmpfs: [/run]
    volumes: [shared:/shared]
    depends_on: [db]
    stop_grace_period: 1s
    labels: LABELS_API
    healthcheck:
      test: ["CMD-SHELL", "test -e /shared/db-up && test ! -e /run/broken"]
      {CHECK}
  web:
    image: IMAGE
    network_mode: none
    command: sleep 100000
    tmpfs: [/run]
    volumes: [shared:/shared]
    depends_on: [api]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test -e /shared/db-up && test ! -e /run/broken"]
      {CHECK}
volumes:
  shared:
"""
FAST_STACKS = {"stacks": {"settle_s": 2.0}}


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    things: list[Any] = []
    yield things
    for t in reversed(things):
        if isinstance(t, Healthd):
            t.kill()
        else:
            t.down()


def stack(engine: Engine, tmp_path: Path, cleanup: list[Any], api_labels: str = "{}") -> Project:
    p = Project(engine, tmp_path, STACK.replace("LABELS_API", api_labels), hint="shop")
    cleanup.append(p)
    p.up()
    for svc in ("db", "api", "web"):
        wait_for(lambda s=svc: _health(engine, p.container(s)) == "healthy", 60,
                 what=f"{svc} healthy")
    return p


def _health(engine: Engine, name: str) -> str | None:
    state = engine.client.api.inspect_container(name)["State"]
    return state.get("Health", {}).get("Status")


def _started(engine: Engine, name: str) -> str:
    return str(engine.client.api.inspect_container(name)["State"]["StartedAt"])


def test_db_breaks_db_is_healed_first_and_only_the_dependent_that_stays_broken_is_restarted(
    engine: Engine, tmp_path: Path, cleanup: list[Any]
) -> None:
    p = stack(engine, tmp_path, cleanup)
    db, api, web = (p.container(s) for s in ("db", "api", "web"))
    # db heals only after api and web have failed because of it: a grace period lets the
    # dependents turn unhealthy while db is still down.
    h = Healthd(engine, tmp_path, cfg=FAST_STACKS | {"guards": {
        "cooldown_s": 1.0, "backoff_base_s": 0.5, "stop_timeout_s": 1}})
    cleanup.append(h)
    h.start()
    started = {n: _started(engine, n) for n in (api, web)}
    p.exec("db", "rm", "/run/ok")
    wait_for(lambda: _health(engine, api) == "unhealthy", 30, what="api unhealthy via db")
    p.exec("api", "touch", "/run/broken")  # api will stay broken after db is back
    wait_for(lambda: [r for r in h.restarts(db) if r["outcome"] == "succeeded"], 30,
             what=f"db restarted\n{h.log()}")
    held = wait_for(lambda: [r for r in h.rows(api) if r["rule"].startswith(
        "dependency_failure")], 30, what=f"api held by dependency\n{h.log()}")
    assert "depends on shop" in held[0]["suppressed_by"] and "/db" in held[0]["suppressed_by"]
    api_restart = wait_for(lambda: h.restarts(api), 60, what=f"api restarted\n{h.log()}")[0]
    db_restart = h.restarts(db)[0]
    assert api_restart["at"] > db_restart["completed_at"]
    assert api_restart["rule"] == "unhealthy.critical"
    wait_for(lambda: _health(engine, web) == "healthy", 30, what="web recovers by itself")
    h.wait_sweeps(4)
    assert h.restarts(web) == [], "web recovered with db: it must not be restarted"
    assert _started(engine, web) == started[web]
    assert len(h.restarts(db)) == 1 and len(h.restarts(api)) == 1


def test_a_restart_with_dependent_is_restarted_after_its_upstream_is_healthy_again(
    engine: Engine, tmp_path: Path, cleanup: list[Any]
) -> None:
    p = stack(engine, tmp_path, cleanup, api_labels='{"healthd.restart_with": "db"}')
    db, api, web = (p.container(s) for s in ("db", "api", "web"))
    h = Healthd(engine, tmp_path, cfg=FAST_STACKS)
    cleanup.append(h)
    h.start()
    h.wait_sweeps(2)
    engine.cli("restart", "-t", "1", db)  # a person restarts the database
    row = wait_for(lambda: h.restarts(api), 60, what=f"api follows db\n{h.log()}")[0]
    assert row["rule"].startswith("dependency_restarted")
    assert "restarted" in row["explanation"]
    h.wait_sweeps(4)
    assert len(h.restarts(api)) == 1, "a follower restarts once per upstream restart"
    assert h.restarts(web) == [] and h.restarts(db) == []


NETNS = """
version: "2.4"
services:
  gateway:
    image: IMAGE
    network_mode: none
    command: sleep 100000
    stop_grace_period: 1s
  app:
    image: IMAGE
    network_mode: "service:gateway"
    command: sleep 100000
    stop_grace_period: 1s
"""


def test_a_network_mode_service_dependent_follows_its_gateway(
    engine: Engine, tmp_path: Path, cleanup: list[Any]
) -> None:
    p = Project(engine, tmp_path, NETNS, hint="vpn")
    cleanup.append(p)
    p.up()
    gw, app = p.container("gateway"), p.container("app")
    h = Healthd(engine, tmp_path, cfg=FAST_STACKS)
    cleanup.append(h)
    h.start()
    h.wait_sweeps(2)
    engine.cli("restart", "-t", "1", gw)
    row = wait_for(lambda: h.restarts(app), 60, what=f"app follows its gateway\n{h.log()}")[0]
    assert row["rule"].startswith("dependency_restarted")
    assert h.restarts(gw) == []


BROKEN_GRAPH = """
version: "2.4"
services:
  a:
    image: IMAGE
    network_mode: none
    command: sleep 100000
    labels: {"healthd.depends_on": "b"}
  b:
    image: IMAGE
    network_mode: none
    command: sleep 100000
    labels: {"healthd.depends_on": "a,ghost"}
"""


def test_a_cycle_and_a_missing_service_are_reported_not_looped_on(
    engine: Engine, tmp_path: Path, cleanup: list[Any]
) -> None:
    p = Project(engine, tmp_path, BROKEN_GRAPH, hint="loop")
    cleanup.append(p)
    p.up()
    h = Healthd(engine, tmp_path, cfg=FAST_STACKS)
    cleanup.append(h)
    h.start()
    h.wait_sweeps(3)
    problems = h.status()["stacks"]["problems"]
    assert any("cycle" in x for x in problems), problems
    assert any("ghost" in x for x in problems), problems
    h.wait_sweeps(3)  # still turning
    assert h.ready()


def test_status_and_metrics_show_services_replicas_and_the_graph(
    engine: Engine, tmp_path: Path, cleanup: list[Any]
) -> None:
    p = stack(engine, tmp_path, cleanup)
    h = Healthd(engine, tmp_path, cfg=FAST_STACKS)
    cleanup.append(h)
    h.start()
    h.wait_sweeps(2)
    snap = h.status()
    services = {s["service"]: s for s in snap["stacks"]["services"]}
    api = services[f"{p.name}/api"]
    assert (api["running"], api["desired"], api["depends_on"]) == (1, 1, [f"{p.name}/db"])
    edges = {(e["dependent"], e["upstream"]) for e in snap["stacks"]["graph"]["edges"]}
    assert (f"{p.name}/web", f"{p.name}/api") in edges  # from the compose v1 file
    rows = {r["name"]: r for r in snap["containers"]}
    assert rows[p.container("db")]["service"] == f"{p.name}/db"
    metrics = h.get("/metrics").decode()
    assert f'healthd_service_replicas{{service="{p.name}/api",state="running"}} 1.0' in metrics
    assert "healthd_held_by_dependency 0.0" in metrics
    out = subprocess.run([sys.executable, "-m", "healthd", "status", "--url", h.url],
                         capture_output=True, text=True, check=True).stdout
    assert f"{p.name}/api" in out and "1/1" in out


REPLICAS = """
version: "2.4"
services:
  api:
    image: IMAGE
    network_mode: none
    command: sleep 100000
    tmpfs: [/run]
    stop_grace_period: 1s
    environment: {RELEASE: "RELEASE_VALUE"}
    healthcheck:
      test: ["CMD-SHELL", "test ! -e /run/broken"]
      interval: 1s
      retries: 1
"""


def test_a_failing_replica_whose_config_drifted_gets_the_recreate_decision(
    engine: Engine, tmp_path: Path, cleanup: list[Any]
) -> None:
    p = Project(engine, tmp_path, REPLICAS.replace("RELEASE_VALUE", "1"), hint="drift")
    cleanup.append(p)
    p.up("--scale", "api=2")
    # The file changes, and a third replica is made from it while the others keep theirs.
    p.file.write_text(REPLICAS.replace("IMAGE", engine.image).replace("RELEASE_VALUE", "2"))
    p.up("--no-recreate", "--scale", "api=3")
    drifted = p.container("api", 3)
    h = Healthd(engine, tmp_path, args=("--dry-run",), cfg={
        "decisions": {"config_drift": {"critical": "recreate"}}})
    cleanup.append(h)
    h.start()
    p.exec("api", "touch", "/run/broken", number=3)
    row = wait_for(lambda: [r for r in h.rows(drifted) if r["action"] == "recreate"], 30,
                   what=f"recreate decision\n{h.log()}")[0]
    assert row["rule"] == "config_drift.critical"
    assert row["suppressed_by"] == "dry-run: would recreate"
    assert "config hash differs" in row["explanation"]
    p.exec("api", "touch", "/run/broken", number=1)  # an up-to-date replica: a plain restart
    row = wait_for(lambda: h.rows(p.container("api", 1)), 30, what="api_1 decision")[0]
    assert row["rule"] == "unhealthy.critical"


def test_a_failing_container_whose_tag_now_names_a_newer_image_gets_config_drift(
    engine: Engine, containers: Containers, tmp_path: Path, cleanup: list[Any]
) -> None:
    tag = f"drift-app-{tmp_path.name[-8:].lower()}:1"
    engine.cli("tag", engine.image, tag)
    name = containers.name("should-get-config-drift")
    engine.cli("run", "-d", "--name", name, "--network", "none", "--health-cmd",
               "test ! -e /broken", "--health-interval", "1s", "--health-retries", "1",
               tag, "sleep", "100000")
    engine.cli("rmi", tag)  # untag only: the test image keeps its own tag
    engine.cli("run", "--name", containers.name("newer-image"), "--network", "none",
               engine.image, "touch", "/newer")
    engine.cli("commit", containers.names[-1], tag)  # the tag now names a newer image
    h = Healthd(engine, tmp_path, args=("--dry-run",))
    cleanup.append(h)
    h.start()
    engine.cli("exec", name, "touch", "/broken")
    row = wait_for(lambda: h.rows(name), 30, what=f"a decision\n{h.log()}")[0]
    assert row["rule"] == "config_drift.critical"
    assert f"image tag {tag} now names another local image" in row["explanation"]
