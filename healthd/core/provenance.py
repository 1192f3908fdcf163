"""Where each effective setting came from, for ``healthd check-config`` (pure).

Owns: one row per setting of a built Config with its value and its source: ``default``,
``config.toml``, a ``HEALTHD_*`` variable, or a docker-autoheal variable (and which
autoheal variable a config.toml value overrides). Must never: read the environment or a
file (both are arguments) or print.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthd.core import autoheal_env
from healthd.core.config import SECTIONS, env_overrides
from healthd.core.settings import Config

_SECRET = {("daemon", "token")}


@dataclass(frozen=True)
class Row:
    """One effective setting: ``guards.grace_s = 30.0  (AUTOHEAL_GRACE_PERIOD=30)``."""

    key: str
    value: str
    source: str

    def line(self) -> str:
        """The row as check-config prints it."""
        return f"{self.key} = {self.value}  ({self.source})"


def rows(cfg: Config, file_data: Mapping[str, Any], environ: Mapping[str, str],
         have_apprise: bool = True) -> list[Row]:
    """Every setting of ``cfg`` (sections, then ``[[notify]]`` targets) with its source.

    file_data: the parsed config.toml ({} without one); environ: what ``cfg`` was built
    from. Flags are not sources here: check-config takes none.
    """
    env = env_overrides(environ)
    mapped = autoheal_env.translate(environ, have_apprise)
    out = []
    for section in SECTIONS:
        in_file = file_data.get(section, {})
        in_file = in_file if isinstance(in_file, Mapping) else {}
        for f in dataclasses.fields(getattr(cfg, section)):
            key = f"{section}.{f.name}"
            value = getattr(getattr(cfg, section), f.name)
            shown = ("(set)" if value else '""') if (section, f.name) in _SECRET else repr(value)
            autoheal = mapped.sources.get(key)
            if f.name in env.get(section, {}):
                name = (f"HEALTHD_{f.name.upper()}" if section == "daemon"
                        and f"HEALTHD_{f.name.upper()}" in environ
                        else f"HEALTHD_{section.upper()}_{f.name.upper()}")
                source = f"environment {name}"
            elif f.name in in_file:
                source = "config.toml" + (f", wins over {autoheal}" if autoheal else "")
            elif autoheal:
                source = autoheal
            else:
                source = "default"
            out.append(Row(key, shown, source))
    for t in cfg.notify:
        key = f"notify[{t.name}]"
        out.append(Row(key, f"{t.kind.value} target",
                       mapped.sources.get(key, "config.toml")))
    return out


def report(cfg: Config, file_data: Mapping[str, Any], environ: Mapping[str, str],
           have_apprise: bool = True) -> list[str]:
    """check-config's lines: the autoheal notes and warning, then every effective setting."""
    mapped = autoheal_env.translate(environ, have_apprise)
    lines = [f"note: {n}" for n in mapped.notes]
    warning = mapped.warning()
    if warning:
        lines.append(f"warning: {warning}")
    lines.append("effective configuration (value, and where it came from):")
    lines += ["  " + r.line() for r in rows(cfg, file_data, environ, have_apprise)]
    return lines
