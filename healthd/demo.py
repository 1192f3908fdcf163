"""``healthd demo``: a small stack that misbehaves on purpose, healed by a healthd child.

Owns: creating the demo's containers (what each one does wrong is ``healthd.demo_stack``),
its image (imported from the host's static busybox, no registry), the healthd it runs with
the dashboard on
loopback, and the clean-up: everything it creates carries ``healthd.demo=<run id>``, is
removed on Ctrl-C or SIGTERM, and whatever a SIGKILLed run left is removed by the next
start. Must never: touch a container without that label (its healthd runs in opt-in mode
and only the demo's carry healthd.enable=true), or pull from a registry.

It speaks to the engine through the ``docker`` command (as an operator would), so the only
docker-py user stays ``observe.engine``.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from healthd.demo_stack import (
    CONFIG,
    FOREVER,
    IMAGE,
    LABEL,
    PARTS,
    PROJECT,
    SWARM_SERVICE,
    container_name,
    run_args,
)

_PR_SET_PDEATHSIG = 1


class DemoError(RuntimeError):
    """The demo cannot start: no engine, no static busybox, the engine refused a container."""


class Docker:
    """The ``docker`` command against $DOCKER_HOST (or its default)."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("docker")
        if found is None:
            raise DemoError("the docker command is not installed (Debian: docker.io)")
        self.binary = found

    def __call__(self, *args: str, stdin: bytes | None = None, check: bool = True,
                 timeout: float = 60.0) -> str:
        """stdout of ``docker ARGS``; DemoError with its stderr when it fails and ``check``."""
        try:
            done = subprocess.run([self.binary, *args], input=stdin, capture_output=True,
                                  timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DemoError(f"docker {args[0]}: {exc}") from exc
        if check and done.returncode != 0:
            raise DemoError(f"docker {' '.join(args[:3])}: "
                            f"{done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode(errors="replace")


def remove_labelled(docker: Docker) -> int:
    """Remove every service, container and volume labelled ``healthd.demo`` (any run);
    returns how many objects went. What is already gone is fine."""
    removed = 0
    listed = docker("service", "ls", "-q", "--filter", f"label={LABEL}", check=False).split()
    if listed:
        docker("service", "rm", *listed, check=False)
        removed += len(listed)
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
        removed += len(ids)
    vols = docker("volume", "ls", "-q", "--filter", f"label={LABEL}").split()
    if vols:
        docker("volume", "rm", "-f", *vols, check=False)
        removed += len(vols)
    return removed


def _static_busybox() -> str:
    for path in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if path and os.path.exists(path):
            with open(path, "rb") as fh:
                head = fh.read(1 << 16)
            # A dynamic executable names its loader; the container has none.
            if b"ld-linux" not in head and b"/lib/ld-" not in head:
                return path
            raise DemoError(f"{path} is dynamically linked: install busybox-static")
    raise DemoError("no busybox on this host: install busybox-static")


def busybox_tar(busybox: str, extra_dirs: Sequence[str] = ("shared",)) -> bytes:
    """A root file system: bin/busybox, one symlink per applet, the usual empty dirs and
    ``extra_dirs`` (the demo's volume mount point; the tests' image uses it too)."""
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "proc", "sys", "dev", "etc", *extra_dirs):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            # Linking "busybox" itself would replace the binary with a loop.
            if applet == "busybox" or "/" in applet:
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(info)
    return buf.getvalue()


def ensure_image(docker: Docker) -> bool:
    """Import the demo's busybox image unless the engine has it; True when imported."""
    if docker("image", "ls", "-q", IMAGE).strip():
        return False
    docker("import", "--change", "ENV PATH=/bin", "-", IMAGE,
           stdin=busybox_tar(_static_busybox()), timeout=120)
    return True


def swarm_manager(docker: Docker) -> bool:
    """True when this engine is an active Swarm manager."""
    out = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
                 check=False)
    return out.strip() == "active true"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the demo dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError):
        return None


class Demo:
    """One run: create, watch, clean up. ``say`` prints a line for the operator."""

    def __init__(self, docker: Docker, port: int, say: Callable[[str], None]) -> None:
        self.docker, self.say = docker, say
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run_id = f"{int(time.time())}-{os.getpid()}"
        self.volume = f"{PROJECT}-shared-{self.run_id}"
        self.ports: dict[str, int] = {}  # service -> the port a host_port part listens on
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="healthd-demo-"))

    def create(self) -> list[str]:
        """Remove an earlier run's leftovers, then create this run's objects; their names."""
        left = remove_labelled(self.docker)
        if left:
            self.say(f"removed {left} leftover object(s) of an earlier healthd demo")
        if ensure_image(self.docker):
            self.say(f"imported {IMAGE} from the host's busybox")
        self.docker("volume", "create", "--label", f"{LABEL}={self.run_id}", self.volume)
        made = []
        for part in PARTS:
            if self.stopping.is_set():
                break
            self.ports[part.service] = _free_port() if part.host_port else 0
            self.docker(*run_args(part, self.run_id, self.volume, self.ports[part.service]))
            made.append(container_name(part.service))
        if not self.stopping.is_set() and swarm_manager(self.docker):
            self.docker("service", "create", "-d", "--name", SWARM_SERVICE, "--no-resolve-image",
                        "--label", f"{LABEL}={self.run_id}", "--container-label",
                        f"{LABEL}={self.run_id}", "--container-label", "healthd.enable=true",
                        "--replicas", "1", IMAGE, "sh", "-c", FOREVER)
            made.append(SWARM_SERVICE)
        return made

    def start_healthd(self, python: str = sys.executable) -> None:
        """Run healthd on the demo's config, in its own session (Ctrl-C reaches the demo,
        which stops it in order), dying with the demo even when the demo is SIGKILLed."""
        cfg = self.workdir / "config.toml"
        cfg.write_text(CONFIG)
        log = open(self.workdir / "healthd.log", "ab")  # noqa: SIM115 - the child's stdout
        with log:
            self.child = subprocess.Popen(
                [python, "-m", "healthd", "run", "--config", str(cfg), "--state",
                 str(self.workdir / "state.db"), "--listen", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while _get(self.url + "/healthz") is None:
            if self.child.poll() is not None or time.monotonic() > deadline:
                raise DemoError(f"healthd did not start; its log: {self.workdir}/healthd.log")
            if self.stopping.wait(0.2):
                return
        # /healthz answers as soon as the server is up, which can be before healthd's first
        # sweep: the guide waits for the first picture, so the dashboard it points at is not
        # empty. Not an error when it does not come: the dashboard says what healthd sees.
        while not self._watching() and time.monotonic() < deadline:
            if self.child.poll() is not None or self.stopping.wait(0.2):
                return

    def _watching(self) -> bool:
        """Whether healthd's /status lists any container yet."""
        body = _get(self.url + "/status")
        try:
            return bool(body and json.loads(body).get("containers"))
        except (ValueError, AttributeError):
            return False

    def guide(self, made: Sequence[str]) -> None:
        """What to look at, and where."""
        self.say(f"healthd demo {self.run_id}: {len(made)} containers/services labelled "
                 f"{LABEL}={self.run_id}")
        self.say(f"dashboard: {self.url}/   (healthd's log: {self.workdir}/healthd.log)")
        self.say("what to watch in the next minutes:")
        for part in PARTS:
            self.say(f"  - {part.watch.replace('PORT', str(self.ports.get(part.service)))}")
        if SWARM_SERVICE in made:
            self.say(f"  - {SWARM_SERVICE}: a Swarm service, shown with its tasks")
        self.say("Ctrl-C stops healthd and removes everything the demo created.")

    def follow(self, interval_s: float = 2.0) -> None:
        """Print each decision healthd records, until stopped or healthd exits."""
        seen, said = 0, set[tuple[str, str, str, str]]()
        while not self.stopping.wait(interval_s):
            if self.child is not None and self.child.poll() is not None:
                self.say(f"healthd exited ({self.child.returncode}); see "
                         f"{self.workdir}/healthd.log")
                return
            body = _get(self.url + "/api/history?limit=50")
            try:
                rows = json.loads(body) if body else []
            except ValueError:
                rows = []
            for r in sorted(rows, key=lambda r: int(r["id"])):
                if int(r["id"]) > seen:
                    seen = int(r["id"])
                    # A decision held for the same reason again says nothing new here
                    # (the dashboard's timeline has every row).
                    held = r["explanation"].partition(" [held: ")[2].split(":", 1)[0]
                    key = (r["container"], r["action"], r["rule"], held)
                    if r["outcome"] == "skipped" and key in said:
                        continue
                    said.add(key)
                    stamp = time.strftime("%H:%M:%S", time.localtime(float(r["at"])))
                    outcome = "acting" if r["outcome"] == "pending" else r["outcome"]
                    self.say(f"{stamp} {outcome:9} {r['explanation']}")

    def clean(self) -> int:
        """Stop healthd first (so it creates nothing more), then remove what is labelled."""
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(20)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        removed = remove_labelled(self.docker)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return removed


def main(port: int = 0, say: Callable[[str], None] = print) -> int:
    """Run the demo until SIGINT or SIGTERM; the exit code."""
    try:
        docker = Docker()
        docker("version", "--format", "{{.Server.Version}}", timeout=15)
    except DemoError as exc:
        say(f"error: no Docker engine to run the demo on: {exc}")
        return 1
    demo = Demo(docker, port, say)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        demo.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        made = demo.create()
        demo.start_healthd()
        if not demo.stopping.is_set():
            demo.guide(made)
            demo.follow()
    except DemoError as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        say("stopping: removing the demo's containers...")
        say(f"removed {demo.clean()} object(s); bye")
    return code
