"""Every container label healthd reads, and its parser.

Owns: label keys and their meaning. Must never: touch the engine. A bad label value is
reported back as a message (the caller logs it and skips the label), never raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENABLE = "healthd.enable"
STOP_TIMEOUT = "healthd.stop.timeout"
GRACE = "healthd.grace"
VERIFY_WINDOW = "healthd.verify.window"  # seconds a fix must hold (core.verdict)
APPROVAL = "healthd.approval"  # auto | approve | off (healthd.core.control)
APPROVAL_MODES = ("auto", "approve", "off")
# docker-autoheal's labels, honoured so its users can switch without relabelling.
AUTOHEAL = "autoheal"
AUTOHEAL_STOP_TIMEOUT = "autoheal.stop.timeout"
# Per-container overrides of the decision table's restart (Docker-Guardian's labels too):
# restart, stop (quarantine: stop it, leave it stopped), notify (touch nothing) or none.
ACTION = "healthd.action"
AUTOHEAL_ACTION = "autoheal.action"
NOTIFY = "healthd.notify"  # false: no notifications about this container
AUTOHEAL_NOTIFY = "autoheal.notify"
# Act on an unhealthy container only after this many consecutive failed health checks.
UNHEALTHY_THRESHOLD = "healthd.unhealthy.threshold"
# offen/docker-volume-backup stops containers carrying this label while it backs up.
VOLUME_BACKUP_STOP = "docker-volume-backup.stop-during-backup"
ACTIONS = ("restart", "stop", "notify", "none")

# Stacks: what a container depends on, whose restarts it follows, how far it may scale.
DEPENDS_ON = "healthd.depends_on"  # svc1,svc2 (names within its compose project)
RESTART_WITH = "healthd.restart_with"  # svc: restart me after svc restarted and is healthy
REPLICAS_MIN = "healthd.replicas.min"
REPLICAS_MAX = "healthd.replicas.max"

# Application signals: probes, the application's own metrics, its logs.
PROBE_HTTP = "healthd.probe.http"  # http://127.0.0.1:8080/health
PROBE_TCP = "healthd.probe.tcp"  # 127.0.0.1:5432
PROBE_INTERVAL = "healthd.probe.interval"  # seconds
PROBE_TIMEOUT = "healthd.probe.timeout"  # seconds
PROBE_EXPECT_STATUS = "healthd.probe.expect_status"  # 200,204 or 2xx (default: 2xx and 3xx)
PROBE_EXPECT_BODY = "healthd.probe.expect_body"  # a regular expression the body must match
METRICS_URL = "healthd.metrics.url"  # a Prometheus text endpoint
METRICS_REQUESTS = "healthd.metrics.requests"  # counter of all requests (name{label="v"})
METRICS_ERRORS = "healthd.metrics.errors"  # counter of failed ones (name{code=~"5.."})
METRICS_LATENCY = "healthd.metrics.latency"  # latency histogram's name (seconds)
LOGS_ERROR_PATTERN = "healthd.logs.error_pattern"  # a regular expression per log line

DEFAULT_REQUESTS = "http_requests_total"
DEFAULT_ERRORS = 'http_requests_total{code=~"5.."}'
DEFAULT_LATENCY = "http_request_duration_seconds"

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
SWARM_NODE = "com.docker.swarm.node.id"  # on a task's container: the node it runs on
# healthd's own memory, written on a Swarm service (or node) in the same update as the action,
# so whichever healthd leads next honours the last one's cooldowns (healthd.core.swarm).
SWARM_SCALED_AT = "healthd.swarm.scaled_at"  # epoch seconds of the last scale
SWARM_SCALED_FROM = "healthd.swarm.scaled_from"  # replicas before it
SWARM_SCALED_TO = "healthd.swarm.scaled_to"  # replicas after it
SWARM_SCALED_BY = "healthd.swarm.scaled_by"  # the node (hostname) whose healthd scaled
SWARM_BASE = "healthd.swarm.base"  # the operator's own replica count: scaling down stops there
SWARM_DRAINED_AT = "healthd.swarm.drained_at"  # on a node healthd drained: when
SWARM_DRAINED_BY = "healthd.swarm.drained_by"  # ... and whose healthd did

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
    action: str | None = None  # one of ACTIONS; None: the decision table's own
    action_label: str = ""  # the label that set ``action`` (for the evidence)
    notify: bool | None = None  # False: never notify about this container
    unhealthy_threshold: int | None = None
    volume_backup: bool = False  # stopped by docker-volume-backup during its backups
    verify_window_s: float | None = None  # None: [verify]'s window for the action kind
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
    if APPROVAL in d and d[APPROVAL].strip().lower() not in APPROVAL_MODES:
        problems.append(f"label {APPROVAL}={d[APPROVAL]!r} ignored: expected "
                        f"{', '.join(APPROVAL_MODES)}")
    action: str | None = None
    action_label = ""
    for key in (AUTOHEAL_ACTION, ACTION):
        if key in d:
            said = d[key].strip().lower()
            if said in ACTIONS:
                action, action_label = said, key
            else:
                problems.append(f"label {key}={d[key]!r} ignored: expected one of "
                                f"{', '.join(ACTIONS)}")
    notify: bool | None = None
    for key in (AUTOHEAL_NOTIFY, NOTIFY):
        if key in d:
            v2 = _bool(key, d[key], problems)
            notify = v2 if v2 is not None else notify
    threshold = None
    if UNHEALTHY_THRESHOLD in d:
        raw = d[UNHEALTHY_THRESHOLD].strip()
        if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1000:
            threshold = int(raw)
        else:
            problems.append(f"label {UNHEALTHY_THRESHOLD}={d[UNHEALTHY_THRESHOLD]!r} ignored: "
                            "expected a whole number of health checks from 1 to 1000")
    verify = _seconds(VERIFY_WINDOW, d[VERIFY_WINDOW], problems) if VERIFY_WINDOW in d else None
    if verify == 0:
        problems.append(f"label {VERIFY_WINDOW}={d[VERIFY_WINDOW]!r} ignored: expected a "
                        "number of seconds > 0")
        verify = None
    service = d.get(SWARM_SERVICE)
    if service is None and COMPOSE_SERVICE in d:
        service = f"{d.get(COMPOSE_PROJECT, '')}/{d[COMPOSE_SERVICE]}"
    return LabelPolicy(
        enable=enable,
        stop_timeout_s=int(stop) if stop is not None else None,
        grace_s=grace,
        service=service,
        swarm_task=SWARM_TASK in d,
        action=action,
        action_label=action_label,
        notify=notify,
        unhealthy_threshold=threshold,
        volume_backup=VOLUME_BACKUP_STOP in d,
        verify_window_s=verify,
        problems=tuple(problems),
    )


@dataclass(frozen=True)
class Selector:
    """A metric name with label matchers: ``http_requests_total{code=~"5..",job="api"}``.

    matchers: (label, op, value) with op "=", "!=", "=~" or "!~" (regexes fully anchored,
    as in PromQL).
    """

    name: str
    matchers: tuple[tuple[str, str, str], ...] = ()

    def matches(self, name: str, sample_labels: dict[str, str]) -> bool:
        """True when a sample ``name{sample_labels}`` is selected."""
        if name != self.name:
            return False
        for label, op, value in self.matchers:
            got = sample_labels.get(label, "")
            if (op == "=" and got != value) or (op == "!=" and got == value):
                return False
            if op in ("=~", "!~") and (re.fullmatch(value, got) is None) == (op == "=~"):
                return False
        return True


_SELECTOR = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def selector(raw: str) -> Selector | None:
    """Parse a selector; None when it is not one (or a regex in it does not compile)."""
    m = _SELECTOR.fullmatch(raw)
    if m is None:
        return None
    matchers, body = [], (m.group(2) or "").strip()
    while body:
        mm = _MATCHER.match(body)
        if mm is None:
            return None
        label, op, value = mm.group(1), mm.group(2), mm.group(3).replace('\\"', '"')
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error:
                return None
        matchers.append((label, op, value))
        body = body[mm.end():].strip()
    return Selector(m.group(1), tuple(matchers))


@dataclass(frozen=True)
class SignalSpec:
    """What a container's labels ask healthd to watch of the application itself.

    interval_s/timeout_s: None means the [signals] defaults. expect_status: allowed codes,
    empty for any 2xx or 3xx. ``problems`` lists ignored bad values.
    """

    probe_http: str | None = None
    probe_tcp: tuple[str, int] | None = None
    interval_s: float | None = None
    timeout_s: float | None = None
    expect_status: tuple[int, ...] = ()
    expect_body: str | None = None
    metrics_url: str | None = None
    requests: Selector = Selector(DEFAULT_REQUESTS)
    errors: Selector = Selector("http_requests_total", (("code", "=~", "5.."),))
    latency: str = DEFAULT_LATENCY
    error_pattern: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        """True when anything is to be watched."""
        return bool(self.probe_http or self.probe_tcp or self.metrics_url or self.error_pattern)


def _status_codes(raw: str, problems: list[str]) -> tuple[int, ...]:
    codes: list[int] = []
    for part in raw.replace(" ", "").split(","):
        if len(part) == 3 and part[0] in "12345" and part[1:].lower() == "xx":
            base = int(part[0]) * 100
            codes += range(base, base + 100)
        elif part.isascii() and part.isdigit() and 100 <= int(part) <= 599:
            codes.append(int(part))
        else:
            problems.append(f"label {PROBE_EXPECT_STATUS}={raw!r} ignored: expected codes "
                            "like 200,204 or 2xx")
            return ()
    return tuple(codes)


def _regex(key: str, raw: str, problems: list[str]) -> str | None:
    try:
        re.compile(raw)
    except re.error as exc:
        problems.append(f"label {key}={raw!r} ignored: not a regular expression ({exc})")
        return None
    return raw


def _hostport(raw: str, problems: list[str]) -> tuple[str, int] | None:
    host, _, port = raw.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        problems.append(f"label {PROBE_TCP}={raw!r} ignored: expected host:port")
        return None
    return host, int(port)


def _url(key: str, raw: str, problems: list[str]) -> str | None:
    if not re.match(r"https?://[^/\s]+", raw.strip()):
        problems.append(f"label {key}={raw!r} ignored: expected an http:// or https:// URL")
        return None
    return raw.strip()


def signal_spec(labels: dict[str, str] | tuple[tuple[str, str], ...]) -> SignalSpec:
    """Read the probe, metrics and logs labels; bad values are skipped with a problem."""
    d = dict(labels)
    problems: list[str] = []
    values: dict[str, object] = {}
    if PROBE_HTTP in d:
        values["probe_http"] = _url(PROBE_HTTP, d[PROBE_HTTP], problems)
    if PROBE_TCP in d:
        values["probe_tcp"] = _hostport(d[PROBE_TCP], problems)
    for key, field in ((PROBE_INTERVAL, "interval_s"), (PROBE_TIMEOUT, "timeout_s")):
        if key in d:
            v = _seconds(key, d[key], problems)
            values[field] = v if v else None
    if PROBE_EXPECT_STATUS in d:
        values["expect_status"] = _status_codes(d[PROBE_EXPECT_STATUS], problems)
    if PROBE_EXPECT_BODY in d:
        values["expect_body"] = _regex(PROBE_EXPECT_BODY, d[PROBE_EXPECT_BODY], problems)
    if METRICS_URL in d:
        values["metrics_url"] = _url(METRICS_URL, d[METRICS_URL], problems)
    for key, field in ((METRICS_REQUESTS, "requests"), (METRICS_ERRORS, "errors")):
        if key in d:
            sel = selector(d[key])
            if sel is None:
                problems.append(f"label {key}={d[key]!r} ignored: expected a metric name "
                                'with optional matchers, like name{code=~"5.."}')
            else:
                values[field] = sel
    if METRICS_LATENCY in d:
        sel = selector(d[METRICS_LATENCY])
        if sel is None or sel.matchers:
            problems.append(f"label {METRICS_LATENCY}={d[METRICS_LATENCY]!r} ignored: "
                            "expected a histogram's name")
        else:
            values["latency"] = sel.name
    if LOGS_ERROR_PATTERN in d:
        values["error_pattern"] = _regex(LOGS_ERROR_PATTERN, d[LOGS_ERROR_PATTERN], problems)
    return SignalSpec(**values, problems=tuple(problems))  # type: ignore[arg-type]
