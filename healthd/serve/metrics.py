"""healthd's own Prometheus metrics, in a registry of their own.

Owns: metric names, help texts and label sets (checked by ``promtool check metrics``).
Must never: decide anything; the daemon sets values, this module only names them.
"""

from __future__ import annotations

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
from healthd.serve.access import REASONS

# No `*_created` series: each counter and histogram would export one more series holding
# its creation time, which no rule or dashboard reads (it doubles the counters' series).
disable_created_metrics()  # type: ignore[no-untyped-call]

# The engine events healthd subscribes to (observe.engine.EVENTS; a unit test keeps them equal).
EVENT_VERBS = ("start", "die", "oom", "kill", "health_status", "destroy", "restart", "stop")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        self.events = Counter("healthd_events_total", "Engine events handled, by action",
                              ["action"], registry=r)
        self.reconnects = Counter("healthd_engine_reconnects_total",
                                  "Times the events stream was re-established", registry=r)
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
        self.unauthorized = Counter("healthd_http_unauthorized_total",
                                    "HTTP requests refused for a missing or wrong token",
                                    ["reason"], registry=r)
        for reason in REASONS:
            self.unauthorized.labels(reason)
        self.engine_up = Gauge("healthd_engine_up", "1 while the events stream is connected",
                               registry=r)

    def render(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))
