"""A tiny threaded HTTP receiver on 127.0.0.1 that records what it is sent.

Owns: one listening socket (a fixed port, so it can go down and come back on the same
address), the POSTs it received, and how it answers: 200, a chosen status for the next N
requests, or not at all (``hang``: it reads the request and keeps the connection open
until released). Must never: listen beyond loopback, or sleep where it can wait on an event.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

try:
    from tests.engine import wait_for
    from tests.integration.healthd_proc import free_port
except ModuleNotFoundError:  # run from bench/ with tests/ on the path
    from engine import wait_for  # type: ignore[no-redef]
    from healthd_proc import free_port  # type: ignore[no-redef]


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON
    at: float  # time.time() when it arrived


class Receiver:
    """Start with ``up()``; ``down()`` closes the socket (connections are refused)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.got: list[Received] = []  # answered 200
        self.hung: list[Received] = []  # read, never answered
        self.requests = 0  # every request, answered or not
        self.fail_next = 0  # answer this many requests with fail_status, then 200
        self.fail_status = 500
        self.always_status: int | None = None  # answer every request with this status
        self.hang = False
        self._release = threading.Event()
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def up(self) -> Receiver:
        """Listen (again) on the same port."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                got = Received(self.path, dict(self.headers.items()),
                               json.loads(raw) if raw else None, time.time())
                status = owner._answer()
                if status is None:  # hang: keep the client waiting until released
                    owner.hung.append(got)
                    owner._release.wait(60)
                    return
                if status == 200:
                    owner._record(got)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening: new connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def release(self) -> None:
        """Let hanging requests go (they end without an answer)."""
        self.hang = False
        self._release.set()

    def close(self) -> None:
        """Release and stop."""
        self.release()
        self.down()

    def _answer(self) -> int | None:
        with self._lock:
            self.requests += 1
            if self.hang:
                return None
            if self.always_status is not None:
                return self.always_status
            if self.fail_next > 0:
                self.fail_next -= 1
                return self.fail_status
            return 200

    def _record(self, r: Received) -> None:
        with self._lock:
            self.got.append(r)
            self._lock.notify_all()

    def bodies(self) -> list[Any]:
        """The JSON bodies received so far."""
        with self._lock:
            return [r.body for r in self.got]

    def wait(self, count: int, timeout: float = 20) -> list[Received]:
        """Wait until ``count`` POSTs were received; returns them."""
        return wait_for(lambda: list(self.got) if len(self.got) >= count else None, timeout,
                        what=f"{count} POSTs at {self.url} (have {len(self.got)})")

    def notice_ids(self) -> list[str]:
        """Notice ids of the webhook documents received, in arrival order."""
        return [n["id"] for b in self.bodies() for n in b["notices"]]
