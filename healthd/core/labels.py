"""Every container label healthd reads, and its parser.

Owns: label keys and their meaning. Must never: touch the engine. A bad label value is
reported back as a message (the caller logs it and skips the label), never raised.
"""

from __future__ import annotations

from dataclasses import dataclass

ENABLE = "healthd.enable"
STOP_TIMEOUT = "healthd.stop.timeout"
GRACE = "healthd.grace"
# docker-autoheal's labels, honoured so its users can switch without relabelling.
AUTOHEAL = "autoheal"
AUTOHEAL_STOP_TIMEOUT = "autoheal.stop.timeout"

# Stacks: what a container depends on, whose restarts it follows, how far it may scale.
DEPENDS_ON = "healthd.depends_on"  # svc1,svc2 (names within its compose project)
RESTART_WITH = "healthd.restart_with"  # svc: restart me after svc restarted and is healthy
REPLICAS_MIN = "healthd.replicas.min"
REPLICAS_MAX = "healthd.replicas.max"

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
COMPOSE_CONFIG_HASH = "com.docker.compose.config-hash"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
COMPOSE_DEPENDS_ON = "com.docker.compose.depends_on"  # Compose v2: db:service_healthy:false
COMPOSE_CONFIG_FILES = "com.docker.compose.project.config_files"
COMPOSE_WORKING_DIR = "com.docker.compose.project.working_dir"
# Set by healthd on the replicas it creates (the operator's own never carry it): only
# these may be removed again when a service scales down.
CREATED = "healthd.created"
CREATED_AT = "healthd.created.at"  # epoch seconds, as a decimal string
SWARM_SERVICE = "com.docker.swarm.service.name"
SWARM_TASK = "com.docker.swarm.task.id"

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class LabelPolicy:
    """What a container's labels ask of healthd. ``problems`` lists ignored bad values."""

    enable: bool | None = None  # None: no opinion either way
    stop_timeout_s: int | None = None
    grace_s: float | None = None
    service: str | None = None  # compose or swarm service, for one-at-a-time rules
    swarm_task: bool = False
    problems: tuple[str, ...] = ()


def _bool(key: str, raw: str, problems: list[str]) -> bool | None:
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    problems.append(f"label {key}={raw!r} ignored: expected true or false")
    return None


def _seconds(key: str, raw: str, problems: list[str]) -> float | None:
    try:
        v = float(raw.strip().rstrip("s"))
    except ValueError:
        v = -1.0
    if not 0 <= v < 1e9:  # also rejects nan and inf
        problems.append(f"label {key}={raw!r} ignored: expected a number of seconds >= 0")
        return None
    return v


def parse(labels: dict[str, str] | tuple[tuple[str, str], ...]) -> LabelPolicy:
    """Read healthd's (and docker-autoheal's) labels; healthd's own win on conflict."""
    d = dict(labels)
    problems: list[str] = []
    enable: bool | None = None
    if AUTOHEAL in d:
        enable = _bool(AUTOHEAL, d[AUTOHEAL], problems)
    if ENABLE in d:
        own = _bool(ENABLE, d[ENABLE], problems)
        enable = own if own is not None else enable
    stop: float | None = None
    for key in (AUTOHEAL_STOP_TIMEOUT, STOP_TIMEOUT):
        if key in d:
            v = _seconds(key, d[key], problems)
            stop = v if v is not None else stop
    grace = _seconds(GRACE, d[GRACE], problems) if GRACE in d else None
    service = d.get(SWARM_SERVICE)
    if service is None and COMPOSE_SERVICE in d:
        service = f"{d.get(COMPOSE_PROJECT, '')}/{d[COMPOSE_SERVICE]}"
    return LabelPolicy(
        enable=enable,
        stop_timeout_s=int(stop) if stop is not None else None,
        grace_s=grace,
        service=service,
        swarm_task=SWARM_TASK in d,
        problems=tuple(problems),
    )
