"""healthd's own Prometheus metrics, in a registry of their own.

Owns: metric names, help texts and label sets (checked by ``promtool check metrics``).
Must never: decide anything; the daemon sets values, this module only names them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from healthd import __version__
from healthd.core.model import Health
from healthd.core.topology import Topology
from healthd.observe.memory import Tracked
from healthd.serve.access import REASONS

# No `*_created` series: each counter and histogram would export one more series holding
# its creation time, which no rule or dashboard reads (it doubles the counters' series).
disable_created_metrics()  # type: ignore[no-untyped-call]

# The engine events healthd subscribes to (observe.engine.EVENTS; a unit test keeps them equal).
EVENT_VERBS = ("start", "die", "oom", "kill", "health_status", "create", "destroy", "restart",
               "stop", "pause", "unpause", "update")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A recovery is only known once the fix held for its window (600 s by default).
RECOVERY_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
                    7200.0, 14400.0)
# Notification latency includes group_wait_s (30 s by default) and retries after outages.
NOTIFY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
NOTIFY_RESULTS = ("sent", "failed", "dropped", "suppressed")


class Metrics:
    """All of healthd's metrics; one instance per daemon."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.info = Gauge("healthd_build_info", "healthd version (always 1)", ["version"],
                          registry=r)
        self.info.labels(__version__).set(1)
        self.containers = Gauge("healthd_containers", "Containers watched, by health state",
                                ["health"], registry=r)
        for h in Health:
            self.containers.labels(h.value).set(0)
        self.decisions = Counter("healthd_decisions_total",
                                 "Decisions taken, by action and the guard that held them back",
                                 ["action", "held_by"], registry=r)
        self.actions = Counter("healthd_actions_total", "Actions sent, by action and outcome",
                               ["action", "outcome"], registry=r)
        self.swarm_leader = Gauge("healthd_swarm_leader",
                                  "1 while this node's engine is the Swarm leader (healthd acts "
                                  "on services and nodes only then)", registry=r)
        self.swarm_replicas = Gauge("healthd_swarm_replicas",
                                    "Tasks of a Swarm service, running and desired",
                                    ["service", "state"], registry=r)
        self.events = Counter("healthd_events_total", "Engine events handled, by action",
                              ["action"], registry=r)
        self.reconnects = Counter("healthd_engine_reconnects_total",
                                  "Times the events stream was re-established", registry=r)
        self.lists = Counter("healthd_container_lists_total",
                             "Full container lists read from the engine (every [watch] "
                             "resync_s while the events stream is connected)", registry=r)
        self.event_lag = Gauge("healthd_event_lag_seconds",
                               "Delay between the engine's event time and its handling",
                               registry=r)
        self.sweep = Gauge("healthd_stats_sweep_duration_seconds",
                           "Duration of the last observe/stats sweep", registry=r)
        self.sweep_hist = Histogram("healthd_stats_sweep_seconds", "Stats sweep durations",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.latency = Histogram("healthd_event_to_action_seconds",
                                 "From the engine's event to healthd's action call",
                                 ["action"], buckets=LATENCY_BUCKETS, registry=r)
        self.verdicts = Counter("healthd_action_verdicts_total",
                                "Verdicts on healthd's own actions once their window closed"
                                " (fixed, recurred, not_fixed, superseded)",
                                ["action", "classification", "verdict"], registry=r)
        # From the incident's first action to the verdict "fixed" on the one that held.
        self.recovery = Histogram("healthd_recovery_seconds",
                                  "From the first action on a problem to the verdict fixed",
                                  ["action", "classification"], buckets=RECOVERY_BUCKETS,
                                  registry=r)
        self.stats_path = Gauge("healthd_stats_path_info",
                                "Stats path in use (1 for the active one)", ["path"], registry=r)
        self.forecast_eta = Gauge("healthd_forecast_exhaustion_seconds",
                                  "Forecast seconds until a resource reaches its limit",
                                  ["container", "resource"], registry=r)
        self.forecast_alarm = Gauge("healthd_forecast_alarm",
                                    "1 when a forecast alarm is raised for the series",
                                    ["container", "resource"], registry=r)
        self.refits = Counter("healthd_forecast_refits_total",
                              "Forecaster parameter refits finished, by result", ["result"],
                              registry=r)
        # Export the common series at 0 from the start, so rates work from the first scrape
        # and every series the rules and dashboard name exists on a fresh healthd.
        for verb in EVENT_VERBS:
            self.events.labels(verb)
        self.refits.labels("ok")
        for action in ("restart", "alert"):
            self.latency.labels(action)
            self.decisions.labels(action, "none")
            for outcome in ("succeeded", "failed"):
                self.actions.labels(action, outcome)
        self.held_by_dependency = Gauge(
            "healthd_held_by_dependency",
            "Containers whose action is held because something they depend on is failing",
            registry=r)
        self.replicas = Gauge("healthd_service_replicas",
                              "Containers of a stack service, running and in all",
                              ["service", "state"], registry=r)
        self.unauthorized = Counter("healthd_http_unauthorized_total",
                                    "HTTP requests refused for a missing or wrong token",
                                    ["reason"], registry=r)
        for reason in REASONS:
            self.unauthorized.labels(reason)
        self.engine_up = Gauge("healthd_engine_up", "1 while the events stream is connected",
                               registry=r)
        self.ledger_up = Gauge("healthd_ledger_up",
                               "1 while the state file takes writes (history is persisted)",
                               registry=r)
        self.ledger_pending = Gauge("healthd_ledger_pending_writes",
                                    "Ledger writes held in memory until the state file takes them",
                                    registry=r)
        self.ledger_dropped = Counter("healthd_ledger_dropped_rows",
                                      "Ledger rows dropped from a full in-memory backlog",
                                      registry=r)
        self._ledger_dropped_seen = 0
        self.notifications = Counter(
            "healthd_notifications_total",
            "Notices per target and result: sent (delivered), failed (one per notice of a"
            " failed delivery attempt; retried), dropped (given up: too old, spool full or"
            " refused), suppressed (a repeat within repeat_interval_s)",
            ["target", "result"], registry=r)
        self.notify_depth = Gauge("healthd_notification_spool_depth",
                                  "Notices waiting in the spool for delivery, per target",
                                  ["target"], registry=r)
        self.notify_latency = Histogram(
            "healthd_notification_delivery_seconds",
            "From a notice's creation to its receiver's acknowledgement (includes group_wait_s"
            " and retries)", ["target"], buckets=NOTIFY_BUCKETS, registry=r)
        # Application signals, one series per container that asks for them (bounded by the
        # containers watched; a container's series go when it does).
        self.probe_up = Gauge("healthd_probe_success",
                              "1 when the container's last probe succeeded, else 0",
                              ["container"], registry=r)
        self.probe_seconds = Gauge("healthd_probe_duration_seconds",
                                   "Duration of the container's last probe", ["container"],
                                   registry=r)
        self.app_error_ratio = Gauge("healthd_app_error_ratio",
                                     "Failed over all requests (or probes) in the signals "
                                     "window, 0..1", ["container"], registry=r)
        self.app_latency = Gauge("healthd_app_latency_seconds",
                                 "The configured latency quantile over the signals window",
                                 ["container"], registry=r)
        self.app_log_errors = Gauge("healthd_app_log_errors_per_minute",
                                    "Log lines matching the container's error pattern, per "
                                    "minute over the signals window", ["container"], registry=r)

    def export_counts(self, items: Sequence[Tracked], health: Mapping[Health, int],
                      topology: Topology, signals: dict[str, dict[str, object]]) -> None:
        """Per sweep: containers by health, decisions held by a dependency, the signals of
        ``signals`` (rows of ``AppSignals.row`` by name) and each Compose service's replicas."""
        for h, n in health.items():
            self.containers.labels(h.value).set(n)
        self.held_by_dependency.set(sum(
            1 for t in items if t.last_decision and t.last_decision.suppressed_by
            and t.last_decision.suppressed_by.startswith("dependency:")))
        self.set_signals(signals)
        running = {t.state.id for t in items if t.state.running}
        self.replicas.clear()  # services come and go: no stale series
        for svc in topology.services():
            if "/" not in svc:
                continue  # a lone container is no service: healthd_containers counts it
            members = topology.members(svc)
            self.replicas.labels(svc, "running").set(sum(1 for c in members if c in running))
            self.replicas.labels(svc, "all").set(len(members))

    def set_signals(self, rows: dict[str, dict[str, object]]) -> None:
        """Export the latest signals by container name (rows of ``AppSignals.row``)."""
        gauges = (("probe_ok", self.probe_up), ("probe_latency_s", self.probe_seconds),
                  ("error_ratio", self.app_error_ratio), ("latency_s", self.app_latency),
                  ("log_errors_per_min", self.app_log_errors))
        for _, g in gauges:
            g.clear()  # containers come and go: no stale series
        for name, row in rows.items():
            for key, g in gauges:
                v = row.get(key)
                if isinstance(v, (int, float)):
                    g.labels(name).set(float(v))

    def set_ledger(self, up: bool, pending: int, dropped: int) -> None:
        """Export the ledger's health; ``dropped`` is its running total since start."""
        self.ledger_up.set(1 if up else 0)
        self.ledger_pending.set(pending)
        if dropped > self._ledger_dropped_seen:
            self.ledger_dropped.inc(dropped - self._ledger_dropped_seen)
            self._ledger_dropped_seen = dropped

    def notify_target(self, name: str) -> None:
        """Export a notification target's series at 0 from the start."""
        for result in NOTIFY_RESULTS:
            self.notifications.labels(name, result)
        self.notify_depth.labels(name).set(0)
        self.notify_latency.labels(name)

    def render(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))
