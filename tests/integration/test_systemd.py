"""healthd under systemd: the unit passes `systemd-analyze verify`, and the real `healthd run`
speaks the notify protocol to a real NOTIFY_SOCKET: READY=1, STATUS=, WATCHDOG=1 at half of
WATCHDOG_USEC from the main loop (so a wedged loop stops the pings), STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import itertools
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine import Containers, Engine, in_ci, wait_for
from tests.integration.healthd_proc import Healthd
from tests.integration.wedge import wedged_main_loop

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "healthd.service"
HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=healthd",
             "ProtectHome=yes", "PrivateTmp=yes", "Restart=on-failure",
             "SupplementaryGroups=docker", "WatchdogSec=30", "Type=notify")


def test_unit_is_hardened_and_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = UNIT.read_text()
    for line in HARDENING:
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if in_ci():
            pytest.fail("systemd-analyze missing: scripts/setup --test installs systemd")
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    # verify wants ExecStart's binary to exist: point it at this venv's healthd.
    healthd = Path(sys.executable).parent / "healthd"
    assert healthd.exists(), healthd
    unit = tmp_path / "healthd.service"
    unit.write_text(text.replace("/opt/healthd/bin/healthd", str(healthd)))
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr)
    # ...and it does catch a broken unit.
    unit.write_text(text.replace("Type=notify", "Type=notifyy"))
    bad = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True,
                         timeout=60)
    assert "notifyy" in bad.stdout + bad.stderr


class NotifySocket:
    """A SOCK_DGRAM unix socket, as systemd's, that records each message with its time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, list[str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode().split("\n")))

    def times(self, field: str, since: float = 0.0) -> list[float]:
        """When messages carrying ``field`` (exactly, or as KEY= prefix) arrived."""
        with self._lock:
            return [t for t, fields in self.messages if t >= since
                    and any(f == field or (field.endswith("=") and f.startswith(field))
                            for f in fields)]

    def values(self, key: str) -> list[str]:
        """Every value sent for ``key`` (STATUS, say), oldest first."""
        with self._lock:
            return [f[len(key) + 1:] for _, fields in self.messages for f in fields
                    if f.startswith(key + "=")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify")
    yield s
    s.close()


@pytest.mark.engine
def test_notify_protocol_ready_status_watchdog_and_stopping(
    engine: Engine, containers: Containers, notify: NotifySocket, tmp_path: Path
) -> None:
    interval = 1.0  # WATCHDOG_USEC / 2
    h = Healthd(engine, tmp_path, env={"NOTIFY_SOCKET": str(notify.path),
                                       "WATCHDOG_USEC": str(int(interval * 2e6))})
    try:
        h.start()
        ready = wait_for(lambda: notify.times("READY=1"), 30, what="READY=1")
        assert len(ready) == 1
        assert h.sweeps() >= 1  # READY=1 comes after the first sweep
        status = wait_for(lambda: notify.values("STATUS"), 10, what="STATUS=")
        assert re.match(r"watching \d+ containers?; no action taken recently", status[0]), status

        # The last action shows in STATUS= once healthd restarted a crashed container.
        cid = containers.run("should-restart-and-show-in-status", "sh", "-c",
                             "if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; exit 4")
        name = containers.name_of(cid)
        wait_for(lambda: any(f"last action: restart {name} (crashed.critical, succeeded)" in v
                             for v in notify.values("STATUS")), 30,
                 what=f"STATUS= naming the restart\n{notify.values('STATUS')}\n{h.log()}")

        # Pings at about WATCHDOG_USEC / 2, from a loop that turns at least once a second.
        start = time.monotonic()
        wait_for(lambda: len(notify.times("WATCHDOG=1", since=start)) >= 7, 20,
                 what="seven watchdog pings")
        pings = notify.times("WATCHDOG=1", since=start)
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert interval * 0.95 <= statistics.median(gaps) <= interval * 1.5, gaps
        assert max(gaps) < interval * 2.5, gaps

        # Wedge the main loop (a compose file on a "hung filesystem"): the pings stop, and
        # come back after.
        with wedged_main_loop(containers, tmp_path):
            # The next sweep blocks; give it one interval to get there.
            held = time.monotonic() + 1.0
            time.sleep(5 * interval)  # the silence we are checking for: nothing to wait on
            during = notify.times("WATCHDOG=1", since=held + 1.5 * interval)
        released = time.monotonic()
        assert during == [], f"pings while the main loop was wedged: {during}"
        wait_for(lambda: notify.times("WATCHDOG=1", since=released), 15,
                 what=f"pings again after the lock is gone\n{h.log()}")
    finally:
        code = h.stop()
    assert code == 0, h.log()
    stopping = notify.times("STOPPING=1")
    assert len(stopping) == 1, notify.messages[-5:]


def test_install_script_makes_a_venv_a_config_and_a_verified_unit(tmp_path: Path) -> None:
    """scripts/install-systemd into a temp prefix, from a wheelhouse, systemctl recorded."""
    from tests.image import ImageUnavailable, build_context

    try:
        wheelhouse = build_context(tmp_path / "ctx") / "wheelhouse"
    except ImageUnavailable as exc:
        if in_ci():
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    calls = tmp_path / "systemctl.calls"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    systemctl.chmod(0o755)
    prefix, etc, units = tmp_path / "opt" / "healthd", tmp_path / "etc", tmp_path / "units"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PREFIX": str(prefix), "ETC_DIR": str(etc),
           "UNIT_DIR": str(units), "SYSTEMCTL": str(systemctl), "PYTHON": sys.executable}
    done = subprocess.run([str(REPO / "scripts" / "install-systemd"), "--wheelhouse",
                           str(wheelhouse)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (prefix / "bin" / "healthd").exists()
    assert (etc / "config.toml").read_text() == (REPO / "config.toml").read_text()
    unit = (units / "healthd.service").read_text()
    assert f"ExecStart={prefix}/bin/healthd run --config {etc}/config.toml" in unit
    assert calls.read_text().splitlines() == ["daemon-reload", "enable --now healthd.service"]
    # A second run keeps the operator's config.
    (etc / "config.toml").write_text("[guards]\ncooldown_s = 60.0\n")
    again = subprocess.run([str(REPO / "scripts" / "install-systemd"), "--wheelhouse",
                            str(wheelhouse), "--no-start"], env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "cooldown_s = 60.0" in (etc / "config.toml").read_text()
    assert calls.read_text().splitlines()[-1] == "enable healthd.service"
