"""Replicas made, removed and recreated by healthd are Compose v1's own: end to end.

A compose project (v2.4 file, the local busybox image, ``network_mode: none`` or ``host``,
CPU and memory limits, a healthcheck) is brought up on the throwaway engine with
docker-compose v1; then `Engine.create_replica` / `remove_replica` / `recreate` are called
directly (the daemon's wiring is tested elsewhere) and compose itself is asked what it
sees (``ps``, ``ps -q``, ``up -d``, ``down``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from healthd.core import labels, scale
from healthd.observe.containers import from_inspect
from healthd.observe.engine import ActionFailed
from healthd.observe.engine import Engine as HealthdEngine
from tests.engine import IMAGE, Containers, Engine, healthd_engine, wait_for

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(shutil.which("docker-compose") is None,
                       reason="docker-compose (v1) is not installed: scripts/setup --test"),
]

SERVICE = """\
  web:
    image: {image}
    command: ["sh", "-c", "touch /ok; exec sleep 1000"]
    stop_signal: SIGKILL
    cpus: 0.5
    mem_limit: 64m
    restart: unless-stopped
    environment: {{FOO: "{foo}"}}
    volumes: ["/cache"]
    healthcheck: {{test: ["CMD", "test", "-e", "/ok"], interval: 1s, retries: 1}}
"""
NETWORK_MODE = "    network_mode: {network_mode}\n"


class Project:
    """One compose project on the test engine, named uniquely, taken down after the test."""

    def __init__(self, engine: Engine, directory: Path) -> None:
        self.engine = engine
        self.dir = directory
        self.name = engine.name("scale")  # compose v1 keeps [-_a-z0-9]: names stay as given

    def write(self, image: str = IMAGE, foo: str = "a", network_mode: str = "none") -> None:
        text = 'version: "2.4"\nservices:\n' + SERVICE.format(image=image, foo=foo)
        text += NETWORK_MODE.format(network_mode=network_mode)
        (self.dir / "docker-compose.yml").write_text(text)

    def dc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """docker-compose -p <name> against the test engine; output captured as text."""
        env = {**os.environ, "DOCKER_HOST": self.engine.docker_host}
        env.pop("DOCKER_CONTEXT", None)
        done = subprocess.run(["docker-compose", "--ansi", "never", "-p", self.name, *args],
                              cwd=self.dir, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed:\n{done.stderr}")
        return done

    def ids(self) -> list[str]:
        """``docker-compose ps -q``: the ids compose counts as the project's."""
        return sorted(self.dc("ps", "-q").stdout.split())

    def by_name(self) -> dict[str, str]:
        """Every container carrying the project's label, running or not: name -> id."""
        rows = self.engine.client.api.containers(
            all=True, filters={"label": f"{labels.COMPOSE_PROJECT}={self.name}"})
        return {r["Names"][0].lstrip("/"): r["Id"] for r in rows}

    def replica(self, number: int) -> str:
        return f"{self.name}_web_{number}"

    def remove_all(self) -> None:
        """Take everything of the project away, whatever state the test left it in."""
        self.dc("down", "-v", check=False)
        for cid in self.by_name().values():
            try:
                self.engine.client.api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass


@pytest.fixture
def project(engine: Engine, tmp_path: Path) -> Iterator[Project]:
    p = Project(engine, tmp_path)
    try:
        yield p
    finally:
        p.remove_all()


@pytest.fixture
def he(engine: Engine) -> HealthdEngine:
    made: HealthdEngine = healthd_engine(engine)
    return made


def inspect(engine: Engine, cid: str) -> dict[str, Any]:
    return dict(engine.client.api.inspect_container(cid))


def anonymous_volume(data: dict[str, Any], dest: str = "/cache") -> str:
    return next(str(m["Name"]) for m in data["Mounts"] if m["Destination"] == dest)


def volume_exists(engine: Engine, name: str) -> bool:
    try:
        engine.client.api.inspect_volume(name)
    except docker.errors.NotFound:
        return False
    return True


def healthy(engine: Engine, cid: str) -> bool:
    return bool(inspect(engine, cid)["State"].get("Health", {}).get("Status") == "healthy")


@pytest.mark.parametrize("network_mode", ["none", "host"])
def test_created_replica_is_the_services_own_in_compose_and_matches_its_template(
    engine: Engine, project: Project, he: HealthdEngine, network_mode: str
) -> None:
    project.write(network_mode=network_mode)
    project.dc("up", "-d")
    (tpl_id,) = project.ids()
    states = [from_inspect(inspect(engine, c)) for c in project.by_name().values()]
    number = scale.next_number(states)
    assert number == 2

    before = time.time()
    new_id = he.create_replica(tpl_id, number)

    assert project.ids() == sorted([tpl_id, new_id])
    ps = project.dc("ps").stdout
    assert project.replica(1) in ps and project.replica(2) in ps
    tpl, new = inspect(engine, tpl_id), inspect(engine, new_id)
    assert new["Name"] == f"/{project.replica(2)}"
    lab, tpl_lab = new["Config"]["Labels"], tpl["Config"]["Labels"]
    assert lab[labels.COMPOSE_NUMBER] == "2"
    for key in (labels.COMPOSE_PROJECT, labels.COMPOSE_SERVICE, labels.COMPOSE_CONFIG_HASH,
                "com.docker.compose.oneoff", "com.docker.compose.project.working_dir"):
        assert lab[key] == tpl_lab[key], key
    assert lab[labels.CREATED] == "true"
    assert before - 1 <= float(lab[labels.CREATED_AT]) <= time.time() + 1
    for key in ("Image", "Cmd", "Entrypoint", "Env", "Healthcheck", "StopSignal", "Volumes"):
        assert new["Config"][key] == tpl["Config"][key], key
    assert new["Image"] == tpl["Image"]
    for key in ("NetworkMode", "Memory", "MemorySwap", "NanoCpus", "RestartPolicy", "Binds"):
        assert new["HostConfig"][key] == tpl["HostConfig"][key], key
    assert new["HostConfig"]["NetworkMode"] == network_mode
    assert anonymous_volume(new) != anonymous_volume(tpl)  # its own, as compose makes them
    wait_for(lambda: healthy(engine, new_id), 30, what="the new replica's healthcheck")

    mine = from_inspect(new)
    assert scale.created_by_healthd(mine)
    assert scale.to_remove([*states, mine]) == mine
    assert scale.operator_count([*states, mine]) == 1

    project.dc("down", "-v")
    assert project.by_name() == {}
    assert not volume_exists(engine, anonymous_volume(new))


def test_remove_replica_removes_healthds_replica_and_refuses_the_operators(
    engine: Engine, project: Project, he: HealthdEngine
) -> None:
    project.write()
    project.dc("up", "-d")
    (tpl_id,) = project.ids()
    new_id = he.create_replica(tpl_id, 2)
    volume = anonymous_volume(inspect(engine, new_id))

    he.remove_replica(new_id, stop_timeout_s=1)

    assert project.ids() == [tpl_id]
    assert project.by_name() == {project.replica(1): tpl_id}
    assert not volume_exists(engine, volume)
    he.remove_replica(new_id, stop_timeout_s=1)  # already gone: done, not an error
    with pytest.raises(ActionFailed) as err:
        he.remove_replica(tpl_id, stop_timeout_s=1)
    assert not err.value.retryable and "not created by healthd" in str(err.value)
    assert inspect(engine, tpl_id)["State"]["Running"]


def test_recreate_from_a_sibling_keeps_name_number_and_volume_and_takes_its_config_hash(
    engine: Engine, project: Project, he: HealthdEngine
) -> None:
    project.write(foo="a")
    project.dc("up", "-d", "--scale", "web=2")
    old = project.by_name()
    engine.cli("exec", old[project.replica(1)], "touch", "/cache/kept")
    # Drift: web_2 is made again from a changed file while web_1 keeps the old config.
    project.write(foo="b")
    engine.client.api.remove_container(old[project.replica(2)], force=True, v=True)
    project.dc("up", "-d", "--no-recreate", "--scale", "web=2")
    now = project.by_name()
    sibling = inspect(engine, now[project.replica(2)])
    new_hash = sibling["Config"]["Labels"][labels.COMPOSE_CONFIG_HASH]
    drifted = inspect(engine, now[project.replica(1)])
    assert drifted["Config"]["Labels"][labels.COMPOSE_CONFIG_HASH] != new_hash

    new_id = he.recreate(drifted["Id"], sibling["Id"], stop_timeout_s=1)

    new = inspect(engine, new_id)
    assert new["Name"] == f"/{project.replica(1)}"
    assert new["State"]["Running"]
    assert new["Config"]["Labels"][labels.COMPOSE_NUMBER] == "1"
    assert new["Config"]["Labels"][labels.COMPOSE_CONFIG_HASH] == new_hash
    assert labels.CREATED not in new["Config"]["Labels"]  # still the operator's replica
    assert "FOO=b" in new["Config"]["Env"]
    assert project.by_name() == {project.replica(1): new_id, project.replica(2): sibling["Id"]}
    engine.cli("exec", new_id, "test", "-e", "/cache/kept")  # the anonymous volume moved over
    # Compose agrees that nothing is left to recreate.
    up = project.dc("up", "-d", "--scale", "web=2")
    assert "Recreating" not in up.stderr, up.stderr
    assert project.ids() == sorted([new_id, sibling["Id"]])


def test_recreate_from_itself_takes_the_newer_local_image_of_its_tag(
    engine: Engine, project: Project, he: HealthdEngine
) -> None:
    tag = f"healthd-test/{project.name}:1"
    engine.cli("tag", IMAGE, tag)
    try:
        project.write(image=tag)
        project.dc("up", "-d")
        (old_id,) = project.ids()
        old_image = inspect(engine, old_id)["Image"]
        assert he.image_id_of_tag(tag) == old_image
        engine.cli("commit", old_id, tag)  # the tag now names a newer image
        newer = he.image_id_of_tag(tag)
        assert newer is not None and newer != old_image

        new_id = he.recreate(old_id, old_id, stop_timeout_s=1)

        new = inspect(engine, new_id)
        assert (new["Image"], new["Config"]["Image"]) == (newer, tag)
        assert new["Name"] == f"/{project.replica(1)}"
        assert new["Config"]["Labels"][labels.COMPOSE_NUMBER] == "1"
        assert project.by_name() == {project.replica(1): new_id}
        assert he.image_id_of_tag("healthd-test/no-such-image:404") is None
    finally:
        project.remove_all()
        engine.cli("rmi", tag, check=False)


def test_a_recreate_that_cannot_start_the_new_container_restores_the_old_one(
    engine: Engine, project: Project, he: HealthdEngine
) -> None:
    project.write()
    project.dc("up", "-d")
    (old_id,) = project.ids()
    old = inspect(engine, old_id)
    # A sibling whose configuration the engine accepts but cannot start: its entrypoint
    # does not exist. Recreating from it fails at start, for real.
    broken = engine.client.api.create_container(
        engine.image, entrypoint=["/no/such/binary"], network_disabled=True,
        labels={**old["Config"]["Labels"], labels.COMPOSE_NUMBER: "9"},
        name=f"{project.name}_broken_template")["Id"]
    try:
        with pytest.raises(ActionFailed) as err:
            he.recreate(old_id, broken, stop_timeout_s=1)
    finally:
        engine.client.api.remove_container(broken, force=True)
    assert "no/such/binary" in str(err.value)
    assert project.by_name() == {project.replica(1): old_id}  # no _healthd_old, no half-made
    assert inspect(engine, old_id)["State"]["Running"]


def test_compose_up_removes_healthds_replicas_unless_its_scale_counts_them(
    engine: Engine, project: Project, he: HealthdEngine
) -> None:
    project.write()
    project.dc("up", "-d")
    (tpl_id,) = project.ids()
    second = he.create_replica(tpl_id, 2)
    # `up -d --scale web=2` adopts healthd's replica: nothing created, nothing removed.
    up = project.dc("up", "-d", "--scale", "web=2")
    assert "is up-to-date" in up.stderr and "Creating" not in up.stderr, up.stderr
    assert project.ids() == sorted([tpl_id, second])
    he.create_replica(tpl_id, 3)
    # A plain `up -d` converges to the file's scale (1): the highest numbers go.
    up = project.dc("up", "-d")
    assert "Stopping and removing" in up.stderr, up.stderr
    assert project.by_name() == {project.replica(1): tpl_id}


@pytest.mark.parametrize(("compose_labels", "why"), [
    ((), "not a compose replica"),
    ((labels.COMPOSE_PROJECT + "=p", labels.COMPOSE_SERVICE + "=s", labels.COMPOSE_NUMBER + "=1"),
     "custom container name"),
], ids=["plain-container", "container_name"])
def test_create_replica_refuses_what_compose_could_not_scale_either(
    containers: Containers, he: HealthdEngine, compose_labels: tuple[str, ...], why: str
) -> None:
    opts = [arg for lab in compose_labels for arg in ("--label", lab)]
    cid = containers.run("should-not-scale", "sleep", "1000", opts=opts)
    with pytest.raises(ActionFailed) as err:
        he.create_replica(cid, 2)
    assert not err.value.retryable and why in str(err.value)
