"""healthd.core.signals and the labels that ask for them: thresholds, persistence, evidence,
and their place in the classifier, the decision table and the stack rules."""

from __future__ import annotations

import pytest

from healthd.core import classify, decide, labels, settings, signals, stack
from healthd.core.model import (
    Action,
    Classification,
    ContainerState,
    Failure,
    ForecastView,
    Health,
    Resource,
    Signals,
)
from healthd.core.settings import SignalSettings

SS = SignalSettings(persist_s=60.0, window_s=120.0)
NOW = 10_000.0


def running() -> ContainerState:
    return ContainerState(id="c1", name="api", status="running", started_at=NOW - 3600)


CASES = [
    ("healthy", Signals(error_ratio=0.01, latency_s=0.1, log_errors_per_min=1.0), None, None),
    ("errors-degraded", Signals(error_ratio=0.10, error_source="metrics"),
     Failure.APPLICATION_ERROR, Health.DEGRADED),
    ("errors-critical-not-yet-persisted", Signals(error_ratio=0.5, errors_since=NOW - 10),
     Failure.APPLICATION_ERROR, Health.DEGRADED),
    ("errors-critical-persisted", Signals(error_ratio=0.5, errors_since=NOW - 60),
     Failure.APPLICATION_ERROR, Health.CRITICAL),
    ("latency-degraded", Signals(latency_s=0.8), Failure.LATENCY_DEGRADED, Health.DEGRADED),
    ("latency-critical-persisted", Signals(latency_s=3.0, latency_since=NOW - 61),
     Failure.LATENCY_DEGRADED, Health.CRITICAL),
    ("logs-degraded", Signals(log_errors_per_min=12.0), Failure.APPLICATION_ERROR,
     Health.DEGRADED),
    ("logs-critical-persisted", Signals(log_errors_per_min=100.0, logs_since=NOW - 100),
     Failure.APPLICATION_ERROR, Health.CRITICAL),
    ("critical-latency-beats-degraded-errors",
     Signals(error_ratio=0.1, latency_s=3.0, latency_since=NOW - 100),
     Failure.LATENCY_DEGRADED, Health.CRITICAL),
    ("errors-before-latency-at-equal-severity", Signals(error_ratio=0.1, latency_s=0.8),
     Failure.APPLICATION_ERROR, Health.DEGRADED),
]


@pytest.mark.parametrize(("sig", "failure", "severity"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_signal_classification(sig: Signals, failure: Failure | None,
                               severity: Health | None) -> None:
    cls = signals.classify(sig, SS, NOW)
    assert (cls.failure if cls else None, cls.severity if cls else None) == (failure, severity)


def test_evidence_reads_like_the_issue() -> None:
    cls = signals.classify(Signals(error_ratio=0.23, errors_since=NOW - 120), SS, NOW)
    assert cls is not None
    assert cls.evidence == ("error ratio 23 % over 2 min (threshold 5 %)",)
    cls = signals.classify(Signals(latency_s=1.8), SS, NOW)
    assert cls is not None and cls.evidence[0] == "p95 1.8 s over 2 min (threshold 500 ms)"
    cls = signals.classify(Signals(error_ratio=1.0, error_source="probes",
                                   probe_detail="HTTP 500", errors_since=NOW), SS, NOW)
    assert cls is not None
    # Critical, but not for persist_s yet: degraded, and its threshold is degraded's.
    assert cls.severity is Health.DEGRADED
    assert cls.evidence == ("probe failure ratio 100 % over 2 min (threshold 5 %)",
                            "last probe: HTTP 500", "critical for 0 s of 60 s before it counts")


def test_since_tracks_when_a_value_crossed_its_critical_threshold() -> None:
    assert signals.since(None, 0.5, 0.25, NOW) == NOW
    assert signals.since(NOW - 30, 0.5, 0.25, NOW) == NOW - 30
    assert signals.since(NOW - 30, 0.1, 0.25, NOW) is None
    assert signals.since(NOW - 30, None, 0.25, NOW) is None


def test_unhealthy_goes_before_application_signals() -> None:
    c = ContainerState(id="c1", name="api", health="unhealthy")
    cls = classify.classify(c, None, (), NOW, settings.ClassifySettings(),
                            settings.ThresholdSettings(), Signals(error_ratio=0.9), SS)
    assert cls is not None and cls.failure is Failure.UNHEALTHY


def test_critical_application_error_goes_before_a_forecast() -> None:
    fc = ForecastView(Resource.MEMORY, 100.0, alarm=True, limit=1.0, value=0.5)
    sig = Signals(error_ratio=0.9, errors_since=NOW - 100)
    cls = classify.classify(running(), None, (fc,), NOW, settings.ClassifySettings(),
                            settings.ThresholdSettings(), sig, SS)
    assert cls is not None and cls.failure is Failure.APPLICATION_ERROR


def test_stopped_container_has_no_application_signals() -> None:
    c = ContainerState(id="c1", name="api", status="exited", exit_code=0)
    assert classify.classify(c, None, (), NOW, settings.ClassifySettings(),
                             settings.ThresholdSettings(), Signals(error_ratio=0.9), SS) is None


def test_error_forecast_reads_as_error_ratio() -> None:
    fc = ForecastView(Resource.ERRORS, 120.0, alarm=True, limit=0.25, value=0.1)
    cls = classify.classify(running(), None, (fc,), NOW, settings.ClassifySettings(),
                            settings.ThresholdSettings(), Signals(error_ratio=0.1), SS)
    assert cls is not None
    assert (cls.failure, cls.resource) == (Failure.PREDICTED_EXHAUSTION, Resource.ERRORS)
    assert settings.table_row(cls.failure, cls.resource) == "predicted_exhaustion.errors"
    assert cls.evidence == ("error ratio critical in ~2 min", "now 10 % errors of 25 % errors")


ROWS = [
    ("application_error.degraded", Failure.APPLICATION_ERROR, Health.DEGRADED, None,
     Action.ALERT),
    ("application_error.critical", Failure.APPLICATION_ERROR, Health.CRITICAL, None,
     Action.RESTART),
    ("latency_degraded.degraded", Failure.LATENCY_DEGRADED, Health.DEGRADED, None,
     Action.ALERT),
    ("latency_degraded.critical", Failure.LATENCY_DEGRADED, Health.CRITICAL, None,
     Action.RESTART),
    ("predicted_exhaustion.errors.critical", Failure.PREDICTED_EXHAUSTION, Health.CRITICAL,
     Resource.ERRORS, Action.ALERT),
    ("predicted_exhaustion.latency.critical", Failure.PREDICTED_EXHAUSTION, Health.CRITICAL,
     Resource.LATENCY, Action.ALERT),
]


@pytest.mark.parametrize(("failure", "severity", "resource", "action"),
                         [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_new_decision_rows_default_actions(failure: Failure, severity: Health,
                                           resource: Resource | None, action: Action) -> None:
    cls = Classification(failure, severity, ("evidence",), resource=resource)
    d = decide.decide(running(), cls, decide.Context(now=NOW, config=settings.Config()))
    assert d is not None
    assert d.action is action and d.suppressed_by is None
    assert d.rule == f"{settings.table_row(failure, resource)}.{severity.value}"


def test_application_error_makes_a_service_down_for_its_dependents_latency_does_not() -> None:
    db = ContainerState(id="db1", name="db", status="running")
    down = stack.service_health("shop/db", [stack.Member(db, Failure.APPLICATION_ERROR)],
                                None, NOW)
    slow = stack.service_health("shop/db", [stack.Member(db, Failure.LATENCY_DEGRADED)],
                                None, NOW)
    assert down.failing and not slow.failing


def test_signal_labels_parse() -> None:
    spec = labels.signal_spec({
        labels.PROBE_HTTP: "http://127.0.0.1:8080/health", labels.PROBE_TCP: "127.0.0.1:5432",
        labels.PROBE_INTERVAL: "2", labels.PROBE_TIMEOUT: "0.5",
        labels.PROBE_EXPECT_STATUS: "200,204", labels.PROBE_EXPECT_BODY: "ok",
        labels.METRICS_URL: "http://127.0.0.1:8080/metrics",
        labels.METRICS_ERRORS: 'app_requests_total{status=~"5..",path!="/health"}',
        labels.METRICS_REQUESTS: "app_requests_total", labels.METRICS_LATENCY: "app_seconds",
        labels.LOGS_ERROR_PATTERN: "ERROR|FATAL"})
    assert spec.problems == ()
    assert spec.probe_tcp == ("127.0.0.1", 5432)
    assert (spec.interval_s, spec.timeout_s, spec.expect_status) == (2.0, 0.5, (200, 204))
    assert spec.errors.matches("app_requests_total", {"status": "503", "path": "/x"})
    assert not spec.errors.matches("app_requests_total", {"status": "503", "path": "/health"})
    assert not spec.errors.matches("app_requests_total", {"status": "200", "path": "/x"})
    assert spec.requests.matches("app_requests_total", {"status": "200"})
    assert spec.latency == "app_seconds" and spec.any


BAD = [
    ("http-not-url", {labels.PROBE_HTTP: "localhost:80"}, labels.PROBE_HTTP),
    ("tcp-no-port", {labels.PROBE_TCP: "127.0.0.1"}, labels.PROBE_TCP),
    ("status-junk", {labels.PROBE_EXPECT_STATUS: "ok"}, labels.PROBE_EXPECT_STATUS),
    ("body-bad-regex", {labels.PROBE_EXPECT_BODY: "("}, labels.PROBE_EXPECT_BODY),
    ("errors-bad-selector", {labels.METRICS_ERRORS: "x{code=5}"}, labels.METRICS_ERRORS),
    ("pattern-bad-regex", {labels.LOGS_ERROR_PATTERN: "[a"}, labels.LOGS_ERROR_PATTERN),
    ("interval-negative", {labels.PROBE_INTERVAL: "-1"}, labels.PROBE_INTERVAL),
]


@pytest.mark.parametrize(("raw", "key"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_signal_label_is_a_problem_not_a_crash(raw: dict[str, str], key: str) -> None:
    spec = labels.signal_spec(raw)
    assert len(spec.problems) == 1 and spec.problems[0].startswith(f"label {key}=")
    assert not spec.any


def test_defaults_select_5xx_of_http_requests_total() -> None:
    spec = labels.signal_spec({})
    assert spec.errors.matches("http_requests_total", {"code": "502"})
    assert not spec.errors.matches("http_requests_total", {"code": "200"})
    assert not spec.any
