"""The commands that steer a running daemon: approve, reject, pause, resume; and the
redraw loop of ``healthd status --watch``.

Owns: their arguments and how their answers are printed. They speak to the daemon over
HTTP with the bearer token, as ``healthd status`` does (``cli._fetch``/``_client_token``).
Must never: decide, or touch the state file: the daemon owns what they change.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
import urllib.error
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

import click

from healthd.core import control

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen (ANSI; no curses needed)
TOKEN_HELP = ("Bearer token (default: daemon.token, $HEALTHD_TOKEN or daemon.token_file;"
              " prefer those: a flag shows in the process list).")


def watch(render: Callable[[], str], every: float, errors: tuple[type[Exception], ...] = (),
          out: IO[str] | None = None, sleep: Callable[[float], None] = time.sleep,
          rounds: int | None = None) -> int:
    """Redraw ``render()`` in place every ``every`` seconds until Ctrl-C; returns 0.

    errors: exceptions of ``render`` shown in place of the table (healthd restarting, say)
    rather than ending the watch. rounds: stop after this many redraws (tests)."""
    stream = out or sys.stdout
    n = 0
    try:
        while rounds is None or n < rounds:
            try:
                text = render()
            except errors as exc:
                text = f"error: {exc}"
            stamp = datetime.now().strftime("%H:%M:%S")
            stream.write(f"{CLEAR}healthd status, every {every:g} s ({stamp}; Ctrl-C quits)\n"
                         f"{text}\n")
            stream.flush()
            n += 1
            if rounds is None or n < rounds:
                sleep(every)
    except KeyboardInterrupt:
        stream.write("\n")
    return 0


def _who(given: str | None) -> str:
    """--who, else the OS user running the command."""
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


def _post(url: str | None, token: str | None, path: str, body: dict[str, Any]
          ) -> dict[str, Any]:
    """POST ``body`` to the daemon; the answer's JSON, or exit 1 saying why not."""
    from healthd import cli as base

    daemon_cfg = base._load(None, {}).daemon
    token = base._client_token(daemon_cfg, token)
    target = url or base._local_url(daemon_cfg)
    try:
        code, raw = base._fetch(target.rstrip("/") + path, daemon_cfg, token,
                                check_hostname=url is not None,
                                data=json.dumps(body).encode())
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"error: cannot reach healthd at {target}: {exc}", err=True)
        sys.exit(1)
    if code == 401:
        click.echo(f"error: healthd at {target} refused: it wants its token (daemon.token"
                   " or daemon.token_file, $HEALTHD_TOKEN or --token)", err=True)
        sys.exit(1)
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        click.echo(f"error: healthd at {target} answered HTTP {code}: "
                   f"{raw[:200].decode(errors='replace')}", err=True)
        sys.exit(1)
    if code != 200 or not answer.get("ok"):
        click.echo(f"error: {answer.get('error') or f'HTTP {code}'}", err=True)
        sys.exit(1)
    return answer


_URL = click.option("--url", default=None, help="healthd's HTTP address (default from config).")
_TOKEN = click.option("--token", default=None, metavar="TOKEN", help=TOKEN_HELP)
_WHO = click.option("--who", default=None, help="Who is asking (default: your OS user).")


@click.command()
@click.argument("pending_id", metavar="ID")
@_URL
@_TOKEN
@_WHO
def approve(pending_id: str, url: str | None, token: str | None, who: str | None) -> None:
    """Approve a pending decision: healthd checks its guards again and acts.

    Exit 0 when it acted, 3 when a guard holds it now (it stays pending), 1 on errors.
    """
    answer = _post(url, token, f"/api/approve/{pending_id}", {"who": _who(who)})
    outcome = str(answer.get("outcome"))
    click.echo(f"{answer.get('id')}: {outcome}")
    sys.exit(0 if outcome == "approved" else 3)


@click.command()
@click.argument("pending_id", metavar="ID")
@_URL
@_TOKEN
@_WHO
def reject(pending_id: str, url: str | None, token: str | None, who: str | None) -> None:
    """Reject a pending decision: healthd leaves it alone until it would expire."""
    answer = _post(url, token, f"/api/reject/{pending_id}", {"who": _who(who)})
    click.echo(f"{answer.get('id')}: {answer.get('outcome')}")


@click.command()
@click.argument("target", default=control.HOST)
@click.option("--for", "for_", default=None, metavar="DURATION",
              help="End the pause on its own after this long: 90s, 30m, 2h, 1d.")
@click.option("--reason", default="", help="Why (shown in status, history, notifications).")
@_URL
@_TOKEN
@_WHO
def pause(target: str, for_: str | None, reason: str, url: str | None, token: str | None,
          who: str | None) -> None:
    """Stop healing TARGET: the host (default), a stack, a service or a container."""
    try:
        for_s = control.parse_duration(for_) if for_ is not None else None
    except ValueError as exc:
        click.echo(f"error: --for: {exc}", err=True)
        sys.exit(2)
    answer = _post(url, token, "/api/pause",
                   {"target": target, "for_s": for_s, "reason": reason, "who": _who(who)})
    m = answer.get("maintenance") or {}
    until = m.get("until")
    click.echo(f"{target} paused by {m.get('who')}"
               + (f" until {control.clock_text(float(until))}" if until else " until resumed"))


@click.command()
@click.argument("target", default=control.HOST)
@_URL
@_TOKEN
@_WHO
def resume(target: str, url: str | None, token: str | None, who: str | None) -> None:
    """Heal TARGET again (default: the host)."""
    _post(url, token, "/api/resume", {"target": target, "who": _who(who)})
    click.echo(f"{target} resumed")


def register(group: click.Group) -> None:
    """Add these commands to the ``healthd`` group."""
    for cmd in (approve, reject, pause, resume):
        group.add_command(cmd)
