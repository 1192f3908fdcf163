"""Debian's Firefox ESR, headless, driven over WebDriver BiDi, for the dashboard's tests.

Owns: starting ``firefox-esr`` with its remote agent on a loopback port and a throwaway
profile, a minimal BiDi session (navigate, evaluate, the console and JavaScript errors the
page logs), and stopping it. Playwright drives only its own patched Firefox, which cannot
be downloaded here, and there is no geckodriver in Debian; Firefox speaks BiDi itself, and
``websockets`` carries it.
Must never: fetch anything: the page under test is healthd's own, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any


class FirefoxUnavailable(RuntimeError):
    """firefox-esr or websockets is missing (scripts/setup --test installs both)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Firefox:
    """One BiDi session on one tab."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.errors: list[str] = []  # console errors and uncaught exceptions, as said
        self._ids = itertools.count(1)
        self.call("session.new", {"capabilities": {}})
        self.call("session.subscribe", {"events": ["log.entryAdded"]})
        tree = self.call("browsingContext.getTree", {})
        self.context = str(tree["contexts"][0]["context"])

    def call(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> Any:
        """Send one command and return its result; events that come meanwhile are kept."""
        cid = next(self._ids)
        self.ws.send(json.dumps({"id": cid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("type") == "event" or ("method" in msg and "id" not in msg):
                self._event(msg)
            elif msg.get("id") == cid:
                if msg.get("type") == "error" or "error" in msg:
                    raise RuntimeError(f"{method}: {msg.get('error')}: {msg.get('message')}")
                return msg.get("result")

    def _event(self, msg: dict[str, Any]) -> None:
        if msg.get("method") != "log.entryAdded":
            return
        e = msg.get("params") or {}
        if e.get("level") == "error":
            self.errors.append(f"{e.get('type')}: {e.get('text')}")

    def goto(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        self.call("browsingContext.navigate",
                  {"context": self.context, "url": url, "wait": "complete"})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a primitive)."""
        r = self.call("script.evaluate", {"expression": expression, "awaitPromise": True,
                                          "target": {"context": self.context}})
        if r.get("type") == "exception":
            raise RuntimeError(f"{expression}: {r.get('exceptionDetails')}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.evaluate(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} stayed {v!r} for {timeout:.0f} s")
            time.sleep(0.2)

    def drain(self, seconds: float = 1.0) -> None:
        """Read the events that arrive for ``seconds`` (errors logged after a render)."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while time.monotonic() < deadline:
                self._event(json.loads(self.ws.recv(timeout=deadline - time.monotonic())))


@contextlib.contextmanager
def firefox() -> Iterator[Firefox]:
    """A headless Firefox ESR with a fresh profile, closed (and its profile removed) on exit."""
    try:
        from websockets.sync.client import connect
    except ImportError as exc:
        raise FirefoxUnavailable(f"websockets is not installed: {exc}") from exc
    binary = shutil.which("firefox-esr") or shutil.which("firefox")
    if binary is None:
        raise FirefoxUnavailable("firefox-esr missing (Debian package firefox-esr)")
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="hd-firefox-")
    env = {**os.environ, "HOME": profile, "MOZ_HEADLESS": "1"}
    proc = subprocess.Popen([binary, "--headless", "--no-remote", "--profile", profile,
                             f"--remote-debugging-port={port}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ws = connect(f"ws://127.0.0.1:{port}/session", open_timeout=5,
                             max_size=2**24)
                break
            except (OSError, TimeoutError) as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise FirefoxUnavailable(
                        f"firefox's remote agent did not answer: {exc}") from exc
                time.sleep(0.3)
        with ws:
            yield Firefox(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
