"""healthd.foresight.tracker: per-container series and their gauges, across forget."""

from __future__ import annotations

from healthd.core.model import Usage
from healthd.foresight.settings import ForecastSettings
from healthd.foresight.tracker import Foresight
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
