"""The ``healthd`` command line: run, status, healthz, demo (``cli_offline`` adds history,
check-config, replay and notify; ``cli_control`` approve, reject, pause and resume).

Owns: argument parsing, logging set-up, signal handling and the HTTP client helpers the
commands that ask a running daemon share. Must never: decide anything.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from healthd import __version__
from healthd.core import config, settings
from healthd.serve import status as status_view

if TYPE_CHECKING:
    from healthd.store.ledger import Ledger


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"t": record.created, "level": record.levelname.lower(),
                           "logger": record.name, "msg": record.getMessage()})


# The collector's first threshold: a sweep of 200 containers leaves ~1,300 container
# objects behind (the rest are freed by reference counting), so Python's 700 ran a young
# pass twice a sweep, 3 ms a sweep in all; at 10,000 one runs every ~8 sweeps and a full
# pass about hourly, for at most a few MB of cyclic garbage waiting a little longer.
GC_THRESHOLD = (10_000, 10, 10)


def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("docker").setLevel(logging.WARNING)


def _status_line(store: Ledger, watched: int, now: float) -> str:
    """systemd's STATUS= line; never raises: the main loop makes it, and a state file that
    cannot be read (not opened yet, a row healthd did not write) must not stop healing."""
    from healthd.serve import systemd
    from healthd.store import ledger

    try:
        return systemd.describe(watched, store.history(50), now)
    except ledger.LedgerError:
        return systemd.describe(watched, [], now) + "; state file unreadable"


def _load(path: str | None, flags: dict[str, Any]) -> settings.Config:
    try:
        return config.load(path or os.environ.get("HEALTHD_CONFIG"), os.environ, flags)
    except config.ConfigError as exc:
        for p in exc.problems:
            click.echo(f"config error: {p}", err=True)
        sys.exit(2)


@click.group()
@click.version_option(__version__, prog_name="healthd")
def main() -> None:
    """healthd: watches Docker containers, forecasts exhaustion and heals them, explaining why."""


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.toml")
@click.option("--dry-run", is_flag=True, default=None, help="Decide and record, never act.")
@click.option("--listen", help="HTTP address HOST:PORT for /metrics, /status, /healthz.")
@click.option("--state", help="SQLite state file.")
def run(config_path: str | None, dry_run: bool | None, listen: str | None,
        state: str | None) -> None:
    """Run the daemon (built-in defaults when no config is given)."""
    from healthd import daemon
    from healthd.serve import access, charts, metrics, server, systemd
    from healthd.store import control, ledger, verdicts

    flags: dict[str, Any] = {"daemon": {k: v for k, v in
                                        (("dry_run", dry_run), ("listen", listen),
                                         ("state", state)) if v is not None}}
    cfg = _load(config_path, flags)
    _setup_logging(cfg.daemon.log_level, cfg.daemon.log_format)
    log = logging.getLogger("healthd")
    from healthd.core import autoheal_env

    for level, line in autoheal_env.translate(os.environ).said_at_start():
        log.log(level, "%s", line)  # once: what autoheal's variables changed, what they cannot
    docker_host = os.environ.get("DOCKER_HOST") or cfg.daemon.docker_host
    try:
        token = access.read_token(cfg.daemon.token, cfg.daemon.token_file)
    except access.TokenError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    # Never refuses to run: a state file that cannot be opened or written means history
    # held in memory (logged, shown in /status) until it can; a corrupt one is set aside.
    store = ledger.Ledger(cfg.state_path, retention_s=cfg.ledger.retention_s,
                          retention_rows=cfg.ledger.retention_rows)
    beat = systemd.Heartbeat.from_env(os.environ, lambda: "starting")
    eng = _connect(docker_host, log, cfg.watch.stats_concurrency + 4, beat.waiting)
    m = metrics.Metrics()
    notices = None
    if cfg.notify:
        from healthd.act import notifier

        notices = notifier.from_config(cfg, m)
    # After the ledger: it sets up (or sets aside) the file that this keeps its tables in.
    kept = control.ControlStore(cfg.state_path)
    d = daemon.Daemon(cfg, eng, store, m, notifier=notices, control_store=kept,
                      verdict_store=verdicts.VerdictStore(cfg.state_path))
    d.cluster.peers.token = token  # Swarm peers ask each other with the same token
    beat.status = lambda: _status_line(store, len(d.memory.all()), time.time())
    d.heartbeat = beat
    try:
        http = server.from_settings(cfg.daemon, token, m.render, d.snapshot, d.liveness,
                                    lambda reason: m.unauthorized.labels(reason).inc(),
                                    {"/swarm/report": d.cluster.report},
                                    post_prefixes=d.control.routes(),
                                    query_routes=charts.routes(d, store))
    except (OSError, ValueError) as exc:
        click.echo(f"error: cannot serve on {cfg.daemon.listen}: {exc}", err=True)
        sys.exit(1)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        beat.stopping()
        d.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    http.start()
    if notices is not None:
        notices.start()  # what the spool holds from before goes out now
    log.info("healthd %s watching %s; http on %s; state %s%s", __version__, docker_host,
             http.address, cfg.state_path, " (dry-run)" if cfg.daemon.dry_run else "")
    # What start-up loaded (modules, the engine client, metrics) lives as long as the
    # process: move it out of the collector's way, so its full passes only walk what the
    # sweeps allocate (on 200 containers, a full pass over everything took ~40 ms).
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    code = d.run()
    http.stop()
    d.shutdown()
    if notices is not None:
        notices.stop()  # undelivered notices stay in the spool for the next start
        notices.spool.close()
    kept.close()
    store.close()
    eng.close()
    log.info("stopped")
    sys.exit(code)


def _connect(docker_host: str, log: logging.Logger, pool_size: int,
             waiting: Callable[[str], None]) -> Any:
    """Wait for the engine at start-up, with back-off, rather than crash-looping."""
    from healthd.observe import engine, watcher

    attempt = 0
    while True:
        try:
            return engine.Engine(docker_host, pool_size=pool_size)
        except engine.EngineUnavailable as exc:
            delay = watcher.backoff_delay(attempt, max_s=30.0)
            log.warning("%s; retrying in %.1f s", exc, delay)
            waiting(f"waiting for the Docker engine at {docker_host}")
            time.sleep(delay)
            attempt += 1


def _local_url(daemon: settings.DaemonSettings) -> str:
    """The URL this host reaches its own daemon at: the listen address, a wildcard host
    as loopback, https when TLS is configured."""
    host, _, port = daemon.listen.rpartition(":")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    return f"{'https' if daemon.tls_cert else 'http'}://{host}:{port}"


def _fetch(url: str, daemon: settings.DaemonSettings, token: str | None,
           check_hostname: bool, data: bytes | None = None) -> tuple[int, bytes]:
    """GET ``url`` (POST ``data`` as JSON when given) with the bearer token if any;
    (status, body), HTTP errors included.

    https trusts daemon.tls_cert when set (a self-signed certificate), else the system's
    authorities. Raises urllib.error.URLError / OSError when healthd cannot be reached.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if data is not None:
        headers["Content-Type"] = "application/json"
    ctx = None
    if url.startswith("https:"):
        ctx = ssl.create_default_context(cafile=daemon.tls_cert or None)
        ctx.check_hostname = check_hostname
    try:
        req = urllib.request.Request(url, data=data, headers=headers,
                                     method="GET" if data is None else "POST")
        with urllib.request.urlopen(req, timeout=15, context=ctx) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the response (and its socket) open
            return int(exc.code), bytes(exc.read())


class _Refused(Exception):
    """healthd could not be asked, or said no; the message says which and why."""


def _client_token(daemon: settings.DaemonSettings, given: str | None) -> str | None:
    from healthd.serve import access

    try:
        return given or access.read_token(daemon.token, daemon.token_file)
    except access.TokenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option("--url", default=None, help="healthd's HTTP address (default from config).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.option("--explain", "explain", default=None, metavar="NAME",
              help="Explain the decision for one container in one line.")
@click.option("--token", default=None, metavar="TOKEN",
              help="Bearer token (default: daemon.token, $HEALTHD_TOKEN or daemon.token_file;"
                   " prefer those: a flag shows in the process list).")
@click.option("--watch", is_flag=True, help="Redraw the table in place until Ctrl-C.")
@click.option("--every", default=2.0, show_default=True, type=click.FloatRange(min=0.2),
              help="Seconds between redraws with --watch.")
@click.option("--outcomes", is_flag=True,
              help="How often each action fixed each kind of problem (fix rates).")
def status(url: str | None, as_json: bool, explain: str | None, token: str | None,
           watch: bool, every: float, outcomes: bool) -> None:
    """Ask the running daemon what it sees and did."""
    daemon_cfg = _load(None, {}).daemon
    token = _client_token(daemon_cfg, token)
    target = url or _local_url(daemon_cfg)

    def get() -> dict[str, Any]:
        try:
            code, body = _fetch(target.rstrip("/") + "/status", daemon_cfg, token,
                                check_hostname=url is not None)
            if code == 401:
                raise _Refused(f"healthd at {target} wants a token: --token or $HEALTHD_TOKEN")
            if code != 200:
                raise ValueError(f"HTTP {code}")
            return dict(json.loads(body))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _Refused(f"cannot reach healthd at {target}: {exc}") from exc

    if watch:
        from healthd import cli_control

        sys.exit(cli_control.watch(lambda: status_view.render_status(get()), every,
                                   errors=(_Refused,)))
    try:
        snap = get()
    except _Refused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(snap, indent=2))
    elif outcomes:
        click.echo(status_view.render_outcomes(snap.get("outcomes") or [],
                                               _load(None, {}).ladder.learn_window_s))
    elif explain:
        line = status_view.explain(snap, explain)
        if line is None:
            click.echo(f"error: no watched container named {explain}", err=True)
            sys.exit(1)
        click.echo(line)
    else:
        click.echo(status_view.render_status(snap))


@main.command()
@click.option("--url", default=None, help="healthd's HTTP address (default from config).")
def healthz(url: str | None) -> None:
    """Exit 0 when the running daemon's /healthz is ok, else 1 (for HEALTHCHECKs)."""
    daemon_cfg = _load(None, {}).daemon
    target = url or _local_url(daemon_cfg)
    try:
        code, body = _fetch(target.rstrip("/") + "/healthz", daemon_cfg, None,
                            check_hostname=url is not None)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"healthd at {target} does not answer: {exc}", err=True)
        sys.exit(1)
    click.echo(body.decode(errors="replace").strip() or f"HTTP {code}")
    sys.exit(0 if code == 200 else 1)


@main.command()
@click.option("--port", default=0, type=click.IntRange(0, 65535),
              help="Dashboard port on 127.0.0.1 (default: a free one).")
def demo(port: int) -> None:
    """Start a small misbehaving stack on the current engine and let healthd heal it,
    with the dashboard on loopback; Ctrl-C removes everything it created."""
    from healthd import demo as demo_mod

    sys.exit(demo_mod.main(port, lambda line: click.echo(line)))


# The commands that steer the daemon (approve, reject, pause, resume) and those that need
# no daemon (history, check-config, replay, notify) live in modules of their own;
# imported last, as they use this module's helpers.
from healthd import cli_control, cli_offline  # noqa: E402

cli_control.register(main)
cli_offline.register(main)
