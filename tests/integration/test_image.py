"""healthd's container image: built without network on a Debian base, non-root, and its
HEALTHCHECK follows /healthz (unhealthy while the main loop is wedged, healthy again after).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.engine import Engine, wait_for
from tests.image import Built
from tests.integration.healthd_proc import free_port

pytestmark = pytest.mark.engine


def test_image_is_built_offline_on_the_debian_base(engine: Engine, healthd_image: Built) -> None:
    meta = json.loads(engine.cli("image", "inspect", healthd_image.tag).stdout)[0]["Config"]
    assert meta["User"] == "healthd"
    assert meta["Entrypoint"] == ["healthd"] and meta["Cmd"] == ["run"]
    assert meta["Healthcheck"]["Test"] == ["CMD", "healthd", "healthz"]
    assert "HEALTHD_STATE=/var/lib/healthd/state.db" in meta["Env"]
    # No wheelhouse in the final image (multi-stage), no pip either.
    out = engine.cli("run", "--rm", "--network", "none", "--entrypoint", "sh", healthd_image.tag,
                     "-c", "ls /wheelhouse /opt/healthd/bin/pip 2>&1; id -u; healthd --version")
    assert "No such file" in out.stdout and "10985" in out.stdout and "healthd" in out.stdout
    print(f"\nimage {healthd_image.tag}: {healthd_image.size_bytes / 1e6:.0f} MB "
          f"({healthd_image.how} in {healthd_image.seconds:.0f} s)")
    assert healthd_image.size_bytes < 600e6


@pytest.fixture
def container(engine: Engine) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        engine.cli("rm", "-f", "-v", name, check=False)


def _health(engine: Engine, name: str) -> str:
    out = engine.cli("inspect", "--format", "{{json .State.Health}}", name).stdout
    return str(json.loads(out)["Status"])


def test_container_watches_as_non_root_and_its_healthcheck_follows_healthz(
    engine: Engine, healthd_image: Built, container: list[str]
) -> None:
    name = engine.name("healthd-in-a-container")
    container.append(name)
    port = free_port()
    gid = os.stat(engine.sock).st_gid
    engine.cli(
        "run", "-d", "--name", name, "--network", "host", "--group-add", str(gid),
        "-v", f"{engine.sock}:/var/run/docker.sock", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "-e", f"HEALTHD_LISTEN=127.0.0.1:{port}", "-e", "HEALTHD_LIVENESS_S=2",
        "-e", "HEALTHD_WATCH_STATS_INTERVAL_S=0.5",
        "--health-interval", "1s", "--health-retries", "1", "--health-timeout", "5s",
        healthd_image.tag)

    def logs() -> str:
        return engine.cli("logs", name, check=False).stderr[-4000:]

    wait_for(lambda: _health(engine, name) == "healthy", 60,
             what=f"the container healthy\n{logs()}")
    assert engine.cli("exec", name, "id", "-u").stdout.strip() == "10985"
    started = engine.cli("inspect", "--format", "{{.State.StartedAt}}", name).stdout.strip()
    # The fast stats path works from the container (cgroup files, read-only mount).
    snap = json.loads(engine.cli("exec", name, "healthd", "status", "--json").stdout)
    assert snap["engine_connected"] is True and snap["stats_path"] == "cgroup"
    # Wedge the main loop the way a hung filesystem would (tests/integration/wedge.py): a
    # compose project whose file is a FIFO inside healthd's container. The ledger cannot be
    # used for this any more: a locked database only sends its writes to the backlog.
    assert engine.cli("exec", name, "sh", "-c",
                      "mkdir -p /tmp/w && mkfifo /tmp/w/hung.yml").returncode == 0
    engine.cli("run", "-d", "--name", f"{name}-wedge", "--network", "none",
               "--label", "com.docker.compose.project=wedge",
               "--label", "com.docker.compose.service=hung",
               "--label", "com.docker.compose.project.working_dir=/tmp/w",
               "--label", "com.docker.compose.project.config_files=hung.yml",
               engine.image, "sleep", "100000")
    container.append(f"{name}-wedge")
    wait_for(lambda: _health(engine, name) == "unhealthy", 30,
             what=f"the container unhealthy while its loop is wedged\n{logs()}")
    # A regular file takes the FIFO's place, then the blocked reader gets its bytes.
    assert engine.cli("exec", name, "sh", "-c",
                      "ln /tmp/w/hung.yml /tmp/w/old.fifo"
                      " && echo 'services: {}' > /tmp/w/new.yml"
                      " && mv /tmp/w/new.yml /tmp/w/hung.yml"
                      " && echo 'services: {}' > /tmp/w/old.fifo").returncode == 0
    wait_for(lambda: _health(engine, name) == "healthy", 60,
             what=f"the container healthy again\n{logs()}")
    # It never acted on itself while its own container was unhealthy: the restart its
    # unhealthy state asked for was held back, and the container never restarted.
    state = engine.cli("exec", name, "healthd", "history", "--json").stdout
    own = [r for r in json.loads(state) if r["container"] == name]
    assert own and all(r["outcome"] == "skipped" for r in own), own
    assert all("healthd never acts on its own container" in r["explanation"] for r in own), own
    assert engine.cli("inspect", "--format", "{{.RestartCount}} {{.State.StartedAt}}",
                      name).stdout.split()[1] == started
