"""The ``healthd`` command line: run, status, history, check-config, replay.

Owns: argument parsing, logging set-up and signal handling. Must never: decide anything.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from types import FrameType
from typing import Any

import click

from healthd import __version__
from healthd.core import config
from healthd.serve import status as status_view


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"t": record.created, "level": record.levelname.lower(),
                           "logger": record.name, "msg": record.getMessage()})


def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("docker").setLevel(logging.WARNING)


def _load(path: str | None, flags: dict[str, Any]) -> config.Config:
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
    from healthd.serve import metrics, server
    from healthd.store import ledger

    flags: dict[str, Any] = {"daemon": {k: v for k, v in
                                        (("dry_run", dry_run), ("listen", listen),
                                         ("state", state)) if v is not None}}
    cfg = _load(config_path, flags)
    _setup_logging(cfg.daemon.log_level, cfg.daemon.log_format)
    log = logging.getLogger("healthd")
    docker_host = os.environ.get("DOCKER_HOST") or cfg.daemon.docker_host
    try:
        store = ledger.Ledger(cfg.state_path)
    except ledger.LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    eng = _connect(docker_host, log, cfg.watch.stats_concurrency + 4)
    m = metrics.Metrics()
    d = daemon.Daemon(cfg, eng, store, m)
    try:
        http = server.Server(cfg.daemon.listen, m.render, d.snapshot, d.liveness)
    except (OSError, ValueError) as exc:
        click.echo(f"error: cannot listen on {cfg.daemon.listen}: {exc}", err=True)
        sys.exit(1)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        d.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    http.start()
    log.info("healthd %s watching %s; http on %s; state %s%s", __version__, docker_host,
             http.address, cfg.state_path, " (dry-run)" if cfg.daemon.dry_run else "")
    # What start-up loaded (modules, the engine client, metrics) lives as long as the
    # process: move it out of the collector's way, so its full passes only walk what the
    # sweeps allocate (on 200 containers, a full pass over everything took ~40 ms).
    gc.collect()
    gc.freeze()
    code = d.run()
    http.stop()
    d.shutdown()
    store.close()
    eng.close()
    log.info("stopped")
    sys.exit(code)


def _connect(docker_host: str, log: logging.Logger, pool_size: int) -> Any:
    """Wait for the engine at start-up, with back-off, rather than crash-looping."""
    from healthd.observe import engine, watcher

    attempt = 0
    while True:
        try:
            return engine.Engine(docker_host, pool_size=pool_size)
        except engine.EngineUnavailable as exc:
            delay = watcher.backoff_delay(attempt, max_s=30.0)
            log.warning("%s; retrying in %.1f s", exc, delay)
            time.sleep(delay)
            attempt += 1


@main.command()
@click.option("--url", default=None, help="healthd's HTTP address (default from config).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.option("--explain", "explain", default=None, metavar="NAME",
              help="Explain the decision for one container in one line.")
def status(url: str | None, as_json: bool, explain: str | None) -> None:
    """Ask the running daemon what it sees and did."""
    if url is None:
        url = "http://" + _load(None, {}).daemon.listen
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=10) as resp:
            snap = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        click.echo(f"error: cannot reach healthd at {url}: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(snap, indent=2))
    elif explain:
        line = status_view.explain(snap, explain)
        if line is None:
            click.echo(f"error: no watched container named {explain}", err=True)
            sys.exit(1)
        click.echo(line)
    else:
        click.echo(status_view.render_status(snap))


@main.command()
@click.option("--state", help="SQLite state file (default from config).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--container", default=None, help="Only this container's rows.")
@click.option("--json", "as_json", is_flag=True)
def history(state: str | None, limit: int, container: str | None, as_json: bool) -> None:
    """List recorded decisions and actions (reads the store; works while the daemon is down)."""
    from healthd.store import ledger

    path = state or _load(None, {}).state_path
    if not os.path.exists(path):
        click.echo(f"error: no state file at {path}", err=True)
        sys.exit(1)
    try:
        store = ledger.Ledger(path, readonly=True)
        rows = [r.as_dict() for r in store.history(limit, container)]
        store.close()
    except ledger.LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(status_view.render_history(rows, time.time()))


@main.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False))
def check_config(path: str) -> None:
    """Validate a config file; print every error with its key."""
    try:
        config.load(path, environ={})
    except config.ConfigError as exc:
        for p in exc.problems:
            click.echo(f"{path}: {p}", err=True)
        sys.exit(2)
    click.echo(f"{path}: ok")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--limit", required=True, type=float, help="The resource limit, in the CSV's units.")
@click.option("--interval", type=float, default=None, help="Sample interval in seconds.")
@click.option("--horizon", type=float, default=None, help="Alarm horizon in seconds.")
@click.option("--resource", default="memory", show_default=True,
              type=click.Choice(["memory", "cpu", "pids", "host_memory", "host_disk"]))
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Take [forecast] settings from this config.toml.")
def replay(path: str, limit: float, interval: float | None, horizon: float | None,
           resource: str, config_path: str | None) -> None:
    """Feed a timestamp,value CSV through the daemon's forecaster; one JSON line per row."""
    from healthd.foresight import replay as replay_mod

    settings = _load(config_path, {}).forecast
    sys.exit(replay_mod.main(path, limit, interval, horizon, resource, sys.stdout, settings))
