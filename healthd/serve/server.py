"""The HTTP endpoint: /metrics, /status (JSON for ``healthd status``) and /healthz.

Owns: the only HTTP server. Must never: decide or touch the engine; it serves snapshots
the daemon hands it through callables.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


def parse_listen(listen: str) -> tuple[str, int]:
    """'HOST:PORT' (or '[v6]:PORT') to a (host, port) pair; ValueError with the reason."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"listen address {listen!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _healthz(problem: str | None) -> tuple[int, str, bytes]:
    """200 "ok", or 503 with what is wrong (a stalled loop, a lost engine)."""
    if problem is None:
        return 200, "text/plain", b"ok\n"
    return 503, "text/plain", f"{problem}\n".encode()


class Server:
    """A small threaded HTTP server in a daemon thread."""

    def __init__(
        self,
        listen: str,
        metrics: Callable[[], bytes],
        status: Callable[[], dict[str, Any]],
        liveness: Callable[[], str | None],
    ) -> None:
        host, port = parse_listen(listen)
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": lambda: (200, "text/plain; version=0.0.4; charset=utf-8", metrics()),
            "/status": lambda: (200, "application/json",
                                json.dumps(status(), indent=1).encode()),
            "/healthz": lambda: _healthz(liveness()),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    code, ctype, body = 404, "text/plain", b"not found\n"
                else:
                    code, ctype, body = route()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.address = f"{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http",
                                        daemon=True)

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
