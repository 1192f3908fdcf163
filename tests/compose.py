"""A Compose v1 project (Debian's ``docker-compose``) on the throwaway test engine.

Owns: writing a project's compose file, ``up``/``down``/``ps`` through the real
``docker-compose`` CLI pointed at the test engine's socket, and finding its containers.
Must never: touch another engine, or leave a project behind (``down -v`` in a fixture).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

try:
    from tests.engine import Engine
except ModuleNotFoundError:
    from engine import Engine  # type: ignore[no-redef]

_projects = itertools.count(1)


def compose_binary() -> str:
    """The docker-compose v1 CLI, or skip (fail under CI) when it is missing."""
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (scripts/setup --test installs it)")
        pytest.skip("docker-compose is not installed")
    return found


class Project:
    """One compose project: its file in ``workdir`` and a unique project name."""

    def __init__(self, engine: Engine, workdir: Path, compose_yaml: str, hint: str = "stack"):
        self.engine = engine
        self.name = f"{hint}{next(_projects)}"
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True)
        self.file = self.dir / "docker-compose.yml"
        self.file.write_text(compose_yaml.replace("IMAGE", engine.image))
        self.binary = compose_binary()

    def run(self, *args: str, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``docker-compose -p NAME -f FILE ARGS`` against the test engine."""
        env = {**os.environ, "DOCKER_HOST": self.engine.docker_host,
               "COMPOSE_INTERACTIVE_NO_CLI": "1"}
        env.pop("DOCKER_CONTEXT", None)
        done = subprocess.run([self.binary, "-p", self.name, "-f", str(self.file), *args],
                              capture_output=True, text=True, env=env, cwd=self.dir,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed "
                                 f"({done.returncode}):\n{done.stderr}")
        return done

    def up(self, *args: str) -> None:
        """``up -d`` (and wait for nothing: tests wait on what they need)."""
        self.run("up", "-d", *args)

    def down(self) -> None:
        """``down -v`` and check that nothing of the project is left."""
        self.run("down", "-v", "--remove-orphans", "-t", "1", check=False)
        # A restart the engine was still carrying out when `down` stopped a container (one
        # healthd asked for just before it was killed) starts it again, and `down` leaves
        # a running container behind: remove whatever still carries the project's label.
        left = self.engine.cli("ps", "-aq", "--filter",
                               f"label=com.docker.compose.project={self.name}").stdout.split()
        if left:
            self.engine.cli("rm", "-f", "-v", *left, check=False)

    def container(self, service: str, number: int = 1) -> str:
        """The name Compose v1 gives replica ``number`` of ``service``."""
        return f"{self.name}_{service}_{number}"

    def ids(self, service: str | None = None) -> list[str]:
        """Container ids ``docker-compose ps -q`` lists (for one service, or all)."""
        out = self.run("ps", "-q", *([service] if service else [])).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def exec(self, service: str, *cmd: str, number: int = 1) -> None:
        """Run a command in a replica (through the engine, not compose's TTY handling)."""
        self.engine.cli("exec", self.container(service, number), *cmd)
