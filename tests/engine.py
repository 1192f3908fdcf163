"""A throwaway Docker engine for integration tests and benches.

Owns: starting a private dockerd (own socket, data-root, exec-root and pidfile in a fresh
mkdtemp), importing the busybox test image into it, restarting it, and tearing everything down
(containers, dockerd, leftover mounts, the directory).
Must never: touch another engine (it only speaks to its own socket), pull from a registry, or
sleep for a fixed time where it can poll a condition with a deadline.

dockerd runs in its own session (so a Ctrl-C of pytest does not hit it half-way) and with
PR_SET_PDEATHSIG, so it is sent SIGTERM even when the test process is SIGKILLed; `atexit`
covers normal interpreter exits. Each session uses a fresh directory, so a leftover from a
crashed run cannot collide with the next one; `reap_stale` cleans such leftovers.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import docker
import pytest

from healthd.demo import busybox_tar

IMAGE = "healthd-test/busybox:1"
DIR_PREFIX = "hdt-"  # under /tmp: a unix socket path must stay under 108 bytes
MARKER = "healthd-test-engine"
_PR_SET_PDEATHSIG = 1
T = TypeVar("T")


class EngineStartError(RuntimeError):
    """dockerd is missing, exited, or did not answer /_ping in time."""


class WaitTimeout(AssertionError):
    """A condition polled by `wait_for` stayed false until the deadline."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    what: str | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    timeout: seconds before giving up with `WaitTimeout`, whose message names the condition
      (``what`` or the predicate's name) and the last value or exception it produced.
    interval: seconds between polls.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - recorded and re-reported at the deadline
            value, last = None, exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            name = what or getattr(predicate, "__name__", repr(predicate))
            raise WaitTimeout(f"timed out after {timeout:.1f} s waiting for {name}; last: {last!r}")
        time.sleep(interval)


def in_ci() -> bool:
    """True when the CI environment variable is set (to anything but an explicit no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def engine_unavailable(reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere: CI must never turn integration tests into skips."""
    if in_ci():
        pytest.fail(f"throwaway Docker engine unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"throwaway Docker engine unavailable (under CI this fails): {reason}")


def _pdeathsig() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def ping(sock_path: str, timeout: float = 1.0) -> bool:
    """True when the engine behind ``sock_path`` answers ``GET /_ping`` with OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return False
    return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]


def _mounts_under(root: str) -> list[str]:
    """Mount points at or below ``root``, deepest first."""
    found: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_all(root: str) -> None:
    """Lazily unmount everything dockerd may have left under ``root``."""
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


class Engine:
    """A private dockerd in a fresh temp directory. Start with `start`, end with `stop`."""

    def __init__(
        self,
        dockerd: str | None = None,
        busybox: str | None = None,
        base: str = "/tmp",
        start_timeout: float = 30.0,
        hostname: str | None = None,
    ) -> None:
        """hostname: run dockerd under ``unshare --uts`` with this host name (a Swarm of
        several engines on one machine tells its nodes apart by it)."""
        self.dockerd = dockerd or shutil.which("dockerd") or "/usr/sbin/dockerd"
        self.busybox = busybox or shutil.which("busybox") or "/usr/bin/busybox"
        self.docker_cli = shutil.which("docker") or "docker"
        self.start_timeout = start_timeout
        self.hostname = hostname
        self.root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=base))
        (self.root / MARKER).write_text(f"{os.getpid()}\n")
        self.sock = str(self.root / "docker.sock")
        self.docker_host = f"unix://{self.sock}"
        self.log_path = self.root / "dockerd.log"
        self.image = IMAGE
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: docker.DockerClient | None = None
        self._names = itertools.count(1)
        atexit.register(self.stop)

    # -- lifecycle ---------------------------------------------------------------------

    def _spawn(self) -> None:
        if not os.path.exists(self.dockerd):
            raise EngineStartError(f"dockerd not found at {self.dockerd}")
        args = [
            self.dockerd,
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "-H", self.docker_host,
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "docker.pid"),
        ]  # fmt: skip
        if self.hostname:
            # unshare and sh exec into dockerd: still one process, so the process group,
            # PDEATHSIG and the pid stay dockerd's.
            args = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"',
                    self.hostname, *args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # PDEATHSIG fires when the *thread* that forked exits: call from the main thread.
                preexec_fn=_pdeathsig,
            )
        try:
            wait_for(self._ready, self.start_timeout, interval=0.05, what="dockerd /_ping")
        except WaitTimeout as exc:
            self._terminate()
            raise EngineStartError(f"dockerd did not answer: {exc}\n{self.log_tail()}") from exc

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise EngineStartError(f"dockerd exited with {self.proc.returncode}\n{self.log_tail()}")
        return ping(self.sock)

    def start(self) -> Engine:
        """Start dockerd, wait for ping, import the test image. Raises `EngineStartError`."""
        try:
            self._spawn()
        except EngineStartError:
            raise
        except OSError as exc:
            raise EngineStartError(f"cannot start {self.dockerd}: {exc}") from exc
        try:
            if not any(IMAGE in (img.tags or []) for img in self.client.images.list()):
                self.cli("import", "--change", "ENV PATH=/bin", "-", IMAGE,
                         input=busybox_tar(self.busybox, ("www",)))  # fmt: skip
        except (subprocess.SubprocessError, docker.errors.DockerException, OSError) as exc:
            raise EngineStartError(f"cannot import {IMAGE}: {exc}\n{self.log_tail()}") from exc
        return self

    def restart(self) -> None:
        """SIGTERM dockerd, wait for it to exit, start it again on the same dirs, wait for ping."""
        self._terminate()
        self._spawn()

    def _terminate(self, timeout: float = 20.0) -> None:
        """SIGTERM dockerd's process group, SIGKILL after ``timeout`` seconds."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def remove_all_containers(self) -> None:
        """Force-remove every container of this engine; errors are ignored (teardown)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(docker.errors.DockerException, OSError):
            for c in self.client.api.containers(all=True, quiet=True):
                with contextlib.suppress(docker.errors.DockerException):
                    self.client.api.remove_container(c["Id"], force=True, v=True)

    def stop(self) -> None:
        """Remove containers, stop dockerd, unmount leftovers and delete the directory.

        Idempotent; also registered with atexit.
        """
        self.remove_all_containers()
        if self._client is not None:
            self._client.close()
            self._client = None
        self._terminate()
        if self.root.exists():
            unmount_all(str(self.root))
            shutil.rmtree(self.root, ignore_errors=True)

    # -- use -----------------------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        """A docker-py client bound to this engine (API version negotiated: 1.41 here)."""
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.docker_host, version="auto",
                                               timeout=60)  # fmt: skip
        return self._client

    def cli(
        self, *args: str, check: bool = True, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this engine; stdout/stderr captured as text.

        Raises `subprocess.CalledProcessError` (with stderr in the message) when ``check``.
        """
        env = {**os.environ, "DOCKER_HOST": self.docker_host}
        env.pop("DOCKER_CONTEXT", None)
        raw = subprocess.run(
            [self.docker_cli, *args], input=input, capture_output=True, env=env,
            timeout=timeout, check=False,
        )  # fmt: skip
        done = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(errors="replace"),
            raw.stderr.decode(errors="replace"),
        )  # fmt: skip
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, f"{done.stderr.strip()}"
            )
        return done

    def name(self, hint: str = "c") -> str:
        """A container name unique within this engine's life: ``<hint>-<n>``.

        hint: what the test expects of the container (``should-restart``), per STYLE.md.
        """
        return f"{hint}-{next(self._names)}"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of dockerd's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no dockerd log)"
        return "--- dockerd log tail ---\n" + "\n".join(text.splitlines()[-lines:])


def healthd_engine(eng: Engine) -> Any:
    """healthd's own `healthd.engine.Engine` bound to ``eng``, made once and closed with it."""
    from healthd.observe import engine as healthd_engine_mod

    made = getattr(eng, "_healthd_engine", None)
    if made is None:
        made = healthd_engine_mod.Engine(eng.docker_host, pool_size=80)
        eng._healthd_engine = made  # type: ignore[attr-defined]
        atexit.register(made.close)
    return made


class Containers:
    """Creates uniquely named containers for one test and removes them afterwards."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.names: list[str] = []
        self._by_id: dict[str, str] = {}

    def name(self, hint: str = "c") -> str:
        """A fresh unique name (``<hint>-<n>``), removed with the others after the test."""
        name = self.engine.name(hint)
        self.names.append(name)
        return name

    def run(self, hint: str, *command: str, opts: Sequence[str] = ()) -> str:
        """``docker run -d --network none`` the test image; return the full container id.

        hint: the name's stem, saying what the test expects of the container.
        opts: extra ``docker run`` flags (``--memory 64m``, ``--cpus 0.5``...).
        """
        name = self.name(hint)
        done = self.engine.cli(
            "run", "-d", "--network", "none", "--name", name, *opts, self.engine.image, *command
        )
        cid = done.stdout.strip()
        self._by_id[cid] = name
        return cid

    def name_of(self, cid: str) -> str:
        """The name `run` gave the container with id ``cid``."""
        return self._by_id[cid]

    def remove_all(self) -> None:
        """Force-remove this test's containers; already-gone ones are fine."""
        for name in self.names:
            with contextlib.suppress(docker.errors.NotFound):
                self.engine.client.api.remove_container(name, force=True, v=True)
        self.names.clear()


def _alive(pidfile: Path) -> bool:
    """True when ``pidfile`` names a running process."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    return pid > 0 and Path(f"/proc/{pid}").exists()


def reap_stale(base: str = "/tmp") -> list[str]:
    """Delete engine dirs of earlier runs whose dockerd is gone; return the dirs removed.

    Only dirs carrying this module's marker file are considered, and only when neither the
    process that created them (pid in the marker) nor their dockerd (docker.pid) is alive.
    """
    removed: list[str] = []
    for d in Path(base).glob(f"{DIR_PREFIX}*"):
        if not (d / MARKER).exists():
            continue
        if any(_alive(d / f) for f in (MARKER, "docker.pid")):
            continue
        unmount_all(str(d))
        shutil.rmtree(d, ignore_errors=True)
        removed.append(str(d))
    return removed


def exit_on_sigterm() -> None:
    """For scripts (bench/): SIGTERM raises SystemExit, so their ``finally`` stops the engine
    (Python's default ends the process at once: its dockerd then dies with it, and the
    containers' shims and processes are left running)."""
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(128 + signal.SIGTERM))


@contextlib.contextmanager
def running_engine(**kwargs: object) -> Iterator[Engine]:
    """Context manager for scripts (bench/): a started engine, stopped on exit (a SIGTERM
    included)."""
    exit_on_sigterm()
    engine = Engine(**kwargs)  # type: ignore[arg-type]
    try:
        yield engine.start()
    finally:
        engine.stop()
