"""Settings: the frozen dataclasses every part of healthd reads its configuration from.

Owns: every setting's name, type and default (one dataclass per config.toml section, and
``Config`` holding them all), the cross-field checks a section makes of itself
(``validate``), and the built-in decision table with its row keys. Parsing, coercion,
merging of file, environment and flags, and ``ConfigError`` are ``core.config``'s.
Must never: read files or the environment (beyond the default state path's XDG dir),
parse raw values, or act on anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from healthd.core.control import ApprovalSettings
from healthd.core.model import Action, Failure, Health, Resource
from healthd.core.notifyconfig import NotificationSettings, NotifyTarget
from healthd.core.outcomeconfig import LadderSettings, VerifySettings
from healthd.core.swarmconfig import SwarmSettings
from healthd.foresight.settings import ForecastSettings

DEFAULT_LISTEN = "127.0.0.1:10985"  # outside Prometheus' allocated exporter range 9100-9999


def default_state_path() -> str:
    """/var/lib/healthd/state.db as root, else under the XDG state dir."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/healthd/state.db"
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "healthd", "state.db")


@dataclass(frozen=True)
class DaemonSettings:
    """[daemon]: where healthd talks, listens and remembers."""

    docker_host: str = "unix:///var/run/docker.sock"
    listen: str = DEFAULT_LISTEN
    state: str = ""  # empty: default_state_path()
    dry_run: bool = False
    log_level: str = "info"
    log_format: str = "text"
    action_workers: int = 4
    # /healthz turns 503 (and the systemd watchdog stops) when the main loop has not turned
    # for this long: it turns at least once a second when idle.
    liveness_s: float = 60.0
    # The HTTP door (serve.access): a bearer token for every changing call and, beyond
    # loopback, for everything but /healthz and (when metrics_public) /metrics.
    token: str = field(default="", repr=False)
    token_file: str = ""  # a file holding the token, e.g. a Docker/Swarm secret
    metrics_public: bool = True
    tls_cert: str = ""  # PEM files; both or neither
    tls_key: str = ""

    def validate(self) -> list[str]:
        """Problems with the door's settings (never quoting the token)."""
        problems = []
        if self.token and self.token_file:
            problems.append("daemon.token/token_file: set one of them, not both")
        if self.token and len(self.token) < 16:
            problems.append(f"daemon.token: shorter than 16 characters ({len(self.token)})")
        if bool(self.tls_cert) != bool(self.tls_key):
            problems.append("daemon.tls_cert/tls_key: set both or neither")
        return problems


@dataclass(frozen=True)
class WatchSettings:
    """[watch]: which containers, how often, and through which stats path."""

    mode: str = "opt-out"  # opt-out: all but healthd.enable=false; opt-in: only =true
    stats_interval_s: float = 5.0
    stats_path: str = "auto"  # auto, cgroup, api
    stats_concurrency: int = 32
    cgroup_root: str = "/sys/fs/cgroup"
    docker_root: str = ""  # empty: ask the engine (DockerRootDir)
    reconnect_max_s: float = 30.0
    # Seconds between full container lists while the events stream is connected: events
    # carry every change, the list only catches what a lost event would hide. 0: every sweep.
    resync_s: float = 30.0
    # opt-in also takes <opt_in_label>=true (docker-autoheal's AUTOHEAL_CONTAINER_LABEL).
    opt_in_label: str = ""
    only_running: bool = False  # act only on running containers (not paused, not exited)


@dataclass(frozen=True)
class ThresholdSettings:
    """[thresholds]: fractions of a container's limits that make it degraded or critical."""

    memory_degraded: float = 0.85
    memory_critical: float = 0.95
    cpu_degraded: float = 0.90
    cpu_critical: float = 0.98
    pids_degraded: float = 0.80
    pids_critical: float = 0.95


@dataclass(frozen=True)
class ClassifySettings:
    """[classify]: how many deaths in which window make a crash loop."""

    crash_loop_deaths: int = 5
    crash_loop_window_s: float = 600.0


@dataclass(frozen=True)
class GuardSettings:
    """[guards]: everything that stands between a decision and the engine."""

    cooldown_s: float = 30.0
    backoff_base_s: float = 10.0
    backoff_max_s: float = 600.0
    budget_restarts: int = 3
    budget_window_s: float = 3600.0
    global_actions_per_minute: int = 10
    grace_s: float = 0.0
    stop_timeout_s: int = 10
    alert_repeat_s: float = 3600.0
    # Act on an unhealthy container only after this many consecutive failed health checks
    # (the engine's FailingStreak); 0: as soon as the engine says unhealthy.
    unhealthy_threshold: int = 0
    start_period_s: float = 0.0  # no action at all this long after healthd started
    # Hold while a Compose project or Swarm service is being redeployed by someone else:
    # project (the one being redeployed), all (every container) or off.
    redeploy_hold: str = "project"
    redeploy_window_s: float = 60.0  # a create/destroy holds this long


@dataclass(frozen=True)
class StackSettings:
    """[stacks]: how dependents wait for what they depend on."""

    settle_s: float = 30.0  # an upstream healthy this long lets held dependents go
    compose_files: bool = True  # read depends_on from compose v1 files named by labels


@dataclass(frozen=True)
class DependencySpec:
    """One ``[dependencies."project/service"]`` table of config.toml."""

    service: str
    depends_on: tuple[str, ...] | None = None  # None: take the labels' or compose file's
    restart_with: tuple[str, ...] = ()
    replicas_min: int | None = None
    replicas_max: int | None = None


@dataclass(frozen=True)
class ScalingSettings:
    """[scaling]: when a scalable service gains or loses a replica (see healthd.core.scale)."""

    target_cpu: float = 0.7  # mean CPU use per replica, fraction of its limit, to aim for
    target_memory: float = 0.8  # mean memory working set per replica, fraction of its limit
    tolerance: float = 0.1  # |utilisation / target - 1| within this recommends no change
    scale_up_window_s: float = 30.0  # pressure must hold this long before a replica is added
    scale_down_window_s: float = 300.0  # slack must hold this long before one is removed
    scale_up_step: int = 1  # replicas added per action at most
    scale_down_step: int = 1  # replicas removed per action at most
    cooldown_s: float = 60.0  # no scale action on a service within this of its last one
    forecast_pressure: bool = True  # a replica's memory/cpu forecast alarm counts as pressure

    def validate(self) -> list[str]:
        """Human-readable problems, one per bad field; empty when the settings are usable."""
        problems = []
        for name in ("target_cpu", "target_memory"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                problems.append(f"{name}: need 0 < {name} <= 1 (a fraction of the limit), "
                                f"got {v}")
        if not self.tolerance < 1:
            problems.append(f"tolerance: need 0 <= tolerance < 1, got {self.tolerance}")
        for name in ("scale_up_step", "scale_down_step"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be an integer >= 1, got {getattr(self, name)}")
        return problems


@dataclass(frozen=True)
class LedgerSettings:
    """[ledger]: how much history the state file keeps (never less than the guards need)."""

    retention_days: float = 30.0
    retention_rows: int = 100_000

    @property
    def retention_s(self) -> float:
        """retention_days in seconds."""
        return self.retention_days * 86400.0


@dataclass(frozen=True)
class SignalSettings:
    """[signals]: probes, the applications' metrics and logs, and their thresholds."""

    probe_interval_s: float = 5.0  # default per container; label healthd.probe.interval
    probe_timeout_s: float = 2.0  # default per container; label healthd.probe.timeout
    probe_concurrency: int = 8  # probe and scrape worker threads, shared by all containers
    scrape_interval_s: float = 15.0
    scrape_timeout_s: float = 3.0
    scrape_max_bytes: int = 4_000_000  # a bigger metrics body is skipped, not parsed
    window_s: float = 120.0  # error ratio and latency are read over this window
    min_probes: int = 3  # probes in the window before their failure ratio counts
    error_ratio_degraded: float = 0.05
    error_ratio_critical: float = 0.25
    latency_quantile: float = 0.95
    latency_degraded_s: float = 0.5
    latency_critical_s: float = 2.0
    log_errors_degraded_per_min: float = 10.0
    log_errors_critical_per_min: float = 60.0
    log_minutes: int = 10  # per-minute log counts kept per container (bounded memory)
    # A critical value must hold this long before it is critical (and restarts by default);
    # until then it is degraded (alerts by default).
    persist_s: float = 60.0

    def validate(self) -> list[str]:
        """Human-readable problems, one per bad field; empty when the settings are usable."""
        problems = []
        for lo, hi in (("error_ratio_degraded", "error_ratio_critical"),
                       ("latency_degraded_s", "latency_critical_s"),
                       ("log_errors_degraded_per_min", "log_errors_critical_per_min")):
            a, b = getattr(self, lo), getattr(self, hi)
            if not 0 < a <= b:
                problems.append(f"{lo}/{hi}: need 0 < {lo} <= {hi}, got {a} and {b}")
        if not self.error_ratio_critical <= 1:
            problems.append(f"error_ratio_critical: a fraction, at most 1, got "
                            f"{self.error_ratio_critical}")
        if not 0 < self.latency_quantile < 1:
            problems.append(f"latency_quantile: need 0 < q < 1, got {self.latency_quantile}")
        for name in ("probe_interval_s", "probe_timeout_s", "scrape_interval_s",
                     "scrape_timeout_s", "window_s", "probe_concurrency", "log_minutes"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0, got {getattr(self, name)}")
        return problems


DEFAULT_TABLE: dict[str, dict[str, str]] = {
    "unhealthy": {"degraded": "restart", "critical": "restart"},
    "crashed": {"degraded": "restart", "critical": "restart"},
    "oom_killed": {"degraded": "restart", "critical": "restart"},
    "crash_loop": {"degraded": "alert", "critical": "alert"},
    "resource_pressure": {"degraded": "none", "critical": "alert"},
    "predicted_exhaustion.memory": {"degraded": "restart", "critical": "restart"},
    "predicted_exhaustion.cpu": {"degraded": "alert", "critical": "alert"},
    "predicted_exhaustion.pids": {"degraded": "alert", "critical": "alert"},
    "predicted_exhaustion.host_memory": {"degraded": "alert", "critical": "alert"},
    "predicted_exhaustion.host_disk": {"degraded": "alert", "critical": "alert"},
    # Held while what it depends on is failing or settling; then restarted like its own
    # failure, in dependency order.
    "dependency_failure": {"degraded": "restart", "critical": "restart"},
    "dependency_restarted": {"degraded": "restart", "critical": "restart"},
    "config_drift": {"degraded": "alert", "critical": "alert"},
    "sustained_pressure": {"degraded": "scale_up", "critical": "scale_up"},
    "idle_replicas": {"degraded": "scale_down", "critical": "scale_down"},
    # What the application says: alert while degraded (or critical only briefly), restart
    # once a critical value has held for signals.persist_s.
    "application_error": {"degraded": "alert", "critical": "restart"},
    "latency_degraded": {"degraded": "alert", "critical": "restart"},
    "predicted_exhaustion.errors": {"degraded": "alert", "critical": "alert"},
    "predicted_exhaustion.latency": {"degraded": "alert", "critical": "alert"},
    # Swarm (healthd.core.swarm): acted on by the leader's healthd only. A Swarm task's
    # restart (any row above) becomes replace_task: its container stopped, Swarm replaces it.
    "update_failed": {"degraded": "rollback", "critical": "rollback"},
    "rollback_failed": {"degraded": "alert", "critical": "alert"},
    "node_exhausted": {"degraded": "drain", "critical": "drain"},
    "node_recovered": {"degraded": "activate", "critical": "activate"},
}
TABLE_ROWS = tuple(DEFAULT_TABLE)
SEVERITIES = (Health.DEGRADED.value, Health.CRITICAL.value)


def table_row(failure: Failure, resource: Resource | None) -> str:
    """The decision-table row key for a classification."""
    if failure is Failure.PREDICTED_EXHAUSTION and resource is not None:
        return f"{failure.value}.{resource.value}"
    return failure.value


@dataclass(frozen=True)
class Config:
    """The whole parsed configuration."""

    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    thresholds: ThresholdSettings = field(default_factory=ThresholdSettings)
    classify: ClassifySettings = field(default_factory=ClassifySettings)
    guards: GuardSettings = field(default_factory=GuardSettings)
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    stacks: StackSettings = field(default_factory=StackSettings)
    dependencies: tuple[DependencySpec, ...] = ()
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    signals: SignalSettings = field(default_factory=SignalSettings)
    swarm: SwarmSettings = field(default_factory=SwarmSettings)
    decisions: tuple[tuple[str, str, Action], ...] = tuple(
        (row, sev, Action(a)) for row, sevs in DEFAULT_TABLE.items() for sev, a in sevs.items()
    )
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    notify: tuple[NotifyTarget, ...] = ()  # the [[notify]] targets; none by default
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    ladder: LadderSettings = field(default_factory=LadderSettings)

    @property
    def state_path(self) -> str:
        """The SQLite ledger's path."""
        return self.daemon.state or default_state_path()

    def action_for(self, row: str, severity: Health) -> Action:
        """The table's action for a row and severity; NONE when the table has no cell."""
        for r, s, a in self.decisions:
            if r == row and s == severity.value:
                return a
        return Action.NONE
