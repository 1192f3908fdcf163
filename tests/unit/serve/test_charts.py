"""healthd.serve.charts and .ui: the dashboard's JSON from real trackers, and its files."""

from __future__ import annotations

import pytest

from healthd.core.model import ContainerState, Resource, Usage
from healthd.foresight.settings import ForecastSettings
from healthd.foresight.tracker import Foresight
from healthd.observe.containers import Limits
from healthd.observe.memory import Tracked
from healthd.serve import charts, ui
from healthd.serve.metrics import Metrics

T0 = 1_800_000_000.0
LIMIT = 64 * 2**20


def leaking(n: int) -> tuple[Foresight, Tracked]:
    """A container whose memory grows 1 MiB a second towards 64 MiB, ``n`` samples of it."""
    # step_s=0: the forecaster takes every one of these 1 s samples.
    f = Foresight(ForecastSettings(horizon_s=120.0, min_samples=10, step_s=0), Metrics())
    t = Tracked(state=ContainerState(id="c" * 64, name="leaky"), limits=Limits(None, None, None))
    for i in range(n):
        u = Usage(t=T0 + i, cpu_fraction=0.1, mem_bytes=(10 + i) * 2**20, mem_limit_bytes=LIMIT)
        t.forecasts = f.observe(t.state.id, t.state.name, u)
    return f, t


def test_series_of_a_leak_has_its_samples_limit_eta_and_a_forecast_line_to_the_limit() -> None:
    f, t = leaking(40)
    try:
        got = charts.series(f.trackers, [t], lambda cid: (), 120.0, {"container": "leaky"})
    finally:
        f.close()
    mem = next(s for s in got["series"] if s["resource"] == "memory")
    assert len(mem["points"]) == 40 and mem["points"][-1] == [T0 + 39, 49 * 2**20]
    assert mem["limit"] == LIMIT
    assert mem["eta_s"] is not None and 5 < mem["eta_s"] < 30  # 15 MiB left at 1 MiB/s
    assert mem["lower_s"] <= mem["eta_s"] <= mem["upper_s"]
    start, end = mem["forecast"][0], mem["forecast"][-1]
    assert start == pytest.approx([T0 + 39, 49 * 2**20])
    assert end == pytest.approx([T0 + 39 + mem["eta_s"], LIMIT]), "to the limit at the ETA"
    assert {s["resource"] for s in got["series"]} == {"memory", "cpu"}


def test_series_thins_a_long_ring_but_keeps_the_newest_sample() -> None:
    f, t = leaking(30)
    try:
        tr = f.trackers[(t.state.id, Resource.MEMORY)]
        for i in range(30, 1000):
            tr.ring.append(T0 + i, float(i))
        got = charts.one_series(Resource.MEMORY, tr, None, 60.0)
    finally:
        f.close()
    assert len(got["points"]) <= charts.MAX_POINTS + 1
    assert got["points"][-1] == [T0 + 999, 999.0]
    assert got["limit"] is None and got["eta_s"] is None


def test_signal_forecasts_give_their_own_limit() -> None:
    f, t = leaking(12)
    try:
        fc = f._track(t.state.id, Resource.ERRORS, T0 + 12, 0.02, 0.05)
        got = charts.series(f.trackers, [t], lambda cid: (fc,), 60.0, {"container": "leaky"})
    finally:
        f.close()
    errors = next(s for s in got["series"] if s["resource"] == "errors")
    assert errors["limit"] == 0.05 and errors["value"] == 0.02


@pytest.mark.parametrize(("query", "message"), [
    ({}, "container: give"),
    ({"container": "nope"}, "no watched container named 'nope'"),
], ids=["missing", "unknown"])
def test_series_names_the_bad_parameter(query: dict[str, str], message: str) -> None:
    f, t = leaking(1)
    try:
        with pytest.raises(charts.BadQuery, match=message):
            charts.series(f.trackers, [t], lambda cid: (), 60.0, query)
    finally:
        f.close()


@pytest.mark.parametrize("limit", ["0", "-1", "x", "99999"])
def test_history_refuses_a_limit_out_of_range(limit: str) -> None:
    with pytest.raises(charts.BadQuery, match="limit: a whole number"):
        charts.history(None, {"limit": limit})  # type: ignore[arg-type]  # never reached


def test_a_steady_series_gets_a_trend_line_from_its_last_sample() -> None:
    f = Foresight(ForecastSettings(min_samples=10, step_s=0), Metrics())
    t = Tracked(state=ContainerState(id="s" * 64, name="steady"), limits=Limits(None, None, None))
    try:
        for i in range(20):
            t.forecasts = f.observe(t.state.id, "steady", Usage(
                t=T0 + i, mem_bytes=30 * 2**20 + (i % 2) * 4096, mem_limit_bytes=LIMIT))
        got = charts.series(f.trackers, [t], lambda cid: (), 120.0, {"container": "steady"})
    finally:
        f.close()
    mem = next(s for s in got["series"] if s["resource"] == "memory")
    assert mem["eta_s"] is None
    assert mem["forecast"][0] == [T0 + 19, mem["points"][-1][1]]
    assert abs(mem["forecast"][-1][1] - 30 * 2**20) < 2**20, "flat, far from the limit"


def test_forecast_line_follows_level_and_trend() -> None:
    line = charts.forecast_line(100.0, 2.0, T0, 50.0)
    assert line[0] == [T0, 100.0] and line[-1] == [T0 + 50.0, 200.0]
    assert len(line) == charts.FORECAST_STEPS + 1


def test_the_dashboard_files_ship_with_the_package() -> None:
    routes = ui.routes()
    assert set(routes) == set(ui.FILES)
    code, ctype, body = routes["/"]
    assert code == 200 and ctype.startswith("text/html")
    assert b"/ui/app.js" in body and b"/ui/app.css" in body
    assert b"http://" not in body and b"https://" not in body, "no CDN: everything is local"
    assert b"sessionStorage" in routes["/ui/app.js"][2]
    assert b"localStorage" not in routes["/ui/app.js"][2], "the token is kept per tab only"
