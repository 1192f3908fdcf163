"""Value types shared by the pure core and the shell.

Owns: the vocabulary (enums) and the frozen observation / decision records.
Must never: import docker, sqlite3, time, threading, http, prometheus_client or click,
or hold mutable state. Times are epoch seconds as floats, passed in as values.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import NamedTuple


class Health(str, enum.Enum):
    """How a container is doing right now, worst last."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class Failure(str, enum.Enum):
    """What the classifier says went wrong."""

    UNHEALTHY = "unhealthy"
    CRASHED = "crashed"
    OOM_KILLED = "oom_killed"
    CRASH_LOOP = "crash_loop"
    RESOURCE_PRESSURE = "resource_pressure"
    PREDICTED_EXHAUSTION = "predicted_exhaustion"
    DEPENDENCY_FAILURE = "dependency_failure"  # failing because something it needs fails
    DEPENDENCY_RESTARTED = "dependency_restarted"  # a restart_with upstream came back
    CONFIG_DRIFT = "config_drift"  # its config hash or image differs from what it should run
    SUSTAINED_PRESSURE = "sustained_pressure"  # a scalable service's replicas are short
    IDLE_REPLICAS = "idle_replicas"  # a scaled-up service has had slack for a whole window
    APPLICATION_ERROR = "application_error"  # its requests, probes or logs say it fails
    LATENCY_DEGRADED = "latency_degraded"  # it answers, but too slowly
    UPDATE_FAILED = "update_failed"  # a Swarm rolling update's new tasks fail (or it paused)
    ROLLBACK_FAILED = "rollback_failed"  # a Swarm rollback failed or paused too
    NODE_EXHAUSTED = "node_exhausted"  # a Swarm node's host memory or disk is (nearly) full
    NODE_RECOVERED = "node_recovered"  # a node healthd drained has been fine for a window


class Action(str, enum.Enum):
    """What healthd may do about a classification."""

    RESTART = "restart"
    RECREATE = "recreate"  # remove and create again from the service's current config
    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"
    ROLLBACK = "rollback"  # a Swarm service's update back to its previous spec
    REPLACE_TASK = "replace_task"  # stop a Swarm task's container so that Swarm replaces it
    DRAIN = "drain"  # a Swarm node's availability to drain
    ACTIVATE = "activate"  # a Swarm node healthd drained back to active
    STOP = "stop"  # quarantine: stop the container and leave it stopped (label action=stop)
    ALERT = "alert"
    NONE = "none"


class Resource(str, enum.Enum):
    """A resource that can run out."""

    MEMORY = "memory"
    CPU = "cpu"
    PIDS = "pids"
    HOST_MEMORY = "host_memory"
    HOST_DISK = "host_disk"
    ERRORS = "errors"  # an application's error ratio (0..1), towards its critical threshold
    LATENCY = "latency"  # an application's latency quantile (s), towards its critical threshold


class Outcome(str, enum.Enum):
    """Where an action stands in the ledger."""

    PENDING = "pending"  # intent recorded, engine not yet known to have acted
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"  # healthd died between intent and outcome
    SKIPPED = "skipped"  # decided but not sent: dry-run, suppressed or alert-only


@dataclass(frozen=True)
class ContainerState:
    """One container as the engine describes it (inspect), plus healthd's event memory."""

    id: str
    name: str
    image: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    status: str = "running"  # created, running, restarting, exited, paused, dead, removing
    exit_code: int = 0
    oom_killed: bool = False
    health: str | None = None  # "starting", "healthy", "unhealthy" or None without a healthcheck
    health_failing_streak: int = 0
    health_last_output: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    restart_count: int = 0
    restart_policy: str = "no"  # no, always, unless-stopped, on-failure
    restart_policy_max: int = 0
    healthcheck_start_period_s: float = 0.0
    stopped_on_purpose: bool = False  # a kill/stop reached it through the API before it died
    # When a stop through the API signalled it (kill event time), if since its last start:
    # until it dies it is draining, and a failing healthcheck then is the stop, not a fault.
    stop_requested_at: float = 0.0
    deaths: tuple[float, ...] = ()  # recent die times seen in events, oldest first
    is_self: bool = False
    network_mode: str = ""  # HostConfig.NetworkMode: "host", "none", "container:<id>", ...
    image_id: str = ""  # the image the container runs (sha256:...), for drift against its tag
    created_at: float = 0.0
    # Where probes and scrapes can find it (core.endpoints): its address on each network,
    # and each published port as (container port "8080/tcp", host IP, host port).
    addresses: tuple[str, ...] = ()
    published: tuple[tuple[str, str, int], ...] = ()

    def label(self, key: str) -> str | None:
        """Return the value of label ``key`` or None."""
        for k, v in self.labels:
            if k == key:
                return v
        return None

    @property
    def running(self) -> bool:
        """True while the container's process is up (or being restarted by the engine)."""
        return self.status in ("running", "restarting", "paused")


# Actions that change something on the engine (as opposed to alerting or doing nothing).
ENGINE_ACTIONS = frozenset({Action.RESTART, Action.RECREATE, Action.SCALE_UP, Action.SCALE_DOWN,
                            Action.ROLLBACK, Action.REPLACE_TASK, Action.DRAIN,
                            Action.ACTIVATE, Action.STOP})


@dataclass(frozen=True)
class Usage:
    """One resource sample of a container. Bytes, fractions 0..1 and counts."""

    t: float
    cpu_fraction: float | None = None  # of its quota, or of the host's cores without one
    cpu_percent: float | None = None  # docker-stats style: 100 = one core
    mem_bytes: int | None = None  # working set: usage minus inactive file cache
    mem_limit_bytes: int | None = None  # None when unlimited
    pids: int | None = None
    pids_limit: int | None = None  # None when unlimited
    source: str = "api"  # "api" or "cgroup"

    @property
    def mem_fraction(self) -> float | None:
        """Working set over limit (0..1), None without a limit."""
        if self.mem_bytes is None or not self.mem_limit_bytes:
            return None
        return self.mem_bytes / self.mem_limit_bytes

    @property
    def pids_fraction(self) -> float | None:
        """Pids over the pids limit (0..1), None without a limit."""
        if self.pids is None or not self.pids_limit:
            return None
        return self.pids / self.pids_limit


# A named tuple, not a frozen dataclass: one is made per series per sample (~1 us against
# ~4 us for the frozen ``__init__``); immutable all the same.
class ForecastView(NamedTuple):
    """A forecaster's verdict on one series, as the core consumes it."""

    resource: Resource
    eta_s: float | None  # seconds until the limit; None when not trending towards it
    lower_s: float | None = None
    upper_s: float | None = None
    alarm: bool = False
    limit: float = 0.0
    value: float = 0.0
    state: str = "trending"  # learning (too few samples), steady, or trending (ETA significant)
    samples: int = 0  # samples seen so far
    samples_needed: int = 0  # samples before the forecast stops learning


@dataclass(frozen=True)
class Signals:
    """What an application itself says, as the core consumes it (all optional).

    probe_ok: the last probe's verdict (None without a probe); error_ratio: 0..1 over
    ``window_s`` from the metrics endpoint or the probes; latency_s: the configured quantile
    in seconds; log_errors_per_min: matching log lines per minute. ``*_since``: epoch
    seconds since when the value has stood over its critical threshold (None when not).
    """

    probe_ok: bool | None = None
    probe_latency_s: float | None = None
    probe_detail: str = ""
    error_ratio: float | None = None
    error_source: str = ""  # "metrics" or "probes"
    latency_s: float | None = None
    latency_source: str = ""
    log_errors_per_min: float | None = None
    last_log_match: str = ""
    window_s: float = 0.0
    errors_since: float | None = None
    latency_since: float | None = None
    logs_since: float | None = None


@dataclass(frozen=True)
class Assessment:
    """Health of one container with the reasons that set it."""

    health: Health
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Classification:
    """A named failure with the evidence that named it."""

    failure: Failure
    severity: Health
    evidence: tuple[str, ...] = ()
    resource: Resource | None = None


@dataclass(frozen=True)
class ActionRecord:
    """One action of healthd's past, as the ledger returns it."""

    container: str  # the container's name: ids change when compose recreates
    action: Action
    at: float
    outcome: Outcome
    rule: str = ""
    id: int = 0
    retryable: bool = True  # False when the engine refused for a reason a retry cannot fix


@dataclass(frozen=True)
class Decision:
    """What healthd chose for one container, why, and what (if anything) held it back."""

    action: Action
    target_id: str
    target_name: str
    rule: str
    failure: Failure | None = None
    severity: Health = Health.HEALTHY
    evidence: tuple[str, ...] = ()
    suppressed_by: str | None = None  # guard name and reason when the action was held back
    at: float = 0.0
    stop_timeout_s: int = 10
    notes: tuple[str, ...] = ()
    service: str | None = None  # "project/service" for actions on a whole service
    replicas: int | None = None  # for scale actions: how many replicas after the action
    source_id: str | None = None  # the container to copy (scale up, recreate)
    number: int | None = None  # scale up: the new replica's compose container number
    version: int | None = None  # Swarm actions: the service's or node's spec version seen
    # The escalation ladder's incident this decision belongs to ("name@opened") and its
    # rung (1-based); "" and 0 outside a ladder.
    incident: str = ""
    rung: int = 0

    @property
    def acts(self) -> bool:
        """True when the shell should send something to the engine."""
        return self.action in ENGINE_ACTIONS and self.suppressed_by is None

    def held(self, guard: str, why: str) -> Decision:
        """This decision held back by ``guard``, for the reason ``why``."""
        return dataclasses.replace(self, suppressed_by=f"{guard}: {why}")

    def explain(self) -> str:
        """One line for the log and ``healthd status``."""
        what = self.action.value
        parts = [f"{what} {self.target_name}: rule {self.rule}"]
        if self.evidence:
            parts.append(", ".join(self.evidence))
        if self.notes:
            parts.append(", ".join(self.notes))
        line = "; ".join(parts)
        if self.suppressed_by:
            line += f" [held: {self.suppressed_by}]"
        return line
