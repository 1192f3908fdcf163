"""Runs compose/docker-compose.yml with docker-compose (v1) against the test engine.

Owns: the environment the compose file asks for (image tags, the engine's socket and its
group, a free port, a fast config), `up`/`down -v`, and reading the project's objects.
Used by tests/integration/test_compose.py and bench/compose_ready.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.engine import Engine, wait_for
from tests.integration.healthd_proc import free_port

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"
FAST_CONFIG = """\
[watch]
stats_interval_s = 0.5
reconnect_max_s = 2.0
[guards]
cooldown_s = 1.0
backoff_base_s = 0.5
backoff_max_s = 2.0
stop_timeout_s = 1
"""


class Stack:
    """One compose project on the test engine: `up`, inspect, `down -v`."""

    def __init__(self, engine: Engine, image: str, workdir: Path,
                 health_interval: str = "1s") -> None:
        self.engine = engine
        self.project = f"hdc{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "config.toml"
        config.write_text(FAST_CONFIG)
        config.chmod(0o644)
        self.compose = shutil.which("docker-compose") or "docker-compose"
        self.env = {
            **os.environ, "DOCKER_HOST": engine.docker_host, "HEALTHD_IMAGE": image,
            "EXAMPLE_IMAGE": engine.image, "DOCKER_SOCK": engine.sock,
            "DOCKER_GID": str(os.stat(engine.sock).st_gid), "HEALTHD_PORT": str(self.port),
            "HEALTHD_CONFIG_FILE": str(config), "HEALTHD_HEALTH_INTERVAL": health_interval,
        }
        self.env.pop("DOCKER_CONTEXT", None)

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """docker-compose -p <project> -f compose/docker-compose.yml <args>; raises on error."""
        done = subprocess.run([self.compose, "-p", self.project, "-f", str(COMPOSE_FILE), *args],
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if done.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def up(self) -> float:
        """`up -d`; returns the seconds until healthd's /healthz first answered 200."""
        started = time.monotonic()
        self.run("up", "-d", "--no-build")
        wait_for(self.healthz_ok, 120, interval=0.02,
                 what=f"healthd /healthz in the compose project\n{self.logs()}")
        return time.monotonic() - started

    def healthz_ok(self) -> bool:
        """True when healthd's /healthz answers 200."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def down(self) -> None:
        """`down -v`: containers, volumes and networks of the project go."""
        self.run("down", "-v", "--timeout", "5")

    def container(self, service: str) -> str:
        """The name of the service's (first) container: <project>_<service>_1."""
        return f"{self.project}_{service}_1"

    def inspect(self, service: str) -> dict[str, Any]:
        """docker inspect of the service's container."""
        out = self.engine.cli("inspect", self.container(service)).stdout
        return dict(json.loads(out)[0])

    def logs(self, service: str = "healthd") -> str:
        """The last lines the service printed."""
        done = self.engine.cli("logs", "--tail", "60", self.container(service), check=False)
        return f"--- {service} log ---\n{done.stdout}{done.stderr}"

    def objects(self) -> dict[str, list[str]]:
        """The project's containers, volumes and networks still on the engine."""
        label = f"label=com.docker.compose.project={self.project}"
        out: dict[str, list[str]] = {}
        for kind, args in (("containers", ("ps", "-a", "-q")), ("volumes", ("volume", "ls", "-q")),
                           ("networks", ("network", "ls", "-q"))):
            out[kind] = self.engine.cli(*args, "--filter", label).stdout.split()
        return out
