"""Cycles of a non-daily period (issue 9 item 2): found from the data, no alarm while the series
stays within its cycle, an alarm when the cycle's peaks climb to the limit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from healthd.foresight import cycles, forecast, holt, refit, replay
from healthd.foresight.settings import ForecastSettings

DT = 30.0
MIN = 60.0
HOUR = 3600.0
T0 = 1.7e9
PERIODS = pytest.mark.parametrize("period_s", [40 * MIN, 2 * HOUR], ids=["40min", "2h"])


def cycle(period_s: float, t: np.ndarray, shape: str = "sine") -> np.ndarray:
    """Zero-mean, amplitude 1: a sine, or a batch (on for half the cycle, off the other)."""
    x = np.sin(2 * np.pi * t / period_s + 0.7)
    return np.asarray(x if shape == "sine" else np.tanh(3 * x))


def alarms(values: np.ndarray, horizon_s: float = 600.0) -> list[bool]:
    """The raised alarm after each sample, through replay: the daemon's step, refit and apply."""
    rows = zip((T0 + DT * np.arange(values.size)).tolist(), values.tolist(), strict=True)
    return [r["alarm"] for r in replay.replay(rows, 1.0, ForecastSettings(horizon_s=horizon_s),
                                              None)]


@PERIODS
@pytest.mark.parametrize("shape", ["sine", "batch"])
def test_the_period_and_profile_are_found_from_the_data(period_s, shape):
    step = 120.0
    t = T0 + step * np.arange(1080)
    rng = np.random.default_rng(1)
    v = 0.7 + 0.1 * cycle(period_s, t, shape) + 2e-6 * (t - T0) + rng.normal(0, 0.005, t.size)
    found = cycles.learn(v, T0, step, 20 * MIN, 12 * HOUR, 0.5)
    assert found is not None
    assert found.period_s == pytest.approx(period_s, rel=0.01)
    assert max(found.profile) - min(found.profile) == pytest.approx(0.2, rel=0.25)
    assert abs(sum(found.profile)) < 1e-9
    assert len(found.profile) * found.step_s == pytest.approx(found.period_s)


@pytest.mark.parametrize("kind", ["noise", "random-walk", "linear-leak", "gc-sawtooth"])
def test_no_cycle_is_invented(kind):
    """Nor is a GC sawtooth taken for one: its teeth are the GC guard's (alarm.py)."""
    rng = np.random.default_rng(2)
    n = 1080
    if kind == "gc-sawtooth":  # 40-minute teeth, 20 buckets each
        v = 0.5 + 0.3 * (np.arange(n) % 20) / 20 + rng.normal(0, 0.005, n)
    elif kind == "noise":
        v = 0.5 + rng.normal(0, 0.01, n)
    elif kind == "random-walk":
        v = 0.5 + np.cumsum(rng.normal(0, 0.003, n))
    else:
        v = 0.3 + 0.5 * np.arange(n) / n + rng.normal(0, 0.005, n)
    assert cycles.learn(v, T0, 120.0, 20 * MIN, 12 * HOUR, 0.5) is None


@PERIODS
@pytest.mark.parametrize("shape", ["sine", "batch"])
def test_a_cycle_peaking_near_the_limit_does_not_alarm_once_learnt(period_s, shape):
    # 60 % to 96 % of the limit, every period, for a day; the rising half climbs at up to
    # 0.18 * 2 pi / period per second: a leak's pace, were it not the cycle's.
    rng = np.random.default_rng(4)
    t = np.arange(0.0, 24 * HOUR, DT)
    v = 0.78 + 0.18 * cycle(period_s, t, shape) + rng.normal(0, 0.003, t.size)
    raised = alarms(v)
    learnt = int((3 * period_s + 2 * HOUR) / DT)  # three cycles seen, then up to two refits
    assert not any(raised[learnt:])


@PERIODS
def test_a_cycle_whose_peaks_climb_alarms_before_exhaustion(period_s):
    # The same cycle, 55 % to 85 % for 10 h, then its level rises until a peak hits the limit.
    rng = np.random.default_rng(5)
    warm, leak_s = 10 * HOUR, 8 * HOUR
    t = np.arange(0.0, warm + 2 * leak_s, DT)
    rise = 0.2 * np.clip(t - warm, 0, None) / leak_s
    v = 0.7 + 0.15 * cycle(period_s, t) + rise + rng.normal(0, 0.003, t.size)
    end = int(np.flatnonzero(v >= 1.0)[0])
    v = v[: end + 1]
    raised = alarms(v)
    learnt = int((3 * period_s + 2 * HOUR) / DT)
    assert not any(raised[learnt: int(warm / DT)])  # quiet while the cycle is only a cycle
    first = next(i for i, a in enumerate(raised) if a)
    assert (end - first) * DT >= 600.0  # at least one horizon before the limit


def test_a_cycle_longer_than_half_a_day_is_learnt_from_the_daily_series():
    # 16 h from 60 % to 96 % of the limit, every minute for four days, at a one-hour horizon:
    # each rising half climbs 0.36 in 8 h, which Holt and the drift line took for a leak on
    # every cycle (the fine series holds 36 h, not three such cycles).
    period_s = 16 * HOUR
    rng = np.random.default_rng(6)
    t = np.arange(0.0, 4 * 24 * HOUR, MIN)
    v = 0.78 + 0.18 * cycle(period_s, t) + rng.normal(0, 0.003, t.size)
    rows = zip((T0 + t).tolist(), v.tolist(), strict=True)
    raised = [r["alarm"] for r in replay.replay(rows, 1.0, ForecastSettings(horizon_s=HOUR),
                                                None)]
    learnt = int((3 * period_s + 2 * HOUR) / MIN)
    assert any(raised[:learnt])  # before three cycles were seen it did alarm
    assert not any(raised[learnt:])


@pytest.mark.parametrize(("period_h", "learnt"), [(16.0, True), (24.0, False)],
                         ids=["16h-a-cycle", "24h-the-daily-profiles"])
def test_the_long_search_leaves_the_daily_period_to_the_daily_profile(period_h, learnt):
    step = 900.0  # the daily profile's 15-minute buckets, four days of them
    t = T0 + step * np.arange(384)
    v = 0.6 + 0.1 * cycle(period_h * HOUR, t) + np.random.default_rng(7).normal(0, 0.005, 384)
    fine = 0.6 + np.random.default_rng(8).normal(0, 0.005, 1080)  # no short cycle in it
    request = {"values": fine, "t0": T0, "step_s": 120.0, "min_s": 20 * MIN,
               "max_s": 12 * HOUR, "strength": 0.5, "known_s": 0.0, "long_values": v,
               "long_t0": T0, "long_step_s": step, "daily_s": 24 * HOUR}
    fit = refit.fit(0.6 + np.random.default_rng(9).normal(0, 0.01, 60), 10.0,
                    t_end=float(t[-1]), cycle=request)
    assert fit.cycle is learnt
    if learnt:
        assert len(fit.season) * fit.season_step_s == pytest.approx(period_h * HOUR, rel=0.02)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cycle_min_s": 300.0}, "cycle_min_s (300.0) must be >= 4 buckets of cycle_bucket_s"),
        ({"cycle_bucket_s": 0.0}, "cycle_bucket_s (0.0, which must be > 0)"),
        ({"cycle_max_s": 600.0}, "cycle_max_s must be 0 (off) or >= cycle_min_s (1200.0)"),
        ({"cycle_max_s": -1.0}, "cycle_max_s must be 0 (off) or >= cycle_min_s"),
        ({"cycle_buckets": 8}, "cycle_buckets must be an integer >= 16, got 8"),
        ({"cycle_strength": 0.0}, "cycle_strength must be in (0, 1], got 0.0"),
        ({"cycle_strength": 1.5}, "cycle_strength must be in (0, 1], got 1.5"),
    ],
    ids=["min-too-short", "bucket-zero", "max-below-min", "max-negative", "few-buckets",
         "strength-zero", "strength-over-one"],
)
def test_cycle_settings_are_checked_with_clear_messages(changes, message):
    errors = ForecastSettings(**changes).validate()
    assert any(message in e for e in errors), errors


def test_cycles_can_be_turned_off():
    assert ForecastSettings(cycle_max_s=0.0).validate() == []
    rng = np.random.default_rng(6)
    t = np.arange(0.0, 12 * HOUR, DT)
    v = 0.78 + 0.18 * cycle(40 * MIN, t) + rng.normal(0, 0.003, t.size)
    rows = zip((T0 + t).tolist(), v.tolist(), strict=True)
    seen = list(replay.replay(rows, 1.0, ForecastSettings(cycle_max_s=0.0), None))
    assert any(r["alarm"] for r in seen)  # without cycles, the rising halves alarm, as before


def test_a_cycle_no_longer_found_is_dropped_without_a_jump():
    s = ForecastSettings()
    state, _ = forecast.step(None, T0, 0.5, 1.0, s)
    profile = tuple(0.1 * np.sin(2 * np.pi * np.arange(20) / 20))
    learnt = forecast.apply_fit(state, forecast.FittedParams(
        0.2, 0.1, None, profile, T0 - 1000.0, 120.0, T0, cycle=True))
    assert learnt.season_cycle and learnt.season_top == max(profile)
    seen = learnt.level + holt.seasonal_offset(learnt, learnt.last_t)
    kept = forecast.apply_fit(learnt, forecast.FittedParams(0.2, 0.1, fitted_at=T0))
    assert kept.season == profile  # a refit without a search keeps the cycle
    dropped = forecast.apply_fit(learnt, forecast.FittedParams(0.2, 0.1, fitted_at=T0,
                                                               no_cycle=True))
    assert dropped.season == () and not dropped.season_cycle and dropped.season_top == 0.0
    assert dropped.level == pytest.approx(seen)  # level plus offset unchanged: no jump
    daily = forecast.apply_fit(dataclasses.replace(learnt, season_cycle=False),
                               forecast.FittedParams(0.2, 0.1, fitted_at=T0, no_cycle=True))
    assert daily.season == profile  # the daily profile is not the search's to drop
