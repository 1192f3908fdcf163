"""healthd.classify: container state, usage and forecasts in, a failure class and health out."""

from __future__ import annotations

import pytest

from healthd.core import classify as classify_mod
from healthd.core.classify import assess, classify, eta_text, pressure
from healthd.core.model import (
    ContainerState,
    Failure,
    ForecastView,
    Health,
    Resource,
    Usage,
)
from healthd.core.settings import ClassifySettings, ThresholdSettings

NOW = 1_700_000_000.0
CFG = ClassifySettings()  # crash loop: 5 deaths in 600 s
TH = ThresholdSettings()  # memory 0.85/0.95, cpu 0.90/0.98, pids 0.80/0.95
MIB = 1024 * 1024


def state(**kw: object) -> ContainerState:
    base: dict[str, object] = {"id": "c0ffee", "name": "api", "started_at": NOW - 3600}
    base.update(kw)
    return ContainerState(**base)  # type: ignore[arg-type]


def run(
    c: ContainerState,
    usage: Usage | None = None,
    forecasts: tuple[ForecastView, ...] = (),
    cfg: ClassifySettings = CFG,
):
    return classify(c, usage, forecasts, NOW, cfg, TH)


def mem_usage(fraction: float) -> Usage:
    return Usage(t=NOW, mem_bytes=int(fraction * 256 * MIB), mem_limit_bytes=256 * MIB)


ALARMED = ForecastView(Resource.MEMORY, eta_s=412.0, alarm=True, limit=268435456.0,
                       value=200000000.0)
QUIET = ForecastView(Resource.MEMORY, eta_s=412.0, alarm=False, limit=268435456.0,
                     value=200000000.0)


# --- each failure class -------------------------------------------------------------------


def test_healthy_running_container_is_not_a_failure() -> None:
    assert run(state(health="healthy"), mem_usage(0.5)) is None


def test_unhealthy_carries_streak_and_last_output_as_evidence() -> None:
    c = state(health="unhealthy", health_failing_streak=4,
              health_last_output="  curl: (7) connection refused\n")
    cls = run(c)
    assert cls is not None
    assert cls.failure is Failure.UNHEALTHY
    assert cls.severity is Health.CRITICAL
    assert cls.evidence[0] == "healthcheck failing 4 times in a row"
    assert cls.evidence[1] == "last output 'curl: (7) connection refused'"


def test_unhealthy_without_output_has_only_the_streak() -> None:
    cls = run(state(health="unhealthy", health_failing_streak=3))
    assert cls is not None and cls.evidence == ("healthcheck failing 3 times in a row",)


def test_unhealthy_last_output_is_cut_to_80_characters() -> None:
    cls = run(state(health="unhealthy", health_last_output="x" * 200))
    assert cls is not None and cls.evidence[1] == f"last output {'x' * 80!r}"


@pytest.mark.parametrize("health", ["starting", "healthy", None], ids=["starting", "healthy",
                                                                        "no-healthcheck"])
def test_health_other_than_unhealthy_is_not_a_failure(health: str | None) -> None:
    assert run(state(health=health)) is None


@pytest.mark.parametrize("status", ["exited", "dead"], ids=["exited", "dead"])
def test_non_zero_exit_is_crashed(status: str) -> None:
    cls = run(state(status=status, exit_code=3))
    assert cls is not None
    assert cls.failure is Failure.CRASHED
    assert cls.severity is Health.CRITICAL
    assert cls.evidence == ("exited with code 3",)


def test_exit_zero_is_not_a_failure() -> None:
    assert run(state(status="exited", exit_code=0)) is None


def test_created_container_with_exit_code_is_not_crashed() -> None:
    assert run(state(status="created", exit_code=1)) is None


@pytest.mark.parametrize("status", ["running", "restarting", "paused"],
                         ids=["running", "restarting", "paused"])
def test_running_states_with_old_exit_code_are_not_crashed(status: str) -> None:
    assert run(state(status=status, exit_code=137)) is None


def test_oom_killed() -> None:
    cls = run(state(status="exited", exit_code=137, oom_killed=True))
    assert cls is not None
    assert cls.failure is Failure.OOM_KILLED
    assert cls.severity is Health.CRITICAL
    assert cls.evidence == ("OOM-killed, exit code 137",)


def test_crash_loop_after_n_deaths_in_window() -> None:
    deaths = tuple(NOW - 60 * i for i in range(5, 0, -1))  # 5 deaths in the last 5 min
    cls = run(state(status="exited", exit_code=2, deaths=deaths))
    assert cls is not None
    assert cls.failure is Failure.CRASH_LOOP
    assert cls.severity is Health.CRITICAL
    assert cls.evidence == ("died 5 times in 600 s", "last exit code 2")


def test_one_death_short_of_the_threshold_is_a_plain_crash() -> None:
    deaths = tuple(NOW - 60 * i for i in range(4, 0, -1))
    cls = run(state(status="exited", exit_code=2, deaths=deaths))
    assert cls is not None and cls.failure is Failure.CRASHED


def test_deaths_older_than_the_window_are_not_a_crash_loop() -> None:
    old = tuple(NOW - 601 - 10 * i for i in range(10))  # ten deaths, all outside 600 s
    cls = run(state(status="exited", exit_code=2, deaths=old))
    assert cls is not None and cls.failure is Failure.CRASHED


def test_death_exactly_at_window_edge_counts() -> None:
    deaths = (NOW - 600, NOW - 400, NOW - 300, NOW - 200, NOW - 100)
    cls = run(state(status="exited", exit_code=1, deaths=deaths))
    assert cls is not None and cls.failure is Failure.CRASH_LOOP


def test_crash_loop_threshold_and_window_come_from_settings() -> None:
    cfg = ClassifySettings(crash_loop_deaths=2, crash_loop_window_s=30)
    c = state(status="exited", exit_code=1, deaths=(NOW - 20, NOW - 10))
    cls = run(c, cfg=cfg)
    assert cls is not None and cls.failure is Failure.CRASH_LOOP
    assert cls.evidence[0] == "died 2 times in 30 s"


# --- resource pressure --------------------------------------------------------------------


def _usage_for(resource: Resource, fraction: float) -> Usage:
    if resource is Resource.MEMORY:
        return mem_usage(fraction)
    if resource is Resource.CPU:
        return Usage(t=NOW, cpu_fraction=fraction)
    return Usage(t=NOW, pids=round(fraction * 1000), pids_limit=1000)


PRESSURE_CASES = [
    (Resource.MEMORY, 0.90, Health.DEGRADED, "memory at 90% of limit (threshold 85%)"),
    (Resource.MEMORY, 0.97, Health.CRITICAL, "memory at 97% of limit (threshold 95%)"),
    (Resource.CPU, 0.93, Health.DEGRADED, "cpu at 93% of limit (threshold 90%)"),
    (Resource.CPU, 0.99, Health.CRITICAL, "cpu at 99% of limit (threshold 98%)"),
    (Resource.PIDS, 0.85, Health.DEGRADED, "pids at 85% of limit (threshold 80%)"),
    (Resource.PIDS, 0.96, Health.CRITICAL, "pids at 96% of limit (threshold 95%)"),
]


@pytest.mark.parametrize(
    ("resource", "fraction", "severity", "text"), PRESSURE_CASES,
    ids=[f"{r.value}-{s.value}" for r, _, s, _ in PRESSURE_CASES],
)
def test_resource_pressure_severity(
    resource: Resource, fraction: float, severity: Health, text: str
) -> None:
    cls = run(state(), _usage_for(resource, fraction))
    assert cls is not None
    assert cls.failure is Failure.RESOURCE_PRESSURE
    assert cls.severity is severity
    assert cls.resource is resource
    assert cls.evidence == (text,)


@pytest.mark.parametrize("resource", [Resource.MEMORY, Resource.CPU, Resource.PIDS],
                         ids=["memory", "cpu", "pids"])
def test_below_degraded_threshold_is_no_pressure(resource: Resource) -> None:
    assert run(state(), _usage_for(resource, 0.5)) is None


def test_threshold_boundaries_are_inclusive() -> None:
    at_lo = run(state(), Usage(t=NOW, pids=80, pids_limit=100))  # exactly pids_degraded
    at_hi = run(state(), Usage(t=NOW, pids=95, pids_limit=100))  # exactly pids_critical
    assert at_lo is not None and at_lo.severity is Health.DEGRADED
    assert at_hi is not None and at_hi.severity is Health.CRITICAL


def test_unlimited_memory_is_never_pressure() -> None:
    assert run(state(), Usage(t=NOW, mem_bytes=10**12, mem_limit_bytes=None)) is None


def test_no_usage_sample_is_no_pressure() -> None:
    assert run(state(), None) is None


def test_worst_resource_wins_pressure() -> None:
    u = Usage(t=NOW, cpu_fraction=0.92, mem_bytes=int(0.97 * 256 * MIB),
              mem_limit_bytes=256 * MIB)
    cls = run(state(), u)
    assert cls is not None
    assert (cls.severity, cls.resource) == (Health.CRITICAL, Resource.MEMORY)
    found = pressure(u, TH)
    assert [(s, r) for s, r, _ in found] == [(Health.CRITICAL, Resource.MEMORY),
                                             (Health.DEGRADED, Resource.CPU)]


def test_pressure_thresholds_come_from_settings() -> None:
    th = ThresholdSettings(memory_degraded=0.5, memory_critical=0.6)
    cls = classify(state(), mem_usage(0.55), (), NOW, CFG, th)
    assert cls is not None and cls.severity is Health.DEGRADED


# --- predicted exhaustion -----------------------------------------------------------------


def test_alarmed_forecast_is_predicted_exhaustion() -> None:
    cls = run(state(), mem_usage(0.5), (ALARMED,))
    assert cls is not None
    assert cls.failure is Failure.PREDICTED_EXHAUSTION
    assert cls.severity is Health.CRITICAL
    assert cls.resource is Resource.MEMORY
    assert cls.evidence == ("memory full in ~7 min", "now 191 MiB of 256 MiB")


def test_unalarmed_forecast_is_not_a_failure() -> None:
    assert run(state(), mem_usage(0.5), (QUIET,)) is None


def test_alarm_without_eta_is_not_a_failure() -> None:
    f = ForecastView(Resource.MEMORY, eta_s=None, alarm=True)
    assert run(state(), None, (f,)) is None


def test_host_resource_name_reads_as_words() -> None:
    f = ForecastView(Resource.HOST_DISK, eta_s=7200.0, alarm=True, limit=1e12, value=9e11)
    cls = run(state(), None, (f,))
    assert cls is not None and cls.resource is Resource.HOST_DISK
    assert cls.evidence[0] == "host disk full in ~2.0 h"


def test_first_alarmed_forecast_is_the_one_reported() -> None:
    pids = ForecastView(Resource.PIDS, eta_s=100.0, alarm=True, limit=100, value=80)
    cls = run(state(), None, (QUIET, pids, ALARMED))
    assert cls is not None and cls.resource is Resource.PIDS


# --- precedence ---------------------------------------------------------------------------

PRECEDENCE = [
    ("crash_loop-over-oom",
     state(status="exited", exit_code=137, oom_killed=True, deaths=(NOW - 1,) * 5),
     Failure.CRASH_LOOP),
    ("oom-over-crashed", state(status="exited", exit_code=137, oom_killed=True),
     Failure.OOM_KILLED),
    ("crashed-over-unhealthy", state(status="exited", exit_code=1, health="unhealthy"),
     Failure.CRASHED),
    ("unhealthy-over-forecast", state(health="unhealthy"), Failure.UNHEALTHY),
    ("forecast-over-pressure", state(), Failure.PREDICTED_EXHAUSTION),
]


@pytest.mark.parametrize(("c", "want"), [(c, w) for _, c, w in PRECEDENCE],
                         ids=[i for i, _, _ in PRECEDENCE])
def test_precedence_most_urgent_failure_wins(c: ContainerState, want: Failure) -> None:
    cls = run(c, mem_usage(0.99), (ALARMED,))
    assert cls is not None and cls.failure is want


# --- assess -------------------------------------------------------------------------------


def test_assess_healthy_has_no_reasons() -> None:
    a, cls = assess(state(health="healthy"), mem_usage(0.2), (), NOW, CFG, TH)
    assert cls is None
    assert a.health is Health.HEALTHY
    assert a.reasons == ()


def test_assess_failure_sets_health_and_reason() -> None:
    c = state(health="unhealthy", health_failing_streak=3, health_last_output="boom")
    a, cls = assess(c, None, (), NOW, CFG, TH)
    assert cls is not None and cls.failure is Failure.UNHEALTHY
    assert a.health is Health.CRITICAL
    assert a.reasons == ("unhealthy: healthcheck failing 3 times in a row; last output 'boom'",)


def test_assess_degraded_pressure() -> None:
    a, _ = assess(state(), mem_usage(0.9), (), NOW, CFG, TH)
    assert a.health is Health.DEGRADED
    assert a.reasons == ("resource_pressure: memory at 90% of limit (threshold 85%)",)


def test_assess_clean_exit_is_unknown_with_status() -> None:
    a, cls = assess(state(status="exited", exit_code=0), None, (), NOW, CFG, TH)
    assert cls is None
    assert a.health is Health.UNKNOWN
    assert a.reasons == ("exited (exit code 0)",)


def test_assess_starting_healthcheck_is_unknown() -> None:
    a, _ = assess(state(health="starting"), None, (), NOW, CFG, TH)
    assert a.health is Health.UNKNOWN
    assert a.reasons == ("healthcheck starting",)


def test_assess_lists_unalarmed_forecast_as_a_reason_but_stays_healthy() -> None:
    a, cls = assess(state(), mem_usage(0.2), (QUIET,), NOW, CFG, TH)
    assert cls is None
    assert a.health is Health.HEALTHY
    assert a.reasons == ("memory full in ~7 min",)


def test_assess_does_not_repeat_the_classified_forecast() -> None:
    cpu = ForecastView(Resource.CPU, eta_s=30.0)
    a, cls = assess(state(), None, (ALARMED, cpu), NOW, CFG, TH)
    assert cls is not None and cls.resource is Resource.MEMORY
    assert a.reasons[0].startswith("predicted_exhaustion: memory full in ~7 min")
    assert a.reasons[1:] == ("cpu full in ~30 s",)


def test_assess_skips_forecasts_without_eta() -> None:
    a, _ = assess(state(), None, (ForecastView(Resource.PIDS, eta_s=None),), NOW, CFG, TH)
    assert a.reasons == ()


# --- eta_text -----------------------------------------------------------------------------

ETA = [
    (5.0, "~5 s"),
    (89.4, "~89 s"),
    (90.0, "~2 min"),
    (412.0, "~7 min"),
    (5399.0, "~90 min"),
    (5400.0, "~1.5 h"),
    (86400.0, "~24.0 h"),
]


@pytest.mark.parametrize(("eta", "text"), ETA, ids=[t for _, t in ETA])
def test_eta_text_rounds_for_humans(eta: float, text: str) -> None:
    assert eta_text(eta) == text


@pytest.mark.parametrize(
    ("resource", "value", "text"),
    [(Resource.MEMORY, 64 * 2**20, "64 MiB"), (Resource.HOST_DISK, 3 * 2**30, "3.0 GiB"),
     (Resource.CPU, 0.5, "50%"), (Resource.PIDS, 12.0, "12 pids")],
    ids=["memory-mib", "disk-gib", "cpu-percent", "pids-count"],
)
def test_amounts_are_in_the_unit_people_read(resource: Resource, value: float, text: str) -> None:
    assert classify_mod.amount(resource, value) == text


def test_forecast_evidence_gives_the_interval_when_known() -> None:
    f = ForecastView(Resource.MEMORY, 420.0, 300.0, 600.0, True, 256 * 2**20, 200 * 2**20)
    assert classify_mod.forecast_evidence(f) == (
        "memory full in ~7 min (between ~5 min and ~10 min)", "now 200 MiB of 256 MiB")
