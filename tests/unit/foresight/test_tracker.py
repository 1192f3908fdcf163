"""healthd.foresight.tracker: per-container series and their gauges, across forget."""

from __future__ import annotations

from healthd.core.model import Usage
from healthd.foresight.settings import ForecastSettings
from healthd.foresight.tracker import Foresight, Tracker
from healthd.serve.metrics import Metrics

T0 = 1_800_000_000.0


def usage(t: float) -> Usage:
    return Usage(t=t, cpu_fraction=0.01, mem_bytes=20 * 2**20, mem_limit_bytes=64 * 2**20)


def series(m: Metrics) -> set[str]:
    return {line.split(" ")[0] for line in m.render().decode().splitlines()
            if line.startswith("healthd_forecast_")}


def test_gauges_follow_the_series_through_forget_and_back() -> None:
    m = Metrics()
    f = Foresight(ForecastSettings(), m)
    try:
        for i in range(3):
            views = f.observe("c1", "web", usage(T0 + 5 * i))
        assert [v.resource.value for v in views] == ["memory", "cpu"]
        web = {'healthd_forecast_exhaustion_seconds{container="web",resource="memory"}',
               'healthd_forecast_alarm{container="web",resource="cpu"}'}
        assert web <= series(m)
        f.forget("c1", "web")
        assert not any('container="web"' in s for s in series(m))
        # The same name again (compose recreated it): its gauges come back.
        f.observe("c2", "web", usage(T0 + 20))
        assert web <= series(m)
    finally:
        f.close()


def gauge(m: Metrics, name: str, container: str, resource: str) -> float:
    want = f'{name}{{container="{container}",resource="{resource}"}} '
    line = next(ln for ln in m.render().decode().splitlines() if ln.startswith(want))
    return float(line.split(" ")[1])


def test_gauges_show_the_latest_forecast() -> None:
    m = Metrics()
    f = Foresight(ForecastSettings(min_samples=5, confirm=1, confirm_frac=0.0), m)
    try:
        for i in range(5):  # flat: no ETA
            f.observe("c1", "web", usage(T0 + 5 * i))
        assert gauge(m, "healthd_forecast_exhaustion_seconds", "web", "memory") == float("inf")
        for i in range(5, 40):  # a steep leak: a finite ETA, and the gauge follows it
            u = Usage(t=T0 + 5 * i, mem_bytes=(20 + 1 * i) * 2**20, mem_limit_bytes=64 * 2**20)
            views = f.observe("c1", "web", u)
            assert gauge(m, "healthd_forecast_exhaustion_seconds", "web", "memory") == (
                views[0].eta_s if views[0].eta_s is not None else float("inf"))
            assert gauge(m, "healthd_forecast_alarm", "web", "memory") == int(views[0].alarm)
        assert views[0].eta_s is not None and views[0].alarm
    finally:
        f.close()


def test_a_5s_sweep_feeds_the_forecaster_every_second_sample_under_a_10s_step() -> None:
    tr = Tracker(ForecastSettings(step_s=10.0))
    # Sweep times jitter: a sample a little under a step after the last taken one counts.
    times = [T0, T0 + 5.01, T0 + 9.98, T0 + 15.0, T0 + 20.02, T0 + 24.99, T0 + 30.0]
    taken = []
    for t in times:
        before = tr.state.n if tr.state else 0
        tr.observe(t, 0.5, 1.0)
        taken.append(tr.state is not None and tr.state.n > before)
    assert taken == [True, False, True, False, True, False, True]
    assert len(tr.ring) == 4


def test_a_skipped_sample_returns_the_last_verdict() -> None:
    tr = Tracker(ForecastSettings(step_s=10.0))
    first, _ = tr.observe(T0, 0.5, 1.0)
    again, _ = tr.observe(T0 + 5, 0.6, 1.0)
    assert again is first


def test_a_sample_at_the_limit_or_with_a_new_limit_is_always_taken() -> None:
    tr = Tracker(ForecastSettings(step_s=10.0))
    tr.observe(T0, 0.5, 1.0)
    fc, _ = tr.observe(T0 + 5, 1.0, 1.0)  # at the limit, between two steps
    assert fc.alarm and fc.eta_s == 0.0 and tr.state is not None and tr.state.n == 2
    tr = Tracker(ForecastSettings(step_s=10.0))
    tr.observe(T0, 0.5, 1.0)
    tr.observe(T0 + 5, 0.5, 1.0)  # 5 s after the last taken one: skipped
    assert tr.state is not None and tr.state.n == 1
    tr.observe(T0 + 7, 0.5, 2.0)  # the limit was raised: the forecast is against the new one
    assert tr.state.n == 2
    tr.observe(T0 + 9, 0.5, 2.0)  # the same limit again, 2 s on: skipped
    assert tr.state.n == 2


def test_step_0_takes_every_sample() -> None:
    tr = Tracker(ForecastSettings(step_s=0.0))
    for i in range(5):
        tr.observe(T0 + i, 0.5, 1.0)
    assert tr.state is not None and tr.state.n == 5


def test_an_interval_below_the_step_is_refused_by_name() -> None:
    errors = ForecastSettings(interval_s=5.0, step_s=10.0).validate()
    assert any(e.startswith("interval_s (5.0) must be 0 (inferred) or at least") for e in errors)
    assert ForecastSettings(interval_s=10.0, step_s=10.0).validate() == []


def test_an_alarm_takes_every_sample_so_it_releases_at_the_sweeps_pace() -> None:
    tr = Tracker(ForecastSettings(step_s=10.0, release=3))
    tr.observe(T0, 0.5, 1.0)
    fc, _ = tr.observe(T0 + 10, 1.0, 1.0)  # at the limit: an alarm at once
    assert fc.alarm
    for i in range(1, 4):  # the load is gone: three quiet 1 s sweeps clear it
        fc, _ = tr.observe(T0 + 10 + i, 0.2, 1.0)
    assert tr.state is not None and tr.state.n == 5 and not fc.alarm
    tr.observe(T0 + 14, 0.2, 1.0)  # quiet again: back to one sample a step
    assert tr.state.n == 5
