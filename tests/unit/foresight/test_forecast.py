"""The pure forecaster: values in, verdicts out; no fitting, no I/O."""

from __future__ import annotations

import math
from dataclasses import astuple, replace

import numpy as np
import pytest

from healthd.foresight import alarm, forecast, holt, reach
from healthd.foresight.forecast import FittedParams, Forecast
from healthd.foresight.holt import SeriesState
from healthd.foresight.settings import ForecastSettings

DAY = 86400.0


def run(
    values: np.ndarray, dt: float, limit: float, settings: ForecastSettings, t0: float = 1.7e9
) -> tuple[SeriesState, list[Forecast]]:
    state: SeriesState | None = None
    out = []
    for i, v in enumerate(values):
        state, fc = forecast.step(state, t0 + i * dt, float(v), limit, settings)
        out.append(fc)
    assert state is not None
    return state, out


# ---- a steady leak must alarm ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("noise", "hours_to_full", "fitted"),
    [(0.0, 2.0, False), (0.003, 2.0, False), (0.003, 8.0, False), (0.01, 6.0, True)],
    ids=["clean-2h", "noisy-2h", "noisy-8h", "noisier-6h-after-a-fit"],
)
def test_steady_leak_alarms_at_least_a_horizon_before_exhaustion(noise, hours_to_full, fitted):
    rng = np.random.default_rng(1)
    dt, settings = 10.0, ForecastSettings()
    n_flat = 360
    n_leak = int(hours_to_full * 3600 / dt)
    rate = 0.6 / n_leak  # from 0.4 to the limit 1.0
    clean = np.concatenate([np.full(n_flat, 0.4), 0.4 + rate * np.arange(1, n_leak + 1)])
    values = clean + rng.normal(0, noise, clean.size)
    if fitted:
        # As after the daemon's first refit on the flat part: statsmodels says alpha, beta ~ 0.
        state, fcs = run(values[:n_flat], dt, 1.0, settings)
        state = forecast.apply_fit(state, FittedParams(1e-8, 1e-8, fitted_at=state.last_t))
        for i in range(n_flat, values.size):
            state, fc = forecast.step(state, 1.7e9 + i * dt, float(values[i]), 1.0, settings)
            fcs.append(fc)
    else:
        _, fcs = run(values, dt, 1.0, settings)
    exhaust_i = n_flat + n_leak - 1
    first = next(i for i, f in enumerate(fcs) if f.alarm)
    assert first > n_flat, "alarmed before the leak began"
    assert (exhaust_i - first) * dt >= settings.horizon_s
    # Halfway through the leak the ETA is within 35% of the truth.
    mid = n_flat + n_leak // 2
    true_eta = (exhaust_i - mid) * dt
    eta = fcs[mid].eta_s
    assert eta is not None
    assert abs(eta - true_eta) / true_eta < 0.35
    assert fcs[mid].lower_s is not None
    assert fcs[mid].lower_s <= eta
    assert fcs[mid].upper_s is None or fcs[mid].upper_s >= eta


# ---- flat, noisy, high-but-flat and seasonal series must not --------------------------------


def _flat(rng, n):
    return np.full(n, 0.5) + rng.normal(0, 0.001, n)


def _noisy(rng, n):
    return 0.5 + rng.normal(0, 0.05, n)


def _high_flat(rng, n):
    return 0.95 + rng.normal(0, 0.01, n)


def _seasonal(rng, n):
    t = np.arange(n) * 60.0
    return 0.6 + 0.3 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.01, n)


def _spiky(rng, n):
    v = 0.6 + rng.normal(0, 0.01, n)
    v[rng.choice(n, n // 50, replace=False)] = 0.98  # bursts right under the limit
    return v


@pytest.mark.parametrize(
    "make", [_flat, _noisy, _high_flat, _seasonal, _spiky], ids=lambda f: f.__name__.strip("_")
)
@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_series_without_a_rising_trend_never_alarms(make, seed):
    rng = np.random.default_rng(seed)
    values = make(rng, 3 * 1440)  # three days at 60 s
    _, fcs = run(values, 60.0, 1.0, ForecastSettings())
    assert not any(f.alarm for f in fcs)


def test_high_flat_series_never_alarms_with_fitted_small_smoothing():
    # A fit on a flat series drives alpha and beta to ~0; the clamps must keep that harmless.
    rng = np.random.default_rng(5)
    settings = ForecastSettings()
    state, _ = run(_high_flat(rng, 100), 10.0, 1.0, settings)
    state = forecast.apply_fit(state, FittedParams(alpha=1e-8, beta=1e-9, fitted_at=state.last_t))
    alarms = []
    for v in _high_flat(rng, 5000):
        state, fc = forecast.step(state, state.last_t + 10.0, float(v), 1.0, settings)
        alarms.append(fc.alarm)
    assert not any(alarms)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.5, 0.5, 0.5], None), ([0.8, 0.7, 0.6], None), ([1.0, 1.1, 1.2], 0.0)],
    ids=["flat-none", "falling-none", "over-limit-zero"],
)
def test_eta_is_none_without_an_upward_trend_and_zero_at_the_limit(values, expected):
    _, fcs = run(np.array(values), 10.0, 1.0, ForecastSettings())
    assert fcs[-1].eta_s == expected


# ---- O(1) update ------------------------------------------------------------------------------


def test_state_size_does_not_grow_with_history():
    rng = np.random.default_rng(3)
    settings = ForecastSettings()
    short, _ = run(0.5 + rng.normal(0, 0.01, 10), 10.0, 1.0, settings)
    long, _ = run(0.5 + rng.normal(0, 0.01, 20000), 10.0, 1.0, settings)
    assert long.n == 20000
    assert len(astuple(short)) == len(astuple(long))
    assert all(not isinstance(x, (list, np.ndarray)) for x in astuple(long))
    assert long.season == short.season == ()


def test_step_is_pure_and_repeatable():
    settings = ForecastSettings()
    state, _ = run(np.linspace(0.2, 0.3, 50), 10.0, 1.0, settings)
    a = forecast.step(state, state.last_t + 10.0, 0.31, 1.0, settings)
    b = forecast.step(state, state.last_t + 10.0, 0.31, 1.0, settings)
    assert a == b
    assert state.n == 50  # the input state is untouched


def test_sample_not_newer_than_the_last_is_not_folded_in():
    settings = ForecastSettings()
    state, _ = run(np.linspace(0.2, 0.3, 50), 10.0, 1.0, settings)
    again, _ = forecast.step(state, state.last_t, 0.9, 1.0, settings)
    assert again == state


# ---- fitting ----------------------------------------------------------------------------------


def test_apply_fit_changes_how_fast_the_trend_follows():
    settings = ForecastSettings()
    base, _ = run(np.full(100, 0.5), 10.0, 1.0, settings)
    slow = forecast.apply_fit(base, FittedParams(alpha=0.05, beta=0.02, fitted_at=base.last_t))
    fast = forecast.apply_fit(base, FittedParams(alpha=0.8, beta=0.5, fitted_at=base.last_t))
    jump = [0.6] * 5
    t = base.last_t
    for v in jump:
        t += 10.0
        slow, _ = forecast.step(slow, t, v, 1.0, settings)
        fast, _ = forecast.step(fast, t, v, 1.0, settings)
    assert fast.level > slow.level + 0.05
    assert fast.trend > slow.trend


def _quiet_then(after: list[float]) -> list[SeriesState]:
    """States of a quiet series (0.5, sd 0.0005, every 60 s, fitted alpha 0.5) fed ``after``."""
    rng = np.random.default_rng(3)
    settings = ForecastSettings()
    state, _ = run(0.5 + rng.normal(0, 0.0005, 100), 60.0, 1.0, settings)
    state = forecast.apply_fit(state, FittedParams(alpha=0.5, beta=0.05, fitted_at=state.last_t))
    states = []
    for v in after:
        state, _ = forecast.step(state, state.last_t + 60.0, v, 1.0, settings)
        states.append(state)
    return states


def test_a_lone_spike_is_clipped_before_it_moves_the_level():
    spiked = _quiet_then([0.6, 0.5])
    assert spiked[0].level < 0.505  # alpha x 4 sds, not alpha x 0.1


def test_a_run_of_large_errors_on_one_side_moves_the_level_unclipped():
    # A quiet series that starts rising by 10 of its sds a sample: with every error clipped the
    # level fell further behind on each sample (0.026 behind after ten) while the sd caught up.
    ramp = [0.5 + 0.005 * k for k in range(1, 11)]
    states = _quiet_then(ramp)
    assert abs(states[-1].level - ramp[-1]) < 0.01


def test_fitted_parameters_are_clamped_to_the_configured_range():
    settings = ForecastSettings()
    base, _ = run(np.full(100, 0.5), 10.0, 1.0, settings)
    tiny = forecast.apply_fit(base, FittedParams(alpha=1e-9, beta=1e-9, fitted_at=1.0))
    floor = forecast.apply_fit(
        base, FittedParams(alpha=settings.alpha_min, beta=settings.beta_min, fitted_at=1.0)
    )
    a, _ = forecast.step(tiny, base.last_t + 10, 0.7, 1.0, settings)
    b, _ = forecast.step(floor, base.last_t + 10, 0.7, 1.0, settings)
    assert (a.level, a.trend) == (b.level, b.trend)


def test_apply_fit_with_a_seasonal_profile_keeps_the_current_reading_continuous():
    settings = ForecastSettings()
    base, _ = run(np.full(100, 0.5), 900.0, 1.0, settings, t0=0.0)
    profile = tuple(0.1 * math.sin(2 * math.pi * k / 96) for k in range(96))
    fit = FittedParams(0.2, 0.05, 0.1, profile, 0.0, 900.0, base.last_t)
    seasonal = forecast.apply_fit(base, fit)
    assert seasonal.season == profile
    offset = holt.seasonal_offset(seasonal, base.last_t)
    assert offset != 0.0
    assert seasonal.level + offset == pytest.approx(base.level)
    _, after = forecast.step(seasonal, base.last_t + 900.0, 0.5, 1.0, settings)
    assert after.seasonal


def test_a_refused_daily_fit_drops_the_daily_profile_and_is_not_retried_at_once():
    settings = ForecastSettings()
    base, _ = run(np.full(100, 0.5), 900.0, 1.0, settings, t0=0.0)
    profile = tuple(0.1 * math.sin(2 * math.pi * k / 96) for k in range(96))
    daily = forecast.apply_fit(base, FittedParams(0.2, 0.05, 0.1, profile, 0.0, 900.0,
                                                  base.last_t))
    later = daily.last_t + 7 * 3600
    refused = forecast.apply_fit(daily, FittedParams(0.2, 0.05, fitted_at=later, no_season=True))
    assert (refused.season, refused.season_top, refused.gamma) == ((), 0.0, None)
    assert refused.level == pytest.approx(daily.level + holt.seasonal_offset(daily, daily.last_t))
    assert not forecast.season_due(refused, 10_000, later + 60, settings)


def test_a_refused_daily_fit_leaves_a_learnt_cycle_alone():
    settings = ForecastSettings()
    base, _ = run(np.full(100, 0.5), 120.0, 1.0, settings, t0=0.0)
    profile = tuple(0.1 * math.sin(2 * math.pi * k / 30) for k in range(30))
    cyc = forecast.apply_fit(base, FittedParams(0.2, 0.05, None, profile, 0.0, 240.0,
                                                base.last_t, cycle=True))
    after = forecast.apply_fit(cyc, FittedParams(0.2, 0.05, fitted_at=cyc.last_t,
                                                 no_season=True))
    assert after.season == profile and after.season_cycle


def test_seasonal_profile_makes_a_daily_cycle_predictable():
    # With the profile, the one-step error on a pure daily cycle is just the noise.
    rng = np.random.default_rng(4)
    settings = ForecastSettings()
    step_s = 900.0
    profile = tuple(0.2 * math.sin(2 * math.pi * k / 96) for k in range(96))
    t = np.arange(96 * 3) * step_s
    values = (
        0.5 + np.array([profile[int(x // step_s) % 96] for x in t]) + rng.normal(0, 0.002, t.size)
    )
    plain, _ = run(values, step_s, 1.0, settings, t0=0.0)
    first = forecast.step(None, 0.0, float(values[0]), 1.0, settings)[0]
    seasonal = forecast.apply_fit(first, FittedParams(0.2, 0.05, 0.1, profile, 0.0, step_s, 0.0))
    for i in range(1, t.size):
        seasonal, _ = forecast.step(seasonal, float(t[i]), float(values[i]), 1.0, settings)
    assert math.sqrt(seasonal.var) < 0.25 * math.sqrt(plain.var)


# ---- alarm confirmation and release -----------------------------------------------------------


@pytest.mark.parametrize(
    ("confirm", "release"), [(1, 1), (3, 3), (5, 2)], ids=["c1-r1", "c3-r3", "c5-r2"]
)
def test_alarm_is_raised_after_confirm_alarming_ticks_and_cleared_after_release_quiet_ones(
    confirm, release
):
    # confirm_frac 0: ticks alone (the duration part is tested below).
    settings = ForecastSettings(confirm=confirm, release=release, min_samples=10, confirm_frac=0.0)
    rng = np.random.default_rng(9)
    # Leak, plateau, leak, drop: the tick condition switches on and off several times.
    parts = [
        np.full(100, 0.3),
        np.linspace(0.3, 0.9, 200),
        np.full(60, 0.9),
        np.linspace(0.9, 0.98, 30),
        np.full(60, 0.4),
    ]
    values = np.concatenate(parts) + rng.normal(0, 0.002, sum(p.size for p in parts))
    _, fcs = run(values, 10.0, 1.0, settings)
    streak = calm = 0
    alarm = False
    for f in fcs:
        if f.eta_s == 0.0:
            pass  # at the limit: neither raises nor clears
        elif f.alarming:
            streak, calm = streak + 1, 0
        else:
            streak, calm = 0, calm + 1
        if not alarm and streak >= confirm:
            alarm = True
        elif alarm and calm >= release:
            alarm = False
        assert f.alarm == alarm
    assert any(f.alarm for f in fcs)
    assert not fcs[-1].alarm


@pytest.mark.parametrize("dt", [0.5, 10.0, 300.0], ids=["0.5s", "10s", "300s"])
def test_alarm_waits_for_confirm_frac_of_the_horizon_whatever_the_sampling_interval(dt):
    # A leak from the first sample: the tick condition holds from min_samples on.
    settings = ForecastSettings(horizon_s=40 * dt, min_samples=10, confirm=1, confirm_frac=0.25,
                                confirm_eta_frac=0.0)
    values = np.linspace(0.3, 1.0, 200)
    _, fcs = run(values, dt, 1.0, settings)
    first_alarming = next(i for i, f in enumerate(fcs) if f.alarming)
    first_alarm = next(i for i, f in enumerate(fcs) if f.alarm)
    assert all(f.alarming for f in fcs[first_alarming : first_alarm + 1])
    assert (first_alarm - first_alarming) * dt == pytest.approx(0.25 * settings.horizon_s)


def test_fast_leak_with_a_short_horizon_still_alarms_seconds_ahead():
    # The integration test's setting: 0.5 s samples, 10 s horizon, ~25 s from empty to the limit.
    settings = ForecastSettings(horizon_s=10.0, min_samples=10)
    rng = np.random.default_rng(2)
    values = np.minimum(0.02 + 0.04 * np.arange(60) * 0.5 + rng.normal(0, 0.003, 60), 1.2)
    _, fcs = run(values, 0.5, 1.0, settings)
    full = next(i for i, v in enumerate(values) if v >= 1.0)
    first = next(i for i, f in enumerate(fcs) if f.alarm)
    assert (full - first) * 0.5 >= 10.0


def test_no_alarm_before_min_samples():
    settings = ForecastSettings(min_samples=50, confirm=1)
    _, fcs = run(np.linspace(0.5, 0.99, 49), 10.0, 1.0, settings)
    assert not any(f.alarm or f.alarming for f in fcs)


def test_alarm_raised_on_the_way_up_stays_raised_at_the_limit():
    settings = ForecastSettings(min_samples=10)
    values = np.concatenate([np.full(50, 0.3), np.linspace(0.3, 1.0, 150), np.full(30, 1.05)])
    _, fcs = run(values, 10.0, 1.0, settings)
    assert fcs[199].alarm
    assert all(f.alarm for f in fcs[200:])


# ---- garbage-collected (sawtooth) series -------------------------------------------------------


def _sawtooth(rng, n, dt, period_s, amp, floor_rise_per_s, base=0.55, noise=0.004):
    t = np.arange(n) * dt
    tooth = amp * (t % period_s) / period_s
    return base + tooth + floor_rise_per_s * t + rng.normal(0, noise, n)


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_gc_sawtooth_without_a_rising_floor_never_alarms(seed):
    # Teeth of 0.35 over 20 min topping out at 0.9: near each top the rise alone would reach the
    # limit in ~3.4 min, well within horizon + lead, but the collection always comes first. The
    # cycle is known once three falls were seen (two regular gaps); from then on, never an alarm.
    # (Before that nothing tells the first tooth from a leak, and it may alarm.)
    rng = np.random.default_rng(seed)
    values = _sawtooth(rng, 2 * 2880, 30.0, 1200.0, 0.35, 0.0)
    _, fcs = run(values, 30.0, 1.0, ForecastSettings())
    learned = 5 * 1200 // 30
    assert not any(f.alarm for f in fcs[learned:])


def test_gc_sawtooth_alarms_without_the_gc_guard():
    # The same series shows why the guard exists: without it the teeth raise alarms.
    rng = np.random.default_rng(0)
    values = _sawtooth(rng, 2 * 2880, 30.0, 1200.0, 0.35, 0.0)
    _, fcs = run(values, 30.0, 1.0, ForecastSettings(gc_drop_sigma=0.0))
    assert any(f.alarm for f in fcs)


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_gc_sawtooth_with_a_rising_floor_alarms_before_exhaustion(seed):
    # Same teeth, the floor rising 0.1 per hour from 0.35: a tooth crosses the limit within its
    # cycle, and that tooth must be announced at least a horizon ahead.
    rng = np.random.default_rng(seed)
    settings = ForecastSettings()
    values = _sawtooth(rng, 2 * 2880, 30.0, 1200.0, 0.35, 0.1 / 3600, base=0.2)
    full = next(i for i, v in enumerate(values) if v >= 1.0)
    _, fcs = run(values[: full + 1], 30.0, 1.0, settings)
    first = next(i for i, f in enumerate(fcs[4 * 40 :], start=4 * 40) if f.alarm)
    assert (full - first) * 30.0 >= settings.horizon_s


def test_an_overdue_collection_no_longer_guards():
    # Regular teeth, then the collector stops freeing: the rise must alarm once the expected
    # fall is gc_overdue cycles late.
    rng = np.random.default_rng(3)
    settings = ForecastSettings()
    teeth = _sawtooth(rng, 1440, 30.0, 1200.0, 0.2, 0.0, base=0.3)
    rise = teeth[-1] + 0.2 / 1200 * 30.0 * np.arange(1, 300) + rng.normal(0, 0.004, 299)
    values = np.concatenate([teeth, rise])
    full = next(i for i, v in enumerate(values) if v >= 1.0)
    _, fcs = run(values[: full + 1], 30.0, 1.0, settings)
    assert not any(f.alarm for f in fcs[4 * 40 : 1440])
    first = next(i for i, f in enumerate(fcs[1440:], start=1440) if f.alarm)
    assert (full - first) * 30.0 >= settings.horizon_s


def test_a_collection_due_below_the_limit_guards_whatever_the_eta():
    c = alarm.Cycle(fall_t=1000.0, cycle_s=100.0, regular=2)
    assert alarm.before_next_fall(c, 1050.0, 30.0, 0.5)  # the limit comes before the fall is due
    assert not alarm.before_next_fall(c, 1050.0, 30.0, 0.5, headroom=0.05)
    assert alarm.before_next_fall(c, 1050.0, 30.0, 0.5, headroom=-0.01)  # collections at the limit
    assert alarm.before_next_fall(c, 1200.0, 30.0, 0.5, headroom=0.05)  # overdue: no guard


def test_a_collection_higher_than_the_others_lifts_the_height_guard():
    # Teeth collected at 0.8 four times, then one collected at 0.95: the tops are rising (a
    # fast leak under the teeth), so the height they came at no longer says the next one
    # is collected below the limit.
    rng = np.random.default_rng(5)
    steady = _sawtooth(rng, 5 * 40, 30.0, 1200.0, 0.3, 0.0, base=0.5)
    state, _ = run(steady, 30.0, 1.0, ForecastSettings())
    assert state.gc_top == pytest.approx(0.8, abs=0.03) and not state.gc_top_rose
    higher = 0.5 + 0.45 * np.arange(40) / 40 + rng.normal(0, 0.004, 40)
    t = state.last_t
    for v in np.concatenate([higher, [0.5, 0.51]]):
        t += 30.0
        state, _ = forecast.step(state, t, float(v), 1.0, ForecastSettings())
    assert state.gc_top_rose


# ---- refit scheduling and settings ------------------------------------------------------------


def test_refit_is_due_after_min_samples_then_every_refit_period():
    settings = ForecastSettings(fit_min_samples=20, refit_every_s=100.0)
    state, _ = run(np.full(19, 0.5), 10.0, 1.0, settings, t0=0.0)
    assert not forecast.refit_due(state, state.last_t, settings)
    state, _ = forecast.step(state, 190.0, 0.5, 1.0, settings)
    assert forecast.refit_due(state, 190.0, settings)
    state = forecast.mark_refit(state, 190.0)
    assert not forecast.refit_due(state, 289.0, settings)
    assert forecast.refit_due(state, 290.0, settings)


def test_seasonal_fit_is_due_only_with_enough_buckets_and_an_old_profile():
    settings = ForecastSettings(season_buckets=96, season_min_cycles=2)
    state = forecast.step(None, 0.0, 0.5, 1.0, settings)[0]
    assert not forecast.season_due(state, 191, 0.0, settings)
    assert forecast.season_due(state, 192, 0.0, settings)
    state = replace(state, season_fitted_at=0.0)
    assert not forecast.season_due(state, 192, settings.season_refit_every_s - 1, settings)
    assert forecast.season_due(state, 192, settings.season_refit_every_s, settings)
    off = ForecastSettings(season_s=0.0)
    assert forecast.season_len(off) is None
    assert not forecast.season_due(state, 10_000, 1e9, off)


def test_default_settings_are_valid():
    assert ForecastSettings().validate() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("horizon_s", 0.0),
        ("confirm", 0),
        ("alpha", 1.5),
        ("beta_min", 0.0),
        ("z", float("nan")),
        ("window", 3),
        ("season_keep_cycles", 1),
        ("confirm_frac", -0.1),
        ("gc_overdue", -1.0),
        ("peak_blocks", -1),
        ("season_strength", 1.5),
        ("gc_top_z", -1.0),
    ],
    ids=[
        "horizon-zero",
        "confirm-zero",
        "alpha-over-one",
        "beta-min-zero",
        "z-nan",
        "window-tiny",
        "keep-below-min",
        "confirm-frac-negative",
        "gc-overdue-negative",
        "peak-blocks-negative",
        "season-strength-over-one",
        "gc-top-z-negative",
    ],
)
def test_validate_names_the_bad_field(field, value):
    problems = ForecastSettings(**{field: value}).validate()
    assert problems
    assert any(p.startswith(field) for p in problems)


def _fast_leak(fill_s: float) -> list[tuple[float, float]]:
    """30 min flat at 30% of the limit, then a straight climb to it in ``fill_s`` (5 s steps)."""
    noise = np.random.default_rng(7)
    rows = [(1.7e9 + i, 0.3 + noise.normal(0, 0.005)) for i in range(0, 1800, 5)]
    rows += [(1.7e9 + 1800 + i, 0.3 + 0.7 * i / fill_s + noise.normal(0, 0.005))
             for i in range(0, int(fill_s), 5)]
    return rows


def _first_alarm_lead(rows: list[tuple[float, float]], settings: ForecastSettings) -> float | None:
    state = None
    end = rows[-1][0] + 5
    for t, v in rows:
        state, fc = forecast.step(state, t, v, 1.0, settings)
        if fc.alarm:
            return end - t
    return None


def test_confirmation_capped_by_the_eta_catches_a_five_minute_leak() -> None:
    rows = _fast_leak(300)
    # Confirmation within a quarter of the ETA is the default: a 5-minute fill is caught.
    assert _first_alarm_lead(rows, ForecastSettings(confirm_eta_frac=0.0)) is None
    lead = _first_alarm_lead(rows, ForecastSettings())
    assert lead is not None and lead >= 30


def _random_rising_state(rng: np.random.Generator) -> tuple[SeriesState, float]:
    """A rising, non-seasonal state below its limit, over many orders of magnitude."""
    limit = float(10 ** rng.uniform(-2, 11))
    level = limit * float(rng.choice([0.0, rng.uniform(0, 1), 1 - 10 ** rng.uniform(-9, -1)]))
    state = SeriesState(
        level=level,
        trend=limit * float(10 ** rng.uniform(-14, 0)),
        var=float(rng.choice([0.0, (limit * 10 ** rng.uniform(-9, 0)) ** 2])),
        n=int(rng.integers(2, 1000)),
        last_t=1.8e9,
        dt_nom=float(rng.choice([0.0, 1e-3, 0.5, 5.0, 30.0, 300.0, rng.uniform(0, 600)])),
        alpha=float(rng.uniform(1e-3, 1)),
        beta=float(rng.uniform(1e-3, 1)),
        fitted_at=None if rng.uniform() < 0.5 else 1.7e9,
    )
    return state, limit


@pytest.mark.parametrize("max_eta_s", [604800.0, 3600.0, 1e9])
def test_the_scalar_search_of_a_far_limit_equals_the_grid_search_to_the_bit(max_eta_s):
    rng = np.random.default_rng(7)
    shortcut = 0
    for _ in range(4000):
        state, limit = _random_rising_state(rng)
        settings = ForecastSettings(max_eta_s=max_eta_s, z=float(rng.choice([2.0, 0.5, 3.7])))
        got = reach.etas(state, limit, settings)
        assert got == reach._etas_grid(state, limit, settings), (state, limit)
        shortcut += reach._etas_far(state, limit, settings) is not None
    assert 1000 < shortcut < 3900  # both paths were taken, many times


@pytest.mark.parametrize("value", [0.123456789, 1e8 + 0.1], ids=["fraction", "large"])
def test_a_constant_series_is_steady_with_no_eta(value):
    # The same value at every sample: the drift line's slope is rounding error and its spread
    # zero, so its rise passed the significance test, and the forecast said "trending" with an
    # ETA of ~1e19 s. An ETA beyond max_eta_s is no trend to the limit, on every path.
    settings = ForecastSettings()
    limit = 1.0 if value < 1 else 2e8
    state, fc = None, None
    for i in range(3000):
        jitter = 0.001 if i % 7 == 0 else 0.0  # sweep jitter, so the timestamps are not exact
        state, fc = forecast.step(state, 1.7e9 + i * 10.0 + jitter, value, limit, settings)
    assert fc is not None
    assert fc.state == "steady" and fc.eta_s is None and not fc.alarm
