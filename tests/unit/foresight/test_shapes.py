"""Timelines of each leak shape, quiet look-alikes, horizons of 10 min and 2 h (issue 9)."""

from __future__ import annotations

import numpy as np
import pytest

from healthd.foresight import forecast, replay
from healthd.foresight.settings import ForecastSettings

DT = 30.0
HOUR = 3600.0


def run(values, settings, dt=DT):
    state, out = None, []
    for i, v in enumerate(values):
        state, fc = forecast.step(state, 1.7e9 + i * dt, float(v), 1.0, settings)
        out.append(fc)
    return out


def leak(shape: str, seed: int, leak_s: float, dt: float = DT) -> np.ndarray:
    """6 h flat at 0.3, then a leak of ``shape`` reaching 1.0 ``leak_s`` later; ends there."""
    rng = np.random.default_rng(seed)
    warm = 6 * HOUR
    t = np.arange(0, warm + leak_s, dt)
    x = np.clip(t - warm, 0, None) / leak_s
    if shape == "linear":
        clean = 0.3 + 0.7 * x
    elif shape == "accelerating":
        clean = 0.3 + 0.7 * x**2
    elif shape == "stepwise":
        every = 20 * 60
        clean = 0.3 + 0.7 * np.floor(x * leak_s / every) * every / leak_s
    elif shape == "sawtooth":
        tooth, amp = 5 * 60, 0.15
        clean = 0.3 + amp * (t % tooth) / tooth + (0.7 - amp) * x
    else:  # "cycle": a 2-hour cycle whose peaks climb
        amp = 0.08
        clean = 0.3 + amp + amp * np.sin(2 * np.pi * t / (2 * HOUR)) + (0.7 - 2 * amp) * x
    return np.asarray(clean + rng.normal(0, 0.003, t.size))


def first_alarm_lead(fcs, dt=DT):
    """Seconds from the first raised alarm to the end of the series (the exhaustion)."""
    i = next((i for i, f in enumerate(fcs) if f.alarm), None)
    return None if i is None else (len(fcs) - 1 - i) * dt


@pytest.mark.parametrize("shape", ["linear", "accelerating", "stepwise", "sawtooth", "cycle"])
@pytest.mark.parametrize("horizon_s", [600.0, 7200.0], ids=["10min", "2h"])
def test_every_leak_shape_alarms_a_horizon_ahead_and_never_before_the_leak(shape, horizon_s):
    if shape == "sawtooth" and horizon_s < 3600:
        pytest.xfail("known gap: teeth of 10 samples are not told apart as GC falls (Holt's "
                     "error sd takes them in), so the floor line never starts, and a slow leak "
                     "under 0.15-high teeth is not significant within the 20-min drift window, "
                     "nor to the peak line (its blocks' maxima scatter by a third of a tooth); "
                     "at 2 h the peak line's wider window sees it")
    leak_s = 16 * HOUR
    fcs = run(leak(shape, 1, leak_s), ForecastSettings(horizon_s=horizon_s))
    lead = first_alarm_lead(fcs)
    assert lead is not None and lead >= horizon_s, lead
    warm_ticks = int(6 * HOUR / DT)
    assert not any(f.alarm for f in fcs[:warm_ticks])


@pytest.mark.parametrize(
    "quiet",
    ["flat-high", "sawtooth-flat-floor", "cycle-90min"],
)
def test_quiet_look_alikes_never_alarm(quiet):
    rng = np.random.default_rng(3)
    t = np.arange(0, 2 * 86400, DT)
    if quiet == "flat-high":
        v = 0.9 + rng.normal(0, 0.01, t.size)
    elif quiet == "sawtooth-flat-floor":
        v = 0.6 + 0.3 * (t % 600) / 600 + rng.normal(0, 0.003, t.size)
    else:
        v = 0.6 + 0.15 * np.sin(2 * np.pi * t / 5400) + rng.normal(0, 0.003, t.size)
    fcs = run(v, ForecastSettings(horizon_s=600.0))
    assert not any(f.alarm for f in fcs)


def test_a_series_at_its_limit_is_an_alarm_at_once():
    fcs = run([0.5] * 100 + [1.0, 1.0, 0.5], ForecastSettings())
    assert not fcs[99].alarm
    assert fcs[100].alarm and fcs[100].eta_s == 0.0
    assert fcs[101].alarm


def test_state_is_learning_then_steady_and_an_eta_only_when_trending():
    settings = ForecastSettings(horizon_s=600.0)
    rng = np.random.default_rng(5)
    flat = 0.3 + rng.normal(0, 0.01, 200)
    fcs = run(flat, settings)
    assert fcs[5].state == "learning" and fcs[5].samples == 6
    assert fcs[5].samples_needed == 41  # 1200 s drift window at 30 s, plus one
    assert fcs[-1].state == "steady"
    assert all(f.eta_s is None for f in fcs)
    fcs = run(np.concatenate((flat, np.linspace(0.3, 0.9, 200))), settings)
    assert fcs[-1].state == "trending"
    assert fcs[-1].eta_s is not None and fcs[-1].lower_s is not None
    assert fcs[-1].lower_s <= fcs[-1].eta_s


def test_an_accelerating_leak_is_announced_an_hour_ahead_because_holt_is_bent_by_it():
    # A quadratic leak over 4 h: the straight line from Holt's current trend reaches the limit
    # later than the leak does, so without the acceleration term the alarm came < 1 h ahead.
    leak_s, horizon_s = 4 * HOUR, 3600.0
    values = leak("accelerating", 1, leak_s)
    bent = first_alarm_lead(run(values, ForecastSettings(horizon_s=horizon_s)))
    straight = first_alarm_lead(run(values, ForecastSettings(horizon_s=horizon_s, accel_z=0.0)))
    assert bent is not None and bent >= horizon_s, bent
    assert straight is not None and straight < bent


def test_a_slow_leak_under_tall_gc_teeth_is_seen_by_its_rising_floor():
    # Teeth of 10 minutes (60 samples, so each collection is a clear fall), 0.15 tall, over a
    # leak of 16 h: the teeth's scatter hides the rise from the drift line over a 20-minute
    # window; the floors just after each fall rise with nothing but the noise around them.
    dt, tooth, amp = 10.0, 600.0, 0.15
    rng = np.random.default_rng(1)
    warm, leak_s = 6 * HOUR, 16 * HOUR
    t = np.arange(0, warm + leak_s, dt)
    x = np.clip(t - warm, 0, None) / leak_s
    values = 0.3 + amp * (t % tooth) / tooth + (0.7 - amp) * x + rng.normal(0, 0.003, t.size)
    fcs = run(values, ForecastSettings(horizon_s=600.0), dt=dt)
    lead = first_alarm_lead(fcs, dt=dt)
    assert lead is not None and lead >= 600.0, lead
    assert not any(f.alarm for f in fcs[: int(warm / dt)])


def sparse_teeth(leak_s: float, dt: float, amp: float, base: float = 0.3) -> np.ndarray:
    """GC teeth of 150 s (jittered by a fifth), ``amp`` tall, sampled every ``dt`` >= 30 s, so
    each sample lands at a random point of its tooth and no fall stands out; 6 h on the floor
    ``base``, then (``leak_s`` > 0) a leak that brings the teeth's tops to 1.0 ``leak_s`` later."""
    rng = np.random.default_rng(1)
    warm, tooth = 6 * HOUR, 150.0
    t = np.arange(0, warm + (leak_s or 2 * 86400 - warm), dt)
    gaps = tooth * rng.uniform(0.8, 1.2, int(t[-1] / tooth) + 3)
    starts = np.concatenate(([-rng.uniform(0, tooth)], np.cumsum(gaps)))
    k = np.searchsorted(starts, t, side="right") - 1
    teeth = (t - starts[k]) / gaps[k]
    x = np.clip(t - warm, 0, None) / leak_s if leak_s else np.zeros_like(t)
    return np.asarray(base + amp * teeth + (1 - base - amp) * x + rng.normal(0, 0.003, t.size))


@pytest.mark.parametrize(
    ("horizon_s", "leak_s", "dt"),
    [(600.0, 3 * HOUR, 30.0), (7200.0, 10 * HOUR, 120.0)],
    ids=["10min", "2h"],
)
def test_a_leak_under_gc_teeth_too_sparse_to_show_falls_is_seen_by_its_peaks(horizon_s, leak_s,
                                                                            dt):
    # Teeth 0.25 tall of one to five samples: no regular falls (no floor line), and the band's
    # scatter hides the rise from the drift line; the blocks' maxima sit at the band's top.
    values = sparse_teeth(leak_s, dt, 0.25)
    fcs = run(values, ForecastSettings(horizon_s=horizon_s), dt=dt)
    lead = first_alarm_lead(fcs, dt=dt)
    assert lead is not None and lead >= horizon_s, lead
    assert not any(f.alarm for f in fcs[: int(6 * HOUR / dt)])
    without = run(values, ForecastSettings(horizon_s=horizon_s, peak_blocks=0), dt=dt)
    assert first_alarm_lead(without, dt=dt) is None


@pytest.mark.parametrize("horizon_s", [600.0, 7200.0], ids=["10min", "2h"])
def test_sparse_gc_teeth_on_a_flat_floor_peaking_at_90_percent_never_alarm(horizon_s):
    fcs = run(sparse_teeth(0.0, 60.0, 0.3, base=0.6), ForecastSettings(horizon_s=horizon_s),
              dt=60.0)
    assert not any(f.alarm for f in fcs)


def jittered_teeth(n: int, dt: float, tooth_s: float, amp: float, noise: float = 0.002,
                   seed: int = 0) -> np.ndarray:
    """A quiet heap collected at 0.93 of its limit, teeth 0.8-1.2 x ``tooth_s`` long."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * dt
    starts = np.cumsum(tooth_s * rng.uniform(0.8, 1.2, int(n * dt / tooth_s / 0.8) + 2))
    k = np.searchsorted(starts, t, side="right")
    prev = np.concatenate(([0.0], starts))[k]
    length = np.concatenate((starts[:1], np.diff(starts)))[np.minimum(k, starts.size - 1)]
    return np.asarray(0.93 - amp + amp * (t - prev) / length + rng.normal(0, noise, n))


def alarm_onsets(v: np.ndarray, dt: float, settings: ForecastSettings) -> np.ndarray:
    """Seconds from the first sample to each alarm raised (off -> on), through replay: the
    daemon's step, refits and all, on ``v`` sampled every ``dt`` s."""
    t = 1.7e9 + dt * np.arange(v.size)
    out = replay.replay(zip(t.tolist(), v.tolist(), strict=True), 1.0, settings, None)
    alarm = np.array([r["alarm"] for r in out], dtype=bool)
    return dt * np.flatnonzero(alarm & ~np.concatenate(([False], alarm[:-1])))


@pytest.mark.parametrize(("strength", "alarms"), [(0.3, range(0, 3)), (0.0, range(10, 100))],
                         ids=["checked", "unchecked"])
def test_gc_teeth_near_the_limit_are_not_taken_for_the_days_shape(strength, alarms):
    # Through replay, refits included: after two days (season_min_cycles = 2 here) the
    # daily fit runs. Unchecked, its profile of the teeth lowered the
    # limit the lines aim at by its top, and day 3 alarmed on most teeth; checked
    # (season_strength), the profile is refused.
    v = jittered_teeth(int(72 * HOUR / 60), 60.0, 3000.0, 0.3, noise=0.003)  # 40-60 min teeth
    s = ForecastSettings(horizon_s=600.0, season_strength=strength, season_min_cycles=2)
    assert int(np.sum(alarm_onsets(v, 60.0, s) >= 48 * HOUR)) in alarms


@pytest.mark.parametrize(("min_cycles", "alarms"), [(3, range(0, 1)), (2, range(2, 20))],
                         ids=["three-days", "two-days"])
def test_a_cache_filled_once_is_not_taken_for_the_days_shape(min_cycles, alarms):
    # 0.20 to 0.88 of the limit over six hours on day one, flat after, at a one-hour horizon.
    # Fitted on two days, the daily profile took the fill for the day's shape (the one-day
    # moving average leaves one whole day of two) and lowered the limit the drift line aims
    # at: alarms on the plateau from day two. After three days the fill is one day of two.
    t = np.arange(0.0, 3 * 24 * HOUR, 60.0)
    v = 0.2 + 0.68 * np.clip((t - 23 * HOUR) / (6 * HOUR), 0, 1)
    v += np.random.default_rng(1).normal(0, 0.002, t.size)
    s = ForecastSettings(horizon_s=HOUR, season_min_cycles=min_cycles)
    assert int(np.sum(alarm_onsets(v, 60.0, s) >= 31 * HOUR)) in alarms


@pytest.mark.parametrize(("gc_top_z", "alarms"), [(3.0, range(0, 2)), (0.0, range(20, 200))],
                         ids=["height-guard", "time-guard-only"])
def test_a_short_gc_tooth_is_collected_at_the_usual_height_not_taken_for_a_leak(gc_top_z,
                                                                                alarms):
    # Teeth of ~3 min 0.39 tall, at a 1-hour horizon. A tooth 20 % shorter than the mean
    # rises 25 % faster: its line reaches the limit before the mean cycle's next fall is due,
    # so the time guard let it alarm. The collections have come at 0.93 all along, far below
    # the limit: the height guard knows this one is collected on the way up too.
    v = jittered_teeth(8640, 10.0, 170.0, 0.39)
    s = ForecastSettings(horizon_s=HOUR, gc_top_z=gc_top_z)
    assert int(np.sum(alarm_onsets(v, 10.0, s) >= HOUR)) in alarms  # after its first hour
