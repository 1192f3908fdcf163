"""Typed configuration: built-in defaults < docker-autoheal's AUTOHEAL_* environment (only
when one is set; ``core.autoheal_env``) < config.toml < HEALTHD_* environment < CLI flags.

Owns: reading config.toml, the HEALTHD_* environment and flags, coercing and checking every
value (allowed choices, ranges, the decision table, the dependencies) and building the one
frozen ``Config``; an unknown key or a bad value is a ``ConfigError`` listing every problem
with its key. The settings themselves (names, types, defaults) are ``core.settings``'.
Must never: read the Docker socket or act on anything.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

from healthd.core import autoheal_env
from healthd.core.control import parse_approval
from healthd.core.model import Action
from healthd.core.notifyconfig import NotificationSettings, parse_targets
from healthd.core.outcomeconfig import parse_ladder, parse_verify
from healthd.core.settings import (
    DEFAULT_TABLE,
    SEVERITIES,
    TABLE_ROWS,
    ClassifySettings,
    Config,
    DaemonSettings,
    DependencySpec,
    GuardSettings,
    LedgerSettings,
    ScalingSettings,
    SignalSettings,
    StackSettings,
    ThresholdSettings,
    WatchSettings,
)
from healthd.core.swarmconfig import SwarmSettings
from healthd.foresight.settings import ForecastSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]


class ConfigError(ValueError):
    """One or more settings are wrong; ``problems`` names each key and what is allowed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


SECTIONS: dict[str, type[Any]] = {
    "daemon": DaemonSettings,
    "watch": WatchSettings,
    "thresholds": ThresholdSettings,
    "classify": ClassifySettings,
    "guards": GuardSettings,
    "forecast": ForecastSettings,
    "stacks": StackSettings,
    "scaling": ScalingSettings,
    "ledger": LedgerSettings,
    "notifications": NotificationSettings,
    "signals": SignalSettings,
    "swarm": SwarmSettings,
}
CHOICES = {
    ("daemon", "log_level"): ("debug", "info", "warning", "error"),
    ("daemon", "log_format"): ("text", "json"),
    ("watch", "mode"): ("opt-out", "opt-in"),
    ("watch", "stats_path"): ("auto", "cgroup", "api"),
    ("guards", "redeploy_hold"): ("project", "all", "off"),
}


def _coerce(key: str, value: Any, want: Any, from_env: bool) -> tuple[Any, str | None]:
    """Convert ``value`` to the field type ``want``; return (value, problem)."""
    name = want if isinstance(want, str) else getattr(want, "__name__", str(want))
    if from_env and isinstance(value, str):
        raw = value.strip()
        try:
            if name == "bool":
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                return raw.lower() in ("true", "1", "yes"), None
            if name == "int":
                return int(raw), None
            if name == "float":
                return float(raw), None
        except ValueError:
            return None, f"{key}: {raw!r} is not a valid {name}"
        return raw, None
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        # TOML integers are 64-bit, but tomllib returns bigger ones, which float() refuses.
        return None, f"{key}: integer out of range (TOML integers are 64-bit)"
    if name == "bool":
        ok = isinstance(value, bool)
    elif name == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif name == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        return None, f"{key}: expected {name}, got {type(value).__name__} {value!r}"
    return value, None


def _check_ranges(section: str, obj: Any) -> list[str]:
    problems = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        allowed = CHOICES.get((section, f.name))
        if allowed and v not in allowed:
            problems.append(f"{section}.{f.name}: {v!r} is not one of {', '.join(allowed)}")
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and not 0 <= v < 1e12:
            problems.append(f"{section}.{f.name}: must be >= 0 (and finite), got {v}")
    return problems


def _coerce_items(
    section: str, raw: Mapping[str, Any], from_env: bool
) -> tuple[dict[str, Any], list[str]]:
    types = {f.name: f.type for f in dataclasses.fields(SECTIONS[section])}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for k, v in raw.items():
        key = f"{section}.{k}"
        if k not in types:
            problems.append(f"{key}: unknown key; allowed: {', '.join(sorted(types))}")
            continue
        value, problem = _coerce(key, v, types[k], from_env)
        if problem:
            problems.append(problem)
        else:
            values[k] = value
    return values, problems


def _validate(section: str, obj: Any) -> list[str]:
    problems = _check_ranges(section, obj)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        problems += [p if p.startswith(section + ".") else f"{section}.{p}" for p in validate()]
    if isinstance(obj, ThresholdSettings):
        for res in ("memory", "cpu", "pids"):
            lo, hi = getattr(obj, f"{res}_degraded"), getattr(obj, f"{res}_critical")
            if not 0 < lo <= hi <= 1:
                problems.append(
                    f"thresholds.{res}_degraded/{res}_critical: need 0 < degraded <= critical"
                    f" <= 1, got {lo} and {hi}"
                )
    return problems


def _build_table(raw: Any) -> tuple[tuple[tuple[str, str, Action], ...], list[str]]:
    problems: list[str] = []
    table = {row: dict(sevs) for row, sevs in DEFAULT_TABLE.items()}
    if not isinstance(raw, Mapping):
        return (), ["decisions: expected a table of rows"]
    for row, sevs in raw.items():
        if row not in table:
            problems.append(f"decisions.{row}: unknown row; allowed: {', '.join(TABLE_ROWS)}")
            continue
        if not isinstance(sevs, Mapping):
            problems.append(f"decisions.{row}: expected a table like {{ critical = \"restart\" }}")
            continue
        for sev, act in sevs.items():
            key = f"decisions.{row}.{sev}"
            if sev not in SEVERITIES:
                problems.append(f"{key}: unknown severity; allowed: {', '.join(SEVERITIES)}")
            elif act not in [a.value for a in Action]:
                allowed = ", ".join(a.value for a in Action)
                problems.append(f"{key}: {act!r} is not an action; allowed: {allowed}")
            else:
                table[row][sev] = act
    cells = tuple((r, s, Action(a)) for r, sevs in table.items() for s, a in sevs.items())
    return cells, problems


_DEP_KEYS = ("depends_on", "restart_with", "replicas_min", "replicas_max")


def _build_dependencies(raw: Any) -> tuple[tuple[DependencySpec, ...], list[str]]:
    """``[dependencies."shop/api"]`` tables into DependencySpecs, with every problem."""
    if not isinstance(raw, Mapping):
        return (), ["dependencies: expected a table of services"]
    specs, problems = [], []
    for service, body in raw.items():
        key = f"dependencies.{service}"
        if not isinstance(body, Mapping):
            problems.append(f"{key}: expected a table like {{ depends_on = [\"db\"] }}")
            continue
        values: dict[str, Any] = {}
        for k, v in body.items():
            if k not in _DEP_KEYS:
                problems.append(f"{key}.{k}: unknown key; allowed: {', '.join(_DEP_KEYS)}")
            elif k in ("depends_on", "restart_with"):
                if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
                    problems.append(f"{key}.{k}: expected a list of service names, got {v!r}")
                else:
                    values[k] = tuple(v)
            elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"{key}.{k}: expected a whole number >= 1, got {v!r}")
            else:
                values[k] = v
        lo, hi = values.get("replicas_min", 1), values.get("replicas_max")
        if hi is not None and hi < lo:
            problems.append(f"{key}: replicas_max {hi} is below replicas_min {lo}")
        specs.append(DependencySpec(service, **values))
    return tuple(specs), problems


def env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """HEALTHD_<SECTION>_<KEY> (or HEALTHD_<KEY> for [daemon]) as raw strings by section."""
    out: dict[str, dict[str, str]] = {}
    daemon_keys = {f.name for f in dataclasses.fields(DaemonSettings)}
    for name, value in environ.items():
        if not name.startswith("HEALTHD_") or name == "HEALTHD_CONFIG":
            continue
        rest = name[len("HEALTHD_"):].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is not None:
            out.setdefault(section, {})[rest[len(section) + 1:]] = value
        elif rest in daemon_keys:
            out.setdefault("daemon", {})[rest] = value
        else:
            out.setdefault("?", {})[name] = value
    return out


def build(
    file_data: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    have_apprise: bool | None = None,
) -> Config:
    """Merge defaults, file, environment and flags into a Config, or raise ConfigError.

    have_apprise: whether the optional apprise package is importable (None: look).
    """
    problems: list[str] = []
    data = dict(file_data or {})
    env = env_overrides(environ or {})
    for name in env.pop("?", {}):
        problems.append(f"{name}: unknown HEALTHD_* variable")
    if have_apprise is None:
        have_apprise = importlib.util.find_spec("apprise") is not None
    # docker-autoheal's variables lie under everything healthd's own (the file wins).
    autoheal = autoheal_env.translate(environ or {}, have_apprise)
    problems += autoheal.problems
    sections: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        raw = data.pop(section, {})
        if not isinstance(raw, Mapping):
            problems.append(f"{section}: expected a table, got {type(raw).__name__}")
            raw = {}
        values, errs = _coerce_items(section, raw, from_env=False)
        env_values, env_errs = _coerce_items(section, env.get(section, {}), from_env=True)
        flag_values, flag_errs = _coerce_items(
            section, (flags or {}).get(section, {}), from_env=False
        )
        problems += errs + env_errs + flag_errs
        obj = cls(**{**autoheal.sections.get(section, {}), **values, **env_values,
                     **flag_values})
        problems += _validate(section, obj)
        sections[section] = obj
    table, errs = _build_table(data.pop("decisions", {}))
    problems += errs
    deps, errs = _build_dependencies(data.pop("dependencies", {}))
    problems += errs
    raw_targets = data.pop("notify", [])
    if autoheal.notify and isinstance(raw_targets, list):
        named = {t.get("name") for t in raw_targets if isinstance(t, Mapping)}
        raw_targets = [*raw_targets, *(t for t in autoheal.notify if t["name"] not in named)]
    targets, errs = parse_targets(raw_targets, have_apprise)
    problems += errs
    approval, errs = parse_approval(data.pop("approval", {}))
    problems += errs
    verify, errs = parse_verify(data.pop("verify", {}))
    problems += errs
    ladder, errs = parse_ladder(data.pop("ladder", {}))
    problems += errs
    for extra in data:
        allowed = ", ".join([*SECTIONS, "decisions", "dependencies", "notify", "approval",
                             "verify", "ladder"])
        problems.append(f"{extra}: unknown section; allowed: {allowed}")
    if problems:
        raise ConfigError(problems)
    return Config(decisions=table, dependencies=deps, notify=targets, approval=approval,
                  verify=verify, ladder=ladder,
                  **sections)


def load(
    path: str | None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Read ``path`` (TOML) if given and build the Config."""
    return build(read(path), environ if environ is not None else os.environ, flags)


def read(path: str | None) -> dict[str, Any]:
    """The parsed TOML of ``path`` ({} when None), or ConfigError."""
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
        except UnicodeDecodeError as exc:
            # tomllib decodes the whole file first and lets this escape (TOML is UTF-8).
            raise ConfigError(
                [f"{path}: not valid TOML: not UTF-8 text (byte {exc.start}: {exc.reason})"]
            ) from exc
        except ValueError as exc:
            # TOMLDecodeError, and int()'s refusal of integers over 4300 digits, which
            # tomllib lets escape as a plain ValueError.
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
        except RecursionError as exc:
            # tomllib recurses once per nested array or inline table, without a limit.
            raise ConfigError(
                [f"{path}: not valid TOML: arrays or inline tables nested too deeply"]
            ) from exc
    return data
