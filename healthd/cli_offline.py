"""The commands that need no running daemon: ``history`` (the state file's decisions,
actions, verdicts and incidents), ``check-config``, ``replay`` (a CSV through the
forecaster) and ``notify --test``.

Owns: their arguments and how their answers are printed. They read the state file
read-only (``notify --test`` uses its spool, as the daemon does).
Must never: decide, or change what the daemon keeps.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import click

from healthd import cli as base
from healthd.core import config
from healthd.serve import status as status_view


@click.command()
@click.option("--state", help="SQLite state file (default from config).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--container", default=None, help="Only this container's rows.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--incidents", is_flag=True,
              help="Incidents (the rungs taken for one problem, with their verdicts) instead.")
def history(state: str | None, limit: int, container: str | None, as_json: bool,
            incidents: bool) -> None:
    """List recorded decisions and actions (reads the store; works while the daemon is down)."""
    from healthd.store import ledger, verdicts

    cfg = base._load(None, {})
    path = state or cfg.state_path
    if not os.path.exists(path):
        click.echo(f"error: no state file at {path}", err=True)
        sys.exit(2)
    if incidents:
        sys.exit(print_incidents(path, container, limit, as_json,
                                       cfg.verify.default_s))
    try:
        store = ledger.Ledger(path, readonly=True)
        rows = [r.as_dict() for r in store.history(limit, container)]
        oldest = store.oldest()
        store.close()
        # Each action's verdict (did the fix hold?), joined on what its row holds.
        judged = verdicts.VerdictStore(path, readonly=True)
        found = judged.for_container(container)
        judged.close()
        for r in rows:
            v = found.get((r["container"], r["action"], r["at"]))
            r["verdict"] = v.as_dict() if v is not None else None
    except ledger.LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(status_view.render_history(rows, time.time(), oldest,
                                              cfg.ledger.retention_days))


@click.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
@click.option("--effective", is_flag=True,
              help="Print every effective setting and where it came from.")
def check_config(path: str | None, effective: bool) -> None:
    """Validate a config file (and docker-autoheal's AUTOHEAL_* variables, when set);
    print every error with its key. With AUTOHEAL_* set, or --effective, print the
    effective configuration with the source of each value."""
    from healthd.core import autoheal_env, provenance

    # HEALTHD_* variables are left out: this checks the file (and the autoheal interface).
    environ = autoheal_env.relevant(os.environ)
    where = path or "environment"
    try:
        data = config.read(path)
        cfg = config.build(data, environ)
    except config.ConfigError as exc:
        for p in exc.problems:
            click.echo(f"{where}: {p}", err=True)
        sys.exit(2)
    if effective or autoheal_env.is_active(environ):
        for line in provenance.report(cfg, data, environ):
            click.echo(line)
    click.echo(f"{where}: ok")


@click.command()
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

    settings = base._load(config_path, {}).forecast
    sys.exit(replay_mod.main(path, limit, interval, horizon, resource, sys.stdout, settings))


@click.command()
@click.argument("target", required=False)
@click.option("--test", "test", is_flag=True, help="Send a clearly marked test message.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.toml")
@click.option("--state", help="SQLite state file whose spool to use (default from config).")
@click.option("--wait", type=float, default=None,
              help="Seconds to wait for the answers (default: the largest timeout_s + 5).")
def notify(target: str | None, test: bool, config_path: str | None, state: str | None,
           wait: float | None) -> None:
    """Send a test notification to every [[notify]] target, or to TARGET.

    It goes through the same spool and delivery path as the daemon's (one attempt, no
    group wait). Exit 0 when every target said yes, 1 otherwise.
    """
    import uuid

    from healthd.act import notifier

    if not test:
        click.echo("error: nothing to do; did you mean `healthd notify --test`?", err=True)
        sys.exit(2)
    cfg = base._load(config_path, {"daemon": {"state": state}} if state else {})
    names = [t.name for t in cfg.notify]
    if not names:
        click.echo("error: the config has no [[notify]] targets", err=True)
        sys.exit(1)
    if target is not None and target not in names:
        click.echo(f"error: no target named {target!r}; targets: {', '.join(names)}", err=True)
        sys.exit(2)
    chosen = [target] if target else names
    # The spool's own complaints (a read-only state dir: it falls back to memory) are not
    # what this command is asked; delivery errors are printed below.
    logging.getLogger("healthd").setLevel(logging.CRITICAL)
    n = notifier.from_config(cfg, channel=f"test-{uuid.uuid4().hex}", max_attempts=1)
    n.start()
    timeout = wait if wait is not None else max(t.timeout_s for t in cfg.notify) + 5.0
    try:
        results = n.probe(chosen, timeout)
    finally:
        n.stop(1.0)
        n.spool.close()
    ok = True
    for name in chosen:
        r = results[name]
        if r is None:
            click.echo(f"{name}: no answer within {timeout:g} s")
        elif r.ok:
            click.echo(f"{name}: delivered in {r.seconds * 1000:.0f} ms")
        else:
            click.echo(f"{name}: failed: {r.error}")
        ok = ok and r is not None and r.ok
    sys.exit(0 if ok else 1)


def register(group: click.Group) -> None:
    """Add these commands to the ``healthd`` group."""
    for cmd in (history, check_config, replay, notify):
        group.add_command(cmd)


def print_incidents(path: str, container: str | None, limit: int, as_json: bool,
              quiet_s: float = 600.0) -> int:
    """``healthd history --incidents``: the newest ``limit`` incidents (of ``container``)."""
    from healthd.core import incident
    from healthd.store.verdicts import VerdictStore

    store = VerdictStore(path, readonly=True)
    found = incident.incidents((r.taken() for r in store.every()
                                if container is None or r.container == container),
                               time.time(), quiet_s)
    store.close()
    newest = found[-limit:][::-1]
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in newest], indent=2))
    elif not newest:
        click.echo("no incidents recorded")
    else:
        click.echo("\n".join(incident.line(i) for i in newest))
    return 0
