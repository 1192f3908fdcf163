"""Runs the real ``healthd run`` CLI as a subprocess against the test engine.

Owns: writing a small config, starting/stopping/killing healthd, and reading what it says
through its HTTP endpoint and its SQLite ledger. Tests wait on conditions, never sleep.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

try:
    from tests.engine import Engine, wait_for
except ModuleNotFoundError:
    from engine import Engine, wait_for  # type: ignore[no-redef]

FAST = {
    "watch": {"stats_interval_s": 0.5, "reconnect_max_s": 2.0},
    "guards": {"cooldown_s": 1.0, "backoff_base_s": 0.5, "backoff_max_s": 2.0,
               "stop_timeout_s": 1},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml(cfg: dict[str, dict[str, Any]]) -> str:
    """A tiny TOML writer for flat sections (enough for tests)."""
    out = []
    for section, values in cfg.items():
        out.append(f"[{section}]")
        for k, v in values.items():
            if isinstance(v, dict):
                inner = ", ".join(f"{ik} = {json.dumps(iv)}" for ik, iv in v.items())
                out.append(f"{k} = {{ {inner} }}")
            else:
                out.append(f"{k} = {json.dumps(v)}")
    return "\n".join(out) + "\n"


def merge(*cfgs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Section-wise merge, later wins."""
    out: dict[str, dict[str, Any]] = {}
    for c in cfgs:
        for section, values in c.items():
            out.setdefault(section, {}).update(values)
    return out


class Healthd:
    """One healthd process with its own state file, port and log."""

    def __init__(self, engine: Engine, workdir: Path, cfg: dict[str, dict[str, Any]] | None = None,
                 args: tuple[str, ...] = (), join_cgroup: str | None = None,
                 env: dict[str, str] | None = None, listen_host: str = "127.0.0.1",
                 token: str | None = None, python: str = sys.executable,
                 cwd: Path | None = None, port: int | None = None) -> None:
        """env: extra environment for healthd (NOTIFY_SOCKET, HEALTHD_TOKEN...).

        listen_host: the host part of --listen; the tests connect to it when it is a
          loopback address (127.0.0.3 for a Swarm node), else to 127.0.0.1.
        port: the port to listen on (default: a free one).
        token: sent as a bearer token by `get`. With [daemon] tls_cert in ``cfg``, the
        URL is https and that certificate is trusted.
        python, cwd: another tree's interpreter and folder (bench/watch_cost's baseline).
        """
        self.engine = engine
        # Another tree's interpreter and directory run that tree's healthd (bench/watch_cost.py
        # --baseline): ``-m`` imports from the working directory first.
        self.python, self.cwd = python, cwd
        self.workdir = workdir
        self.state = workdir / "state.db"
        self.port = port or free_port()
        tls_cert = (cfg or {}).get("daemon", {}).get("tls_cert")
        # A loopback listen host other than 127.0.0.1 (one node of a Swarm on one machine)
        # is reached there; any other is reached on 127.0.0.1.
        near = listen_host if listen_host.startswith("127.") else "127.0.0.1"
        self.url = f"{'https' if tls_cert else 'http'}://{near}:{self.port}"
        self.ssl_context = ssl.create_default_context(cafile=tls_cert) if tls_cert else None
        self.extra_env = dict(env or {})
        self.listen_host = listen_host
        self.token = token
        self.config = workdir / "config.toml"
        self.config.write_text(toml(merge(FAST, cfg or {})))
        self.args = args
        self.join_cgroup = join_cgroup  # a cgroup.procs file to move healthd into first
        self.log_path = workdir / "healthd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def add_notify(self, *targets: dict[str, Any]) -> Healthd:
        """Append ``[[notify]]`` tables to the config (after its flat sections)."""
        text = self.config.read_text()
        for t in targets:
            text += "[[notify]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items())
        self.config.write_text(text)
        return self

    def start(self) -> Healthd:
        """Start and wait until /healthz answers 200 (events stream connected)."""
        env = {**os.environ, "DOCKER_HOST": self.engine.docker_host, "PYTHONUNBUFFERED": "1",
               **self.extra_env}
        cmd = [self.python, "-m", "healthd", "run", "--config", str(self.config),
               "--state", str(self.state), "--listen", f"{self.listen_host}:{self.port}",
               *self.args]
        if self.join_cgroup:
            cmd = ["sh", "-c", f'echo $$ > {self.join_cgroup} && exec "$@"', "sh", *cmd]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=self.cwd)
        wait_for(self.ready, 30, what=f"healthd /healthz\n{self.log()}")
        return self

    def ready(self) -> bool:
        """True when /healthz says the engine is connected."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"healthd exited with {self.proc.returncode}\n{self.log()}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2,
                                        context=self.ssl_context) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def get(self, path: str) -> bytes:
        """GET a path of healthd's HTTP endpoint (with the token, if any)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(self.url + path, headers=headers)
        with urllib.request.urlopen(req, timeout=5, context=self.ssl_context) as r:
            return bytes(r.read())

    def status(self) -> dict[str, Any]:
        """The /status snapshot."""
        return dict(json.loads(self.get("/status")))

    def sweeps(self) -> float:
        """How many observe sweeps have finished (from /metrics)."""
        for line in self.get("/metrics").decode().splitlines():
            if line.startswith("healthd_stats_sweep_seconds_count"):
                return float(line.split()[-1])
        return 0.0

    def wait_sweeps(self, n: int = 3, timeout: float = 30) -> None:
        """Wait until ``n`` more sweeps have run: 'healthd had its chance to act'."""
        start = self.sweeps()
        wait_for(lambda: self.sweeps() >= start + n, timeout, what=f"{n} sweeps")

    def rows(self, container: str | None = None) -> list[dict[str, Any]]:
        """Ledger rows, oldest first (read straight from SQLite, like `healthd history`)."""
        if not self.state.exists():
            return []
        db = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True)
        try:
            db.row_factory = sqlite3.Row
            q = "SELECT * FROM actions"
            args: tuple[str, ...] = ()
            if container:
                q += " WHERE container = ?"
                args = (container,)
            return [dict(r) for r in db.execute(q + " ORDER BY id", args)]
        finally:
            db.close()

    def restarts(self, container: str) -> list[dict[str, Any]]:
        """Restart rows that were sent (not held back)."""
        return [r for r in self.rows(container)
                if r["action"] == "restart" and r["outcome"] != "skipped"]

    def log(self) -> str:
        """healthd's output so far."""
        try:
            return "--- healthd log ---\n" + self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return "(no healthd log)"

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"healthd did not stop on SIGTERM\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL, as an OOM killer or a power cut would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def assert_promtool_clean(text: str) -> None:
    """``promtool check metrics`` finds nothing in an exposition (fails under CI without it)."""
    import shutil

    import pytest

    try:
        from tests.engine import in_ci
    except ModuleNotFoundError:
        from engine import in_ci  # type: ignore[no-redef]
    promtool = shutil.which("promtool")
    if promtool is None:
        if in_ci():
            pytest.fail("promtool missing: scripts/setup --test installs it")
        pytest.skip("promtool not installed (Debian package prometheus)")
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
