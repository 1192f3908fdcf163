"""docker-autoheal's (and Docker-Guardian's) environment, read as its users wrote it (pure).

Owns: which variables of that interface healthd knows, what each means in healthd's own
config (a typed value per ``section.key``, and ``[[notify]]`` tables for the webhook and
Apprise), where each value came from, and which variables healthd cannot honour.
``config.build`` lays the result under config.toml: healthd's own settings win where both
are given. Nothing here applies unless at least one ``AUTOHEAL_*`` variable is set, so a
plain healthd never reads a stray ``WEBHOOK_URL``.
Must never: read ``os.environ`` (the environment is an argument), the engine or a file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = "AUTOHEAL_"
# Variables without the prefix that are part of the interface.
OTHERS = ("DOCKER_SOCK", "WEBHOOK_URL", "WEBHOOK_JSON_KEY", "APPRISE_URL", "NOTIFY_HOSTNAME",
          "POST_RESTART_SCRIPT")
WEBHOOK_TARGET = "autoheal-webhook"
APPRISE_TARGET = "autoheal-apprise"
DEFAULT_LABEL = "autoheal"
INFO, WARNING = 20, 30  # logging's levels, as values (no logging here)
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
# Variables healthd reads but cannot honour, and why (named in the start-up warning).
_UNHONOURED = {
    "POST_RESTART_SCRIPT": "healthd runs no scripts; use a [[notify]] webhook instead",
    "AUTOHEAL_BACKOFF_RESET_AFTER": "healthd's back-off counts the restarts in "
                                    "guards.budget_window_s and resets with them",
}


@dataclass(frozen=True)
class Mapped:
    """What the autoheal variables of one environment mean to healthd.

    sections: typed values by section and key; sources: ``"guards.grace_s"`` ->
    ``"AUTOHEAL_GRACE_PERIOD=30"``; notify: raw ``[[notify]]`` tables (parsed like the
    file's); unhonoured: ``"NAME (why)"`` for the start-up warning; notes: said once at
    start; problems: bad values, each naming the variable and what is allowed.
    """

    active: bool = False
    read: tuple[str, ...] = ()  # the interface's variables set, sorted
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    notify: tuple[Mapping[str, Any], ...] = ()
    unhonoured: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def said_at_start(self) -> list[tuple[int, str]]:
        """(logging level, line) to log once at start: what was read, notes, the warning."""
        out = []
        if self.active:
            out.append((INFO, f"docker-autoheal variables read: {', '.join(self.read)} "
                        "(`healthd check-config` shows each value and its source)"))
        out += [(INFO, n) for n in self.notes]
        warning = self.warning()
        if warning:
            out.append((WARNING, warning))
        return out

    def warning(self) -> str | None:
        """The one start-up warning naming every variable healthd cannot honour."""
        if not self.unhonoured:
            return None
        return ("docker-autoheal variables healthd cannot honour (ignored): "
                + "; ".join(self.unhonoured))


def is_active(environ: Mapping[str, str]) -> bool:
    """True when any ``AUTOHEAL_*`` variable is set: the interface is in use."""
    return any(k.startswith(PREFIX) for k in environ)


def relevant(environ: Mapping[str, str]) -> dict[str, str]:
    """Only the interface's variables of ``environ`` (for check-config)."""
    return {k: v for k, v in environ.items() if k.startswith(PREFIX) or k in OTHERS}


def _seconds(raw: str) -> float | None:
    try:
        v = float(raw.strip().removesuffix("s"))
    except ValueError:
        return None
    return v if math.isfinite(v) and 0 <= v < 1e9 else None


def _count(raw: str) -> int | None:
    v = raw.strip()
    return int(v) if v.isascii() and v.isdigit() and 1 <= int(v) < 1_000_000 else None


def _whole_seconds(raw: str) -> int | None:
    v = raw.strip().removesuffix("s")
    return int(v) if v.isascii() and v.isdigit() and int(v) < 1_000_000 else None


def _bool(raw: str) -> bool | None:
    return {"true": True, "1": True, "yes": True, "false": False, "0": False,
            "no": False}.get(raw.strip().lower())


# Plain variables: name -> (section, key, parser, what is allowed).
_Parser = Callable[[str], Any]
_PLAIN: dict[str, tuple[str, str, _Parser, str]] = {
    "AUTOHEAL_START_PERIOD": ("guards", "start_period_s", _seconds, "seconds >= 0"),
    "AUTOHEAL_DEFAULT_STOP_TIMEOUT": ("guards", "stop_timeout_s", _whole_seconds,
                                      "whole seconds >= 0"),
    "AUTOHEAL_ONLY_MONITOR_RUNNING": ("watch", "only_running", _bool, "true or false"),
    "AUTOHEAL_UNHEALTHY_THRESHOLD": ("guards", "unhealthy_threshold", _count,
                                     "a whole number of health checks >= 1"),
    "AUTOHEAL_GRACE_PERIOD": ("guards", "grace_s", _seconds, "seconds >= 0"),
    "AUTOHEAL_RESTART_BUDGET": ("guards", "budget_restarts", _count,
                                "a whole number of restarts >= 1"),
    "AUTOHEAL_RESTART_WINDOW": ("guards", "budget_window_s", _seconds, "seconds >= 0"),
    "AUTOHEAL_BACKOFF_BASE": ("guards", "backoff_base_s", _seconds, "seconds >= 0"),
    "AUTOHEAL_BACKOFF_MAX": ("guards", "backoff_max_s", _seconds, "seconds >= 0"),
    "NOTIFY_HOSTNAME": ("notifications", "instance", str.strip, "a name"),
}


class _Builder:
    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {}
        self.sources: dict[str, str] = {}
        self.problems: list[str] = []
        self.unhonoured: list[str] = []
        self.notes: list[str] = []

    def set(self, section: str, key: str, value: Any, source: str) -> None:
        self.sections.setdefault(section, {})[key] = value
        self.sources[f"{section}.{key}"] = source


def _label_mode(env: Mapping[str, str], b: _Builder) -> None:
    raw = env.get("AUTOHEAL_CONTAINER_LABEL")
    label = DEFAULT_LABEL if raw is None else raw.strip()
    source = (f"AUTOHEAL_CONTAINER_LABEL={raw}" if raw is not None
              else f"AUTOHEAL_* set: autoheal's default AUTOHEAL_CONTAINER_LABEL={DEFAULT_LABEL}")
    if label == "all":
        b.set("watch", "mode", "opt-out", source)
    elif _LABEL.match(label):
        b.set("watch", "mode", "opt-in", source)
        b.set("watch", "opt_in_label", label, source)
    else:
        b.problems.append(f"AUTOHEAL_CONTAINER_LABEL: {raw!r} is neither 'all' nor a label "
                          "name (letters, digits, '.', '_', '-', '/')")


def _docker_sock(raw: str, b: _Builder) -> None:
    v = raw.strip()
    if v.startswith("/"):
        v = "unix://" + v
    if not re.match(r"^(unix|tcp|ssh|npipe)://\S+$", v):
        b.problems.append(f"DOCKER_SOCK: {raw!r} is not a socket path (/var/run/docker.sock) "
                          "or an engine URL (unix://, tcp://, ssh://)")
        return
    b.set("daemon", "docker_host", v, f"DOCKER_SOCK={raw}")


def _apprise_url(raw: str) -> str | None:
    """autoheal posts to an Apprise API server (``http://apprise:8000/notify/KEY``):
    Apprise reaches the same server as ``apprise://apprise:8000/KEY``. Any other Apprise
    URL (``ntfy://...``) is taken as it is."""
    v = raw.strip()
    m = re.match(r"^(https?)://([^/\s]+)/notify/([^/\s?]+)/?$", v)
    if m:
        scheme = "apprises" if m.group(1) == "https" else "apprise"
        return f"{scheme}://{m.group(2)}/{m.group(3)}"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$", v) and not v.startswith("http"):
        return v
    return None


def _notify(env: Mapping[str, str], b: _Builder,
            have_apprise: bool) -> tuple[Mapping[str, Any], ...]:
    out: list[Mapping[str, Any]] = []
    # autoheal posts each event as it happens: no grouping wait.
    now = {"group_wait_s": 0.0, "group_interval_s": 0.0}
    url = env.get("WEBHOOK_URL", "").strip()
    key = env.get("WEBHOOK_JSON_KEY", "text").strip()
    if url:
        if not url.startswith(("http://", "https://")):
            b.problems.append(f"WEBHOOK_URL: {url!r} must start with http:// or https://")
        elif not key:
            b.problems.append("WEBHOOK_JSON_KEY: empty; give the JSON key the text goes in "
                              "(default text; content for Discord)")
        else:
            out.append({"name": WEBHOOK_TARGET, "kind": "json_text", "url": url,
                        "json_key": key, **now})
            b.sources[f"notify[{WEBHOOK_TARGET}]"] = (
                f"WEBHOOK_URL, body {{\"{key}\": ...}}"
                + (" (WEBHOOK_JSON_KEY)" if "WEBHOOK_JSON_KEY" in env else ""))
    elif "WEBHOOK_JSON_KEY" in env:
        b.notes.append("WEBHOOK_JSON_KEY is set but WEBHOOK_URL is not: no webhook")
    raw = env.get("APPRISE_URL", "").strip()
    if raw:
        apprise = _apprise_url(raw)
        if apprise is None:
            b.problems.append(f"APPRISE_URL: {raw!r} is neither an Apprise API server's "
                              "http(s)://host:port/notify/KEY nor an Apprise URL (ntfy://...)")
        elif not have_apprise:
            b.problems.append("APPRISE_URL: needs the apprise package, which is not "
                              "installed: pip install 'healthd[apprise]'")
        else:
            out.append({"name": APPRISE_TARGET, "kind": "apprise", "url": apprise, **now})
            b.sources[f"notify[{APPRISE_TARGET}]"] = "APPRISE_URL"
    return tuple(out)


def translate(environ: Mapping[str, str], have_apprise: bool = True) -> Mapped:
    """What ``environ``'s autoheal variables mean to healthd (nothing without AUTOHEAL_*).

    have_apprise: whether the optional apprise package is importable.
    """
    env = relevant(environ)
    if not is_active(env):
        stray = sorted(k for k in env if k in ("WEBHOOK_URL", "APPRISE_URL"))
        notes = tuple(f"{k} is set but no AUTOHEAL_* variable is: docker-autoheal's "
                      "variables are read only when one is (AUTOHEAL_CONTAINER_LABEL)"
                      for k in stray)
        return Mapped(notes=notes)
    b = _Builder()
    _label_mode(env, b)
    for name, (section, key, parse, allowed) in _PLAIN.items():
        if name not in env:
            continue
        value = parse(env[name])
        if value is None or value == "":
            b.problems.append(f"{name}: {env[name]!r} is not valid; allowed: {allowed}")
        else:
            b.set(section, key, value, f"{name}={env[name]}")
    if "AUTOHEAL_INTERVAL" in env:
        if _seconds(env["AUTOHEAL_INTERVAL"]) is None:
            b.problems.append(f"AUTOHEAL_INTERVAL: {env['AUTOHEAL_INTERVAL']!r} is not valid; "
                              "allowed: seconds >= 0")
        else:
            b.notes.append("AUTOHEAL_INTERVAL accepted and not needed: healthd is "
                           "event-driven (it acts on the engine's health events, not by polling)")
    multiplier = env.get("AUTOHEAL_BACKOFF_MULTIPLIER")
    if multiplier is not None and multiplier.strip() not in ("2", "2.0"):
        b.unhonoured.append(f"AUTOHEAL_BACKOFF_MULTIPLIER={multiplier} (healthd's back-off "
                            "doubles; only 2 is honoured)")
    if "DOCKER_SOCK" in env:
        _docker_sock(env["DOCKER_SOCK"], b)
    notify = _notify(env, b, have_apprise)
    known = {*_PLAIN, "AUTOHEAL_CONTAINER_LABEL", "AUTOHEAL_INTERVAL", "DOCKER_SOCK",
             "AUTOHEAL_BACKOFF_MULTIPLIER", "WEBHOOK_URL", "WEBHOOK_JSON_KEY", "APPRISE_URL"}
    for name in sorted(env):
        if name in _UNHONOURED:
            b.unhonoured.append(f"{name} ({_UNHONOURED[name]})")
        elif name not in known:
            b.unhonoured.append(f"{name} (not a variable healthd knows)")
    return Mapped(active=True, read=tuple(sorted(env)), sections=b.sections,
                  sources=b.sources, notify=notify, unhonoured=tuple(b.unhonoured),
                  notes=tuple(b.notes), problems=tuple(b.problems))
