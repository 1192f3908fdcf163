"""The HTTP door on a real socket: the token, 401s that change nothing, TLS, and the CLI.

Most tests run ``serve.server.Server`` in process with stand-in callables (no engine);
the last one runs the real ``healthd run`` beyond loopback, with a token and TLS.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from healthd.cli import main
from healthd.core.config import build
from healthd.serve import server
from healthd.serve.access import Policy
from healthd.serve.metrics import Metrics
from tests.engine import Engine, in_ci
from tests.integration.healthd_proc import Healthd, free_port

TOKEN = "door-test-token-0123456789abcdef"
SNAPSHOT: dict[str, Any] = {"now": 0.0, "started_at": 0.0, "dry_run": False,
                            "engine_connected": True, "stats_path": "cgroup",
                            "containers": [], "host": []}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, made by openssl."""
    if shutil.which("openssl") is None:
        if in_ci():
            pytest.fail("openssl missing")
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=healthd-test",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True, timeout=60)
    return str(crt), str(key)


class Served:
    """A Server on 127.0.0.1 with a metrics registry and a POST route that records."""

    def __init__(self, policy: Policy, tls: ssl.SSLContext | None = None,
                 healthz: str | None = None) -> None:
        self.metrics = Metrics()
        self.posted: list[bytes] = []
        self.srv = server.Server(
            f"127.0.0.1:{free_port()}", self.metrics.render, lambda: SNAPSHOT,
            lambda: healthz, policy=policy, tls=tls,
            post_routes={"/actions": self._post},
            on_unauthorized=lambda reason: self.metrics.unauthorized.labels(reason).inc())
        self.url = f"{'https' if tls else 'http'}://{self.srv.address}"
        self.srv.start()

    def _post(self, body: bytes) -> tuple[int, str, bytes]:
        self.posted.append(body)
        return 200, "text/plain", b"done\n"

    def call(self, path: str, token: str | None = None, method: str = "GET",
             body: bytes | None = None, ctx: ssl.SSLContext | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code), bytes(exc.read())

    def refused(self, reason: str) -> float:
        for line in self.metrics.render().decode().splitlines():
            if line.startswith(f'healthd_http_unauthorized_total{{reason="{reason}"}}'):
                return float(line.split()[-1])
        raise AssertionError(f"no unauthorized series for {reason}")


@pytest.fixture
def served() -> Iterator[list[Served]]:
    made: list[Served] = []
    yield made
    for s in made:
        s.srv.stop()


def test_beyond_loopback_status_needs_the_token_but_healthz_and_metrics_do_not(
    served: list[Served], caplog: pytest.LogCaptureFixture
) -> None:
    s = Served(Policy(token=TOKEN, exposed=True))
    served.append(s)
    caplog.set_level(logging.WARNING, logger="healthd.serve.server")
    assert s.call("/healthz") == (200, b"ok\n")
    assert s.call("/metrics")[0] == 200
    assert s.call("/status")[0] == 401
    assert s.call("/status", token="not-the-token-at-all")[0] == 401
    code, body = s.call("/status", token=TOKEN)
    assert code == 200 and json.loads(body)["containers"] == []
    assert (s.refused("missing"), s.refused("wrong")) == (1.0, 1.0)
    assert "refused GET /status from 127.0.0.1: wrong token" in caplog.text
    assert "not-the-token-at-all" not in caplog.text and TOKEN not in caplog.text


def test_metrics_can_be_closed_too(served: list[Served]) -> None:
    s = Served(Policy(token=TOKEN, exposed=True, metrics_public=False))
    served.append(s)
    assert s.call("/metrics")[0] == 401
    assert s.call("/metrics", token=TOKEN)[0] == 200
    assert s.call("/healthz", token=None)[0] == 200


def test_a_refused_post_changes_nothing_and_the_right_token_gets_through(
    served: list[Served]
) -> None:
    s = Served(Policy(token=TOKEN))  # on loopback: GETs are open, changes are not
    served.append(s)
    assert s.call("/status")[0] == 200
    assert s.call("/actions", method="POST", body=b"restart api")[0] == 401
    assert s.call("/actions", token="wrong-wrong-wrong-wrong", method="POST",
                  body=b"restart api")[0] == 401
    assert s.posted == []
    assert s.call("/actions", token=TOKEN, method="POST", body=b"restart api") == (
        200, b"done\n")
    assert s.posted == [b"restart api"]
    assert s.call("/status", method="DELETE")[0] == 401  # any changing method is guarded
    assert s.call("/status", token=TOKEN, method="DELETE")[0] == 405  # a GET-only route


def test_without_a_token_configured_nothing_can_change_anything(served: list[Served]) -> None:
    s = Served(Policy())
    served.append(s)
    assert s.call("/actions", token="anything-at-all-12345", method="POST", body=b"x")[0] == 401
    assert s.posted == [] and s.refused("unconfigured") == 1.0


def test_tls_listener_with_a_self_signed_certificate(
    served: list[Served], cert: tuple[str, str]
) -> None:
    crt, key = cert
    s = Served(Policy(token=TOKEN, exposed=True), tls=server.tls_context(crt, key))
    served.append(s)
    trust = ssl.create_default_context(cafile=crt)
    assert s.call("/healthz", ctx=trust) == (200, b"ok\n")
    assert s.call("/status", token=TOKEN, ctx=trust)[0] == 200
    with pytest.raises(urllib.error.URLError):  # not trusted without the certificate
        s.call("/healthz", ctx=ssl.create_default_context())
    # Plain HTTP to the TLS port gets nowhere, and the server carries on.
    host, port = s.srv.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as c:
        c.sendall(b"GET /status HTTP/1.0\r\n\r\n")
        assert not c.recv(100).startswith(b"HTTP/1.0 200")
    assert s.call("/healthz", ctx=trust)[0] == 200


def test_from_settings_binds_beyond_loopback_with_the_door_closed(served: list[Served]) -> None:
    port = free_port()
    cfg = build({"daemon": {"listen": f"0.0.0.0:{port}", "metrics_public": False}}).daemon
    m = Metrics()
    srv = server.from_settings(cfg, None, m.render, lambda: SNAPSHOT, lambda: None,
                               lambda r: m.unauthorized.labels(r).inc())
    srv.start()
    try:
        assert srv.policy.exposed and srv.policy.token is None
        for path, want in (("/healthz", 200), ("/metrics", 401), ("/status", 401)):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    code = r.status
            except urllib.error.HTTPError as exc:
                code = exc.code
                exc.close()
            assert code == want, path
    finally:
        srv.stop()


def test_status_and_healthz_commands_send_the_token_and_speak_tls(
    served: list[Served], cert: tuple[str, str]
) -> None:
    crt, key = cert
    s = Served(Policy(token=TOKEN, exposed=True), tls=server.tls_context(crt, key))
    served.append(s)
    port = s.srv.address.rsplit(":", 1)[1]
    env = {"HEALTHD_LISTEN": f"0.0.0.0:{port}", "HEALTHD_TLS_CERT": crt,
           "HEALTHD_TLS_KEY": key, "HEALTHD_CONFIG": ""}
    runner = CliRunner()
    denied = runner.invoke(main, ["status", "--json"], env=env)
    assert denied.exit_code == 1 and "wants a token" in denied.output
    ok = runner.invoke(main, ["status", "--json"], env={**env, "HEALTHD_TOKEN": TOKEN})
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["containers"] == []
    flag = runner.invoke(main, ["status", "--json", "--token", TOKEN, "--url",
                                f"https://localhost:{port}"], env=env)
    assert flag.exit_code == 0, flag.output
    probe = runner.invoke(main, ["healthz"], env=env)
    assert probe.exit_code == 0 and probe.stdout.strip() == "ok"


def test_healthz_command_fails_when_the_loop_stalls_or_nobody_answers(
    served: list[Served]
) -> None:
    s = Served(Policy(), healthz="main loop stalled for 61 s")
    served.append(s)
    runner = CliRunner()
    stalled = runner.invoke(main, ["healthz", "--url", s.url], env={"HEALTHD_CONFIG": ""})
    assert stalled.exit_code == 1 and "main loop stalled" in stalled.output
    gone = runner.invoke(main, ["healthz", "--url", f"http://127.0.0.1:{free_port()}"],
                         env={"HEALTHD_CONFIG": ""})
    assert gone.exit_code == 1 and "does not answer" in gone.output


@pytest.mark.engine
def test_real_healthd_beyond_loopback_with_token_and_tls(
    engine: Engine, tmp_path: Path, cert: tuple[str, str]
) -> None:
    crt, key = cert
    h = Healthd(engine, tmp_path, cfg={"daemon": {"tls_cert": crt, "tls_key": key}},
                env={"HEALTHD_TOKEN": TOKEN}, listen_host="0.0.0.0", token=TOKEN)
    try:
        h.start()
        assert json.loads(h.get("/status"))["engine_connected"] is True
        h.token = "a-wrong-token-that-must-not-be-logged"
        with pytest.raises(urllib.error.HTTPError) as err:
            h.get("/status")
        assert err.value.code == 401
        err.value.close()
        h.token = None
        assert b'healthd_http_unauthorized_total{reason="wrong"} 1.0' in h.get("/metrics")
        env = {"HEALTHD_TOKEN": TOKEN, "HEALTHD_LISTEN": f"0.0.0.0:{h.port}",
               "HEALTHD_TLS_CERT": crt, "HEALTHD_TLS_KEY": key, "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-m", "healthd", "status"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "CONTAINER" in out.stdout, out.stderr
    finally:
        assert h.stop() == 0, h.log()
    log = h.log()
    assert "refused GET /status from 127.0.0.1: wrong token" in log
    assert "must-not-be-logged" not in log and TOKEN not in log
    assert "beyond loopback" not in log  # a token and TLS: no warning


def test_prefix_routes_take_one_segment_behind_the_door(served: list[Served]) -> None:
    seen: list[tuple[str, bytes]] = []

    def route(rest: str, body: bytes) -> tuple[int, str, bytes]:
        seen.append((rest, body))
        return 200, "text/plain", b"ok\n"

    srv = server.Server(f"127.0.0.1:{free_port()}", lambda: b"", lambda: SNAPSHOT,
                        lambda: None, policy=Policy(token=TOKEN),
                        post_prefixes={"/api/approve/": route, "/api/pause": route})
    srv.start()
    try:
        def call(path: str, token: str | None = TOKEN) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            req = urllib.request.Request(f"http://{srv.address}{path}", data=b"{}",
                                         headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return int(r.status)
            except urllib.error.HTTPError as exc:
                with exc:
                    return int(exc.code)

        assert call("/api/approve/ab12", token="wrong-wrong-wrong-wrong") == 401
        assert call("/api/approve/ab12") == 200 and call("/api/pause") == 200
        for path in ("/api/approve/", "/api/approve/a/b", "/api/pause/x", "/api/pausex"):
            assert call(path) == 404, path
        assert seen == [("ab12", b"{}"), ("", b"{}")]
    finally:
        srv.stop()
