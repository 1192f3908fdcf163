"""Notification targets (``[[notify]]``) and their shared settings (``[notifications]``).

Owns: the vocabulary of notifications (what kinds of event there are, what kinds of
receiver), one frozen ``NotifyTarget`` per ``[[notify]]`` table, and its parser: an unknown
key or a bad value is a problem string that names the target and the key and says what is
allowed (``config.build`` collects them into its ``ConfigError``).
Must never: read files, resolve host names or import a receiver's library; whether the
optional ``apprise`` package is installed is passed in as a value.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from healthd.core.model import Health


class EventKind(str, enum.Enum):
    """What a notice is about."""

    ACTION = "action"  # healthd acted (restart, recreate, scale) and the engine said yes
    ESCALATED = "escalated"  # a fix did not hold: the ladder's next rung, or people's
    ACTION_FAILED = "action_failed"  # healthd acted and the engine said no
    BREAKER = "breaker"  # a restart budget is exhausted: one alert, then left alone
    HELD_BY_DEPENDENCY = "held_by_dependency"  # not healed while an upstream fails
    PREDICTED_EXHAUSTION = "predicted_exhaustion"  # a forecast alarm raised an alert
    ALERT = "alert"  # any other alert of the decision table (crash_loop, pressure, drift)
    RESOLVED = "resolved"  # what healthd notified about is healthy again
    STATE_FILE = "state_file"  # healthd's own history is not persisted, or was set aside
    APPROVAL = "approval"  # a decision waits for approval, or was rejected or expired
    MAINTENANCE = "maintenance"  # an operator paused or resumed a target, or a pause ran out
    TEST = "test"  # `healthd notify --test`; passes every filter


class TargetKind(str, enum.Enum):
    """How a target is spoken to."""

    WEBHOOK = "webhook"  # healthd's own JSON document (schema in notices.render)
    SLACK = "slack"  # Slack-compatible incoming webhook: {"text": ...}
    ALERTMANAGER = "alertmanager"  # Alertmanager's POST /api/v2/alerts
    APPRISE = "apprise"  # any of Apprise's ~100 services (optional extra)
    JSON_TEXT = "json_text"  # docker-autoheal's WEBHOOK_URL body: {"<json_key>": text}


EVENTS = tuple(k for k in EventKind if k is not EventKind.TEST)
GROUP_LABELS = ("kind", "severity", "container", "service", "stack", "rule")
SEVERITIES = (Health.DEGRADED, Health.CRITICAL)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Alertmanager groups, waits and repeats on its own: healthd hands alerts over at once.
_ALERTMANAGER_DEFAULTS = {"group_wait_s": 0.0, "group_interval_s": 0.0,
                          "repeat_interval_s": 0.0}


@dataclass(frozen=True)
class NotifyTarget:
    """One ``[[notify]]`` table: where to send, what, and how often at most."""

    name: str  # unique; shown in metrics (target label) and `healthd notify --test NAME`
    kind: TargetKind
    url: str = ""
    url_file: str = ""  # read at each send instead of url (a Slack URL is a secret)
    headers: tuple[tuple[str, str], ...] = ()
    token_file: str = ""  # its content is sent as "Authorization: Bearer <token>"
    events: tuple[EventKind, ...] = EVENTS
    min_severity: Health = Health.DEGRADED
    containers: tuple[str, ...] = ()  # name globs; empty: every container
    services: tuple[str, ...] = ()  # globs on "project/service" or on the service alone
    stacks: tuple[str, ...] = ()  # globs on the compose project
    rules: tuple[str, ...] = ()  # globs on the rule ("predicted_exhaustion.*")
    group_by: tuple[str, ...] = ("kind",)
    group_wait_s: float = 30.0  # a new group waits this long for more notices
    group_interval_s: float = 300.0  # then is sent at most once per this many seconds
    repeat_interval_s: float = 14400.0  # the same notice again only after this long
    timeout_s: float = 10.0  # per delivery attempt
    retry_min_s: float = 1.0  # back-off after a failed attempt: doubles from this...
    # ...up to this: also the longest a receiver back from an outage waits for its backlog.
    retry_max_s: float = 30.0
    alert_ttl_s: float = 3900.0  # alertmanager: endsAt of a firing alert, after startsAt
    json_key: str = "text"  # json_text: the key the message goes in (Discord: content)

    def wants(self, kind: EventKind) -> bool:
        """True when this target takes notices of ``kind`` (a test always)."""
        return kind is EventKind.TEST or kind in self.events


@dataclass(frozen=True)
class NotificationSettings:
    """[notifications]: what all targets share: who healthd says it is, how long to keep."""

    instance: str = ""  # empty: the host name
    status_url: str = ""  # empty: http://<daemon.listen>/status
    max_age_s: float = 86400.0  # a notice not delivered after this long is dropped
    max_queued: int = 10000  # per target; beyond it the oldest undelivered is dropped
    keep_delivered_s: float = 86400.0  # delivered rows stay in the spool this long

    def validate(self) -> list[str]:
        """Problems beyond type and sign, keyed like ``max_queued: ...``."""
        problems = []
        if self.max_queued < 1:
            problems.append(f"max_queued: must be >= 1, got {self.max_queued}")
        if self.status_url and not self.status_url.startswith(("http://", "https://")):
            problems.append(f"status_url: {self.status_url!r} must start with http:// or "
                            "https://")
        return problems


TARGET_KEYS = tuple(f.name for f in fields(NotifyTarget))
_GLOBS = ("containers", "services", "stacks", "rules")


def status_url(settings: NotificationSettings, listen: str, instance: str) -> str:
    """The /status URL receivers link to: the configured one, else built from ``listen``
    (a wildcard host is replaced by ``instance``, which a receiver can resolve)."""
    if settings.status_url:
        return settings.status_url
    host, _, port = listen.rpartition(":")
    if host.strip("[]") in ("", "0.0.0.0", "::"):
        host = instance
    return f"http://{host}:{port}/status"


def _str_list(where: str, value: Any, problems: list[str]) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: expected a list of strings, got {value!r}")
        return None
    return tuple(value)


def _choices(where: str, value: Any, allowed: tuple[str, ...],
             problems: list[str]) -> tuple[str, ...] | None:
    items = _str_list(where, value, problems)
    if items is None:
        return None
    bad = [v for v in items if v not in allowed]
    if bad:
        problems.append(f"{where}: {', '.join(map(repr, bad))} not allowed; "
                        f"allowed: {', '.join(allowed)}")
        return None
    return items


def _float(where: str, value: Any, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where}: expected float, got {type(value).__name__} {value!r}")
        return None
    if not (math.isfinite(value) and 0 <= value < 1e12):
        problems.append(f"{where}: must be >= 0 (and finite), got {value}")
        return None
    return float(value)


def _headers(where: str, value: Any, problems: list[str]) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        problems.append(f"{where}: expected a table of strings like "
                        f"{{ \"X-Scope-OrgID\" = \"ops\" }}, got {value!r}")
        return None
    return tuple(sorted(value.items()))


def _one(where: str, key: str, value: Any, problems: list[str]) -> Any:
    """The typed value of one key, or None after adding a problem."""
    at = f"{where}.{key}"
    if key in ("name", "url", "url_file", "token_file", "json_key"):
        if not isinstance(value, str):
            problems.append(f"{at}: expected str, got {type(value).__name__} {value!r}")
            return None
        return value
    if key == "kind":
        allowed = tuple(k.value for k in TargetKind)
        if value not in allowed:
            problems.append(f"{at}: {value!r} is not one of {', '.join(allowed)}")
            return None
        return TargetKind(value)
    if key == "events":
        kinds = _choices(at, value, tuple(k.value for k in EVENTS), problems)
        return None if kinds is None else tuple(EventKind(k) for k in kinds)
    if key == "min_severity":
        allowed = tuple(s.value for s in SEVERITIES)
        if value not in allowed:
            problems.append(f"{at}: {value!r} is not one of {', '.join(allowed)}")
            return None
        return Health(value)
    if key == "group_by":
        return _choices(at, value, GROUP_LABELS, problems)
    if key == "headers":
        return _headers(at, value, problems)
    if key in _GLOBS:
        return _str_list(at, value, problems)
    return _float(at, value, problems)


def _target(index: int, raw: Any, have_apprise: bool,
            seen: set[str]) -> tuple[NotifyTarget | None, list[str]]:
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        return None, [f"notify[{index}]: expected a table ([[notify]]), got {raw!r}"]
    name = raw.get("name")
    where = f"notify[{name}]" if isinstance(name, str) and name else f"notify[{index}]"
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in TARGET_KEYS:
            problems.append(f"{where}.{key}: unknown key; allowed: {', '.join(TARGET_KEYS)}")
            continue
        typed = _one(where, key, value, problems)
        if typed is not None:
            values[key] = typed
    for key in ("name", "kind"):
        if key not in raw:
            problems.append(f"{where}.{key}: required")
    if "name" in values:
        if not _NAME.match(values["name"]):
            problems.append(f"{where}.name: {values['name']!r} must be 1-63 letters, digits, "
                            "'_', '.' or '-'")
        elif values["name"] in seen:
            problems.append(f"{where}.name: {values['name']!r} names two targets")
        seen.add(values["name"])
    if not raw.get("url") and not raw.get("url_file"):
        problems.append(f"{where}.url: required (or url_file)")
    elif raw.get("url") and raw.get("url_file"):
        problems.append(f"{where}.url/url_file: give one of them, not both")
    kind = values.get("kind")
    url = values.get("url", "")
    if kind is TargetKind.APPRISE:
        if not have_apprise:
            problems.append(f"{where}.kind: 'apprise' needs the apprise package, which is not "
                            "installed: pip install 'healthd[apprise]'")
        if url and not _SCHEME.match(url):
            problems.append(f"{where}.url: {url!r} is not an Apprise URL "
                            "(like ntfy://host/topic, tgram://token/chat, json://host/path)")
    elif kind is not None and url and not url.startswith(("http://", "https://")):
        problems.append(f"{where}.url: {url!r} must start with http:// or https://")
    if problems or kind is None:
        return None, problems
    if kind is TargetKind.ALERTMANAGER:
        values = {**_ALERTMANAGER_DEFAULTS, **values}
    target = NotifyTarget(**values)
    if target.retry_min_s > target.retry_max_s:
        problems.append(f"{where}.retry_min_s/retry_max_s: need retry_min_s <= retry_max_s, "
                        f"got {target.retry_min_s} and {target.retry_max_s}")
    if target.timeout_s <= 0 or target.retry_min_s <= 0:
        problems.append(f"{where}.timeout_s/retry_min_s: must be > 0")
    return (None if problems else target), problems


def parse_targets(raw: Any, have_apprise: bool) -> tuple[tuple[NotifyTarget, ...], list[str]]:
    """``[[notify]]`` (a list of tables) into targets, with every problem found."""
    if not isinstance(raw, list):
        return (), [f"notify: expected [[notify]] tables (an array of tables), got {raw!r}"]
    targets: list[NotifyTarget] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        target, errs = _target(i, item, have_apprise, seen)
        problems += errs
        if target is not None:
            targets.append(target)
    return tuple(targets), problems
