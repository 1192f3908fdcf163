"""A throwaway Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1 for tests.

Owns: its config and storage under a test's tmp_path, a free port, clustering switched off
(``--cluster.listen-address=``), and reading ``GET /api/v2/alerts``.
Must never: touch the system's Alertmanager (/etc/prometheus, port 9093) or its data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.engine import in_ci, wait_for
from tests.integration.healthd_proc import free_port

BINARY = "prometheus-alertmanager"
# Alerts go to a receiver that does nothing: the test reads them back through the API.
CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


class Alertmanager:
    """One Alertmanager process; ``url`` is its base URL."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            if in_ci():
                pytest.fail(f"{BINARY} missing: scripts/setup --test installs it")
            pytest.skip(f"{BINARY} not installed (Debian package prometheus-alertmanager)")
        self.dir = workdir / "alertmanager"
        (self.dir / "data").mkdir(parents=True)
        (self.dir / "alertmanager.yml").write_text(CONFIG)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.dir / "alertmanager.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={self.dir / 'alertmanager.yml'}",
                 f"--storage.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._ready, 30, what=f"alertmanager /-/ready\n{self.log()}")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"alertmanager exited with {self.proc.returncode}\n{self.log()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Alerts the API lists as not yet ended (it leaves resolved ones out), filtered by
        exact label values."""
        query = urllib.parse.urlencode([("filter", f'{k}="{v}"') for k, v in labels.items()])
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=5) as r:
            return list(json.loads(r.read()))

    def log(self) -> str:
        """Its output so far."""
        try:
            return "--- alertmanager log ---\n" + self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no alertmanager log)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
