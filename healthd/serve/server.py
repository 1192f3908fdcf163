"""The HTTP endpoint: /metrics, /status (JSON for ``healthd status``), /healthz and the
dashboard (``GET /``, its files and the read-only ``/api/*`` JSON it polls).

Owns: the only HTTP server, optionally behind TLS, and its door: every request passes
``access.Policy.refuse`` before a route runs, so a refused one changes nothing; it gets a
401, is counted and logged without its token. Must never: decide or touch the engine; it
serves snapshots the daemon hands it through callables.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from healthd.core.settings import DaemonSettings
from healthd.serve import ui
from healthd.serve.access import Policy, is_loopback

log = logging.getLogger(__name__)

Response = tuple[int, str, bytes]
GetRoute = Callable[[], Response]
PostRoute = Callable[[bytes], Response]
PrefixRoute = Callable[[str, bytes], Response]  # (the path after the prefix, the body)
QueryRoute = Callable[[Mapping[str, str]], Any]  # the query string's parameters -> JSON
MAX_BODY = 64 * 1024  # bytes a POST body may have
REQUEST_TIMEOUT_S = 15.0  # a client that stalls (or never finishes its TLS handshake)


def parse_listen(listen: str) -> tuple[str, int]:
    """'HOST:PORT' (or '[v6]:PORT') to a (host, port) pair; ValueError with the reason."""
    host, sep, port = listen.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        raise ValueError(f"listen address {listen!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _json(body: Callable[[], Any]) -> Response:
    return 200, "application/json", json.dumps(body()).encode()


def _query_json(body: QueryRoute, query: str) -> Response:
    """200 with ``body``'s JSON, or 400 with its ValueError's message (a bad parameter)."""
    params = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
    try:
        return _json(lambda: body(params))
    except ValueError as exc:
        return 400, "text/plain", f"{exc}\n".encode()
    except RuntimeError as exc:  # the ledger cannot answer (LedgerError) right now
        return 503, "text/plain", f"{exc}\n".encode()


def _page(response: Response) -> Response:
    return response


def _healthz(problem: str | None) -> Response:
    """200 "ok", or 503 with what is wrong (a stalled loop, a lost engine)."""
    if problem is None:
        return 200, "text/plain", b"ok\n"
    return 503, "text/plain", f"{problem}\n".encode()


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context for ``cert`` and ``key`` (PEM files), TLS 1.2 or newer."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up, or speaks plain HTTP to the TLS port, is not our error:
        # the default prints a traceback to stderr.
        log.debug("http: request from %s failed", client_address, exc_info=True)


class Server:
    """A small threaded HTTP server in a daemon thread."""

    def __init__(
        self,
        listen: str,
        metrics: Callable[[], bytes],
        status: Callable[[], dict[str, Any]],
        liveness: Callable[[], str | None],
        *,
        policy: Policy | None = None,
        tls: ssl.SSLContext | None = None,
        post_routes: Mapping[str, PostRoute] | None = None,
        on_unauthorized: Callable[[str], None] = lambda reason: None,
        json_routes: Mapping[str, Callable[[], Any]] | None = None,
        post_prefixes: Mapping[str, PrefixRoute] | None = None,
        query_routes: Mapping[str, QueryRoute] | None = None,
    ) -> None:
        """policy: who may call what (default: no token, exposed unless on loopback).

        query_routes: path -> JSON from the query's parameters (the dashboard's /api/*);
        a ValueError it raises is a 400 with its message.

        post_routes: path -> handler of the request body; each needs the token.
        post_prefixes: path prefix -> handler of (the rest of the path, the body), for
          paths that carry an id (/api/approve/<id>); each needs the token.
        on_unauthorized: called with the reason (``access.REASONS``) of each 401.
        """
        host, port = parse_listen(listen)
        self.policy = policy if policy is not None else Policy(exposed=not is_loopback(host))
        door = self.policy
        get_routes: dict[str, GetRoute] = {
            "/metrics": lambda: (200, "text/plain; version=0.0.4; charset=utf-8", metrics()),
            "/status": lambda: (200, "application/json",
                                json.dumps(status(), indent=1).encode()),
            "/healthz": lambda: _healthz(liveness()),
        }
        for route, body in (json_routes or {}).items():
            get_routes[route] = functools.partial(_json, body)
        for route, page in ui.routes().items():
            get_routes[route] = functools.partial(_page, page)
        queries: dict[str, QueryRoute] = dict(query_routes or {})
        posts: dict[str, PostRoute] = dict(post_routes or {})
        prefixes: dict[str, PrefixRoute] = dict(post_prefixes or {})

        def post_route(path: str) -> PostRoute | None:
            if path in posts:
                return posts[path]
            for prefix, route in prefixes.items():
                if not path.startswith(prefix):
                    continue
                rest = path[len(prefix):]
                # "/api/approve/" takes one more segment; "/api/pause" only itself.
                if (rest and "/" not in rest) if prefix.endswith("/") else not rest:
                    return functools.partial(route, rest)
            return None

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S
            server_version = "healthd"
            sys_version = ""

            def _handle(self, method: str) -> None:
                path, _, query = self.path.partition("?")
                reason = door.refuse(method, path, self.headers.get("Authorization"))
                if reason is not None:
                    # Never the header itself: it holds the (wrong) token.
                    log.warning("http: refused %s %s from %s: %s token", method, path,
                                self.client_address[0], reason)
                    on_unauthorized(reason)
                    self._send(401, "text/plain", b"unauthorized\n",
                               {"WWW-Authenticate": 'Bearer realm="healthd"'})
                    return
                if method == "GET" and path in queries:
                    self._send(*_query_json(queries[path], query))
                    return
                if method == "GET":
                    get = get_routes.get(path)
                    self._send(*(get() if get else (404, "text/plain", b"not found\n")))
                    return
                post = post_route(path) if method == "POST" else None
                if post is None:
                    self._send(405 if path in get_routes or path in queries else 404,
                               "text/plain",
                               b"no such route\n")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 <= length <= MAX_BODY:
                    self._send(413, "text/plain", b"body too large\n")
                    return
                self._send(*post(self.rfile.read(length)))

            def _send(self, code: int, ctype: str, body: bytes,
                      headers: Mapping[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        self.httpd = _HTTPServer((host, port), Handler)
        self.tls = tls is not None
        if tls is not None:
            # The handshake happens on the first read, in the request's own thread, under
            # its timeout: a client that never finishes it holds no one else up.
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
        bound = self.httpd.server_address[1]
        self.address = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http",
                                        daemon=True)

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()


def from_settings(
    daemon: DaemonSettings,
    token: str | None,
    metrics: Callable[[], bytes],
    status: Callable[[], dict[str, Any]],
    liveness: Callable[[], str | None],
    on_unauthorized: Callable[[str], None],
    json_routes: Mapping[str, Callable[[], Any]] | None = None,
    post_prefixes: Mapping[str, PrefixRoute] | None = None,
    query_routes: Mapping[str, QueryRoute] | None = None,
) -> Server:
    """The server ``[daemon]`` asks for: its listen address, door and TLS.

    token: the token ``access.read_token`` found, or None. Raises OSError (ssl.SSLError
    included) when the address cannot be bound or the TLS files cannot be loaded, and
    ValueError for a malformed address.
    """
    host, _ = parse_listen(daemon.listen)
    policy = Policy(token=token, exposed=not is_loopback(host),
                    metrics_public=daemon.metrics_public)
    tls = tls_context(daemon.tls_cert, daemon.tls_key) if daemon.tls_cert else None
    if policy.exposed and token is None:
        log.warning("listening on %s beyond loopback without daemon.token: only /healthz%s"
                    " answer; the rest gets 401", daemon.listen,
                    " and /metrics" if daemon.metrics_public else "")
    elif policy.exposed and tls is None:
        log.warning("listening on %s beyond loopback without TLS: the token crosses the"
                    " network in clear text (set daemon.tls_cert and daemon.tls_key)",
                    daemon.listen)
    return Server(daemon.listen, metrics, status, liveness, policy=policy, tls=tls,
                  on_unauthorized=on_unauthorized, json_routes=json_routes,
                  post_prefixes=post_prefixes, query_routes=query_routes)
