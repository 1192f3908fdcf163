"""Holt's linear trend, optionally on a deseasonalised series: the model of one series.

Owns: the per-series state (``SeriesState``), its O(1) update (``update``: level, trend and
error variance, the drift sums and the GC cycle folded in with it), and the time-to-limit
estimate with a prediction interval (``etas``) and the trend's significance test.
Must never: import statsmodels, time, threading, docker or sqlite3, fit anything, read the
sample history, or decide an alarm (that is ``foresight.forecast`` and ``foresight.alarm``).

Model. Each sample ``y`` at time ``t`` is reduced by the seasonal profile ``s(t)`` (zero until a
seasonal fit exists) and folded into a level ``l`` and a trend ``b`` (units per second) with
Holt's error-correction form: ``e = y - s(t) - (l + b*dt)``, ``l += b*dt + alpha*e``,
``b += alpha*beta*e/dt_nom``. ``dt_nom`` is the nominal sampling interval, so a late sample does
not turn into a trend spike. The squared one-step error feeds an exponentially weighted variance.
Errors beyond ``clip_sigma`` standard deviations are clipped before they move level and trend,
so one spike (a CPU burst, a GC pause) does not become a trend.

Forecast at ``h`` seconds ahead: ``f(h) = l + b*h + s(t+h)`` with the ETS(A,A,N) variance
``sigma^2 * (1 + (k-1)*(a^2 + a*B*k + B^2*k*(2k-1)/6))``, ``k = h/dt_nom``, ``a = alpha``,
``B = alpha*beta``. ``eta_s`` is the first ``h`` where ``f`` reaches the limit, ``lower_s`` where
``f + z*sd`` does (the earliest plausible time) and ``upper_s`` where ``f - z*sd`` does (the
latest plausible time; None when the limit is not surely reached within ``max_eta_s``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from healthd.foresight import alarm, drift, peak
from healthd.foresight.settings import ForecastSettings

# The acceleration's line spans a quarter of the drift window: over a whole one it lagged a
# cubic leak's speeding-up by so much that the bent forecast was no sooner (evaluated: a
# quarter caught all six tuning accelerating leaks at 60 min, against four). And it is used
# only once the trend has stayed above zero for 1.5 drift windows: the rising half of a
# cycle not learnt yet looks accelerating too (a 90-minute one alarmed at a 10-minute
# horizon), and it cost no detection on the tuning set.
ACCEL_TAU_FRAC = 0.25
ACCEL_RISING_WINDOWS = 1.5
FLOOR_CYCLES = 6  # GC cycles the floor line spans (its weights' mean age), at least a drift window
_GRID_POINTS = 160  # ETA search grid: geometric, so ~7% resolution before interpolation


@dataclass(frozen=True)
class SeriesState:
    """Everything ``forecast.step`` needs for one series; replaced, never mutated."""

    level: float  # deseasonalised level, series units
    trend: float  # units per second
    var: float  # EWMA of squared one-step errors, units^2
    n: int  # samples folded in
    last_t: float  # epoch s of the newest sample
    dt_nom: float  # nominal sampling interval, s (0 until two samples arrived)
    alpha: float
    beta: float
    gamma: float | None = None
    season: tuple[float, ...] = ()
    season_t0: float = 0.0
    season_step_s: float = 0.0
    streak: int = 0  # consecutive alarming ticks
    calm: int = 0  # consecutive non-alarming ticks
    alarm: bool = False
    alarm_since: float | None = None  # epoch s of the first tick of the current alarming streak
    fall_t: float | None = None  # epoch s of the newest GC-like fall
    cycle_s: float = 0.0  # EWMA of the time between GC-like falls, s (0: no cycle known)
    cycle_regular: int = 0  # consecutive regular gaps between GC-like falls
    fitted_at: float | None = None  # epoch s of the last applied fit
    refit_requested_at: float | None = None  # epoch s a refit was last asked for
    season_fitted_at: float | None = None  # epoch s of the last applied seasonal profile
    season_cycle: bool = False  # the profile is a cycle learnt from the data, not the daily fit
    season_top: float = 0.0  # max(season), kept with it: a max per sample would cost ~5 us
    drift_sums: drift.Drift | None = None  # the long least-squares line (drift.py)
    drift_long: drift.Drift | None = None  # the same over ``drift_long`` windows (slow leaks)
    # A drift line of ``trend`` itself (its slope: the acceleration), None while the trend is
    # not above zero; so its ``first_t`` is when the trend last turned above zero.
    accel_sums: drift.Drift | None = None
    floor_sums: drift.Drift | None = None  # a drift line of the values just after GC falls
    drop: float = 0.0  # EWMA of the GC falls' depth (series units): the teeth's height
    gc_top: float = 0.0  # EWMA of the level just before GC falls: the height they come at
    gc_top_dev: float = 0.0  # EWMA of its absolute deviations
    peaks: peak.Peaks | None = None  # a drift line of short blocks' maxima (peak.py)


_STATE_FIELDS = frozenset(f.name for f in fields(SeriesState))


def evolve(state: SeriesState, **changes: Any) -> SeriesState:
    """``dataclasses.replace`` for the per-sample path, at a fifth of its cost.

    ``forecast.step`` runs for every series on every sweep (hundreds per sweep on a busy host), and
    ``replace`` re-runs the frozen ``__init__`` field by field. ``SeriesState`` has no
    ``__post_init__`` and its ``__init__`` only stores the fields, so copying the instance
    dict and applying the changes makes the same value. Unknown names raise, as in replace.
    """
    if not changes.keys() <= _STATE_FIELDS:
        raise TypeError(f"SeriesState has no field(s) {sorted(changes.keys() - _STATE_FIELDS)}")
    new = object.__new__(SeriesState)
    d = new.__dict__
    d.update(state.__dict__)
    d.update(changes)
    return new


def seasonal_offset(state: SeriesState, t: float) -> float:
    """The seasonal profile's value at epoch ``t`` (0 without a profile).

    A learnt cycle's profile is interpolated linearly between bucket centres: a 20-minute
    cycle has 10 buckets, and a step at each bucket edge would be a one-sample jump of a fifth
    of its swing, which Holt would take for a spike or a GC fall. The daily profile (96
    buckets of 15 min) keeps its steps, as it was evaluated (NAB: interpolating it changed
    which daily peaks alarmed, for no gain).
    """
    season = state.season
    if not season or state.season_step_s <= 0:
        return 0.0
    x = (t - state.season_t0) / state.season_step_s
    n = len(season)
    if not state.season_cycle:
        return season[math.floor(x) % n]
    x -= 0.5
    k = math.floor(x)
    f = x - k
    k %= n
    a = season[k]
    return a + (season[(k + 1) % n] - a) * f


def seasonal_offsets(season: tuple[float, ...], t0: float, step_s: float,
                     t: npt.NDArray[np.float64], smooth: bool) -> npt.NDArray[np.float64]:
    """``seasonal_offset`` at each epoch of ``t`` (a profile given by its parts; ``smooth``:
    interpolated, as a learnt cycle's)."""
    s = np.asarray(season, dtype=np.float64)
    x = (t - t0) / step_s
    if not smooth:
        return np.asarray(s[np.floor(x).astype(np.int64) % s.size])
    k = np.floor(x - 0.5)
    f = x - 0.5 - k
    i = k.astype(np.int64) % s.size
    a = s[i]
    return np.asarray(a + (s[(i + 1) % s.size] - a) * f)


def initial(t: float, value: float, settings: ForecastSettings) -> SeriesState:
    return SeriesState(
        level=value,
        trend=0.0,
        var=0.0,
        n=1,
        last_t=t,
        dt_nom=settings.interval_s,
        alpha=settings.alpha,
        beta=settings.beta,
        drift_sums=drift.start(t, value),
        drift_long=drift.start(t, value) if settings.drift_long > 0 else None,
    )


def _effective(state: SeriesState, settings: ForecastSettings) -> tuple[float, float]:
    """(alpha, beta) in use: fitted values clamped to the configured range.

    The initial values are taken as given: they are the operator's choice, not a fit's.
    """
    if state.fitted_at is None:
        return state.alpha, state.beta
    a = min(max(state.alpha, settings.alpha_min), settings.alpha_max)
    b = min(max(state.beta, settings.beta_min), settings.beta_max)
    return a, b


def gc_cycle(state: SeriesState) -> alarm.Cycle:
    return alarm.Cycle(state.fall_t, state.cycle_s, state.cycle_regular)


def update(state: SeriesState, t: float, value: float, settings: ForecastSettings,
            tau: float) -> SeriesState:
    """Fold one sample in: O(1), pure.

    ``tau``: ``forecast.tau_s(settings)``, computed once a step.
    """
    dt = t - state.last_t
    if settings.interval_s > 0:
        dt_nom = settings.interval_s
    elif state.dt_nom <= 0:
        dt_nom = dt
    else:
        # Slow EWMA, with one gap capped so a pause does not stretch the nominal step.
        dt_nom = state.dt_nom + 0.05 * (min(dt, 4 * state.dt_nom) - state.dt_nom)
    alpha, beta = _effective(state, settings)
    y = value - seasonal_offset(state, t)
    pred = state.level + state.trend * dt
    e = y - pred
    sd = math.sqrt(state.var)
    fall = alarm.is_fall(e, sd, state.n, settings.gc_drop_sigma)
    cycle = alarm.track(gc_cycle(state), t, fall, 4 * dt_nom) if fall else None
    # Clip only once the variance estimate means something.
    if settings.clip_sigma > 0 and state.n > 10 and sd > 0:
        bound = settings.clip_sigma * sd
        e = max(-bound, min(bound, e))
    w = max(1.0 / state.n, 1.0 / settings.var_memory)
    d = drift.start(t, y) if state.drift_sums is None else state.drift_sums
    common = dict(drift_sums=drift.fold(d, t, y, tau), n=state.n + 1, last_t=t, dt_nom=dt_nom)
    if settings.drift_long > 0:  # off by default: its fold was a tenth of an idle step
        common["drift_long"] = drift.fold(state.drift_long or d, t, y,
                                           max(settings.drift_long, 1.0) * tau)
    if settings.peak_blocks > 0:
        pk = peak.fold(state.peaks, t, y, tau, settings.peak_blocks, dt_nom, settings.drift_z)
        if pk is not state.peaks:
            common["peaks"] = pk
    trend = state.trend if fall else state.trend + alpha * beta * e / dt_nom  # a fall keeps it
    if settings.accel_z > 0:
        # The line of the new trend: its slope is the acceleration ``forecast`` bends Holt's
        # forecast by (``accel_eta``).
        # Only while the trend is above zero: the line is used only after 1.5 drift windows of
        # that (six of its own), and an idle series' trend is at or below zero half the time,
        # so the fold is skipped there.
        a0 = state.accel_sums
        if trend <= 0:
            if a0 is not None:
                common["accel_sums"] = None
        elif a0 is None:
            common["accel_sums"] = drift.start(t, trend)
        else:
            common["accel_sums"] = drift.fold(a0, t, trend, ACCEL_TAU_FRAC * tau)
    if cycle is not None:
        # alarm.track leaves the cycle as it was on any tick without a fall.
        common.update(fall_t=cycle.fall_t, cycle_s=cycle.cycle_s, cycle_regular=cycle.regular)
        if cycle.fall_t == t:  # a new collection, not the second sample of the last one
            # The tooth's floor, and how far it fell: a leak under GC teeth raises its floor
            # steadily, with far less scatter than the teeth around any line (``floor_eta``).
            depth = max(pred - y, 0.0)
            f0 = state.floor_sums
            top, dev = state.level, state.gc_top_dev
            if state.fall_t is not None:  # not the first collection
                dev += 0.3 * (abs(top - state.gc_top) - dev)
                top = state.gc_top + 0.3 * (top - state.gc_top)
            common.update(
                gc_top=top, gc_top_dev=dev,
                floor_sums=(drift.start(t, y) if f0 is None
                            else drift.fold(f0, t, y, floor_tau(tau, cycle.cycle_s))),
                drop=depth if state.drop <= 0 else state.drop + 0.3 * (depth - state.drop),
            )
    if fall:
        # A collection: a new tooth starts at this sample. Re-level, and keep the fall out of the
        # trend and the variance, or every later fall would hide inside an inflated sd.
        return evolve(state, level=y, **common)
    return evolve(
        state,
        level=pred + alpha * e,
        trend=trend,
        var=state.var + w * (e * e - state.var),
        **common,
    )


@functools.lru_cache(maxsize=16)
def _grid(max_eta_s: float) -> npt.NDArray[np.float64]:
    """Look-ahead times (s) for the ETA search: 0, then geometric up to ``max_eta_s``."""
    return np.concatenate(([0.0], np.geomspace(max_eta_s * 1e-5, max_eta_s, _GRID_POINTS)))


def _first_crossing(h: npt.NDArray[np.float64], g: npt.NDArray[np.float64]) -> float | None:
    """First ``h`` where ``g`` (forecast minus limit) reaches 0, linearly interpolated."""
    hits = np.flatnonzero(g >= 0)
    if hits.size == 0:
        return None
    i = int(hits[0])
    if i == 0:
        return 0.0
    g0, g1 = float(g[i - 1]), float(g[i])
    h0, h1 = float(h[i - 1]), float(h[i])
    return h0 + (h1 - h0) * (-g0 / (g1 - g0))


@functools.lru_cache(maxsize=16)
def _grid_floats(max_eta_s: float) -> tuple[float, ...]:
    """``_grid`` as Python floats (the same values), for the scalar search below."""
    return tuple(float(x) for x in _grid(max_eta_s))


def etas(
    state: SeriesState, limit: float, settings: ForecastSettings
) -> tuple[float | None, float | None, float | None]:
    """(eta_s, lower_s, upper_s) from the current state; O(grid), independent of history."""
    seasonal = bool(state.season) and state.season_step_s > 0
    now = state.level + seasonal_offset(state, state.last_t)
    if now >= limit:
        return 0.0, 0.0, 0.0
    if state.trend <= 0 and not seasonal:
        return None, None, None  # falling or flat: never reaches the limit on this model
    if not seasonal:
        found = _etas_far(state, limit, settings)
        if found is not None:
            return found
    return _etas_grid(state, limit, settings)


def _etas_far(
    state: SeriesState, limit: float, settings: ForecastSettings
) -> tuple[None, float | None, None] | None:
    """``_etas_grid``'s answer, found with a few scalar steps, for a rising series without a
    season whose point forecast stays below the limit over the whole grid (an idle
    container's noise, the common case); None when the full grid search must run.

    Every quantity of the grid search is non-decreasing in ``h`` here (trend, variance,
    z and the smoothing weights are >= 0, and rounding is monotone), so: the point
    forecast stays below the limit at every grid point iff it does at the last one, then
    ``eta_s`` is None and so is ``upper_s`` (``f - half <= f``), and ``lower_s``'s first
    crossing is found by bisection. Each grid value is computed with the very operations,
    in the same order, that the numpy path applies element-wise, so the result is the same
    to the bit (a unit test compares the two).
    """
    h = _grid_floats(settings.max_eta_s)
    level, trend, limit = state.level, state.trend, float(limit)
    if not level + trend * h[-1] - limit < 0:
        return None  # reaches the limit (or NaN): the grid search decides
    a, b = _effective(state, settings)
    big_b = a * b
    var0, z, dt = state.var, settings.z, max(state.dt_nom, 1e-9)
    if not (trend > 0 and var0 >= 0 and a >= 0 and big_b >= 0 and z >= 0
            and math.isfinite(var0)):
        return None

    seen: dict[int, float] = {}

    def top_gap(i: int) -> float:  # f + half - limit at h[i] (the band top), as numpy has it
        g = seen.get(i)
        if g is None:
            k = h[i] / dt
            km1 = max(k - 1.0, 0.0)
            var = var0 * (1.0 + km1 * (a * a + a * big_b * k
                                       + big_b * big_b * k * (2 * k - 1) / 6))
            g = seen[i] = level + trend * h[i] + z * math.sqrt(var) - limit
        return g

    lo, hi = 0, len(h)
    while lo < hi:  # the first i with top_gap(i) >= 0
        mid = (lo + hi) // 2
        if top_gap(mid) >= 0:
            hi = mid
        else:
            lo = mid + 1
    if lo == len(h):
        return None, None, None
    if lo == 0:
        return None, 0.0, None
    g0, g1 = top_gap(lo - 1), top_gap(lo)
    h0, h1 = h[lo - 1], h[lo]
    return None, h0 + (h1 - h0) * (-g0 / (g1 - g0)), None


def _etas_grid(
    state: SeriesState, limit: float, settings: ForecastSettings
) -> tuple[float | None, float | None, float | None]:
    """(eta_s, lower_s, upper_s) by a search of the look-ahead grid (numpy)."""
    seasonal = bool(state.season) and state.season_step_s > 0
    h = _grid(settings.max_eta_s)
    f = state.level + state.trend * h
    if seasonal:
        f = f + seasonal_offsets(state.season, state.season_t0, state.season_step_s,
                                 state.last_t + h, state.season_cycle)
    a, b = _effective(state, settings)
    big_b = a * b
    k = h / max(state.dt_nom, 1e-9)
    km1 = np.maximum(k - 1.0, 0.0)
    var = state.var * (1.0 + km1 * (a * a + a * big_b * k + big_b * big_b * k * (2 * k - 1) / 6))
    half = settings.z * np.sqrt(var)
    return (
        _first_crossing(h, f - limit),
        _first_crossing(h, f + half - limit),
        _first_crossing(h, f - half - limit),
    )


def accel_eta(state: SeriesState, limit: float, tau: float, z: float) -> float | None:
    """Seconds until ``level + trend*h + acc*h^2/2`` reaches ``limit``, where ``acc`` is the
    slope of the trend's own drift line (``accel_sums``, over ``ACCEL_TAU_FRAC * tau``); None
    unless the trend has been above zero for ``ACCEL_RISING_WINDOWS * tau`` and rose by more
    than ``z`` of its residual sds over its line's window (an accelerating leak).

    Why: Holt's forecast is a straight line from the current trend, so a leak that speeds up
    (a cache whose growth feeds itself, a retry storm) reaches the limit sooner than it says;
    at a one-hour horizon most such leaks were announced less than an hour ahead.
    """
    a = state.accel_sums
    if a is None or state.trend <= 0 or state.last_t - a.first_t < ACCEL_RISING_WINDOWS * tau:
        return None
    ln = drift.line(a)
    if ln is None or not drift.significant(ln, ACCEL_TAU_FRAC * tau, z):
        return None
    gap = limit - state.level
    if gap <= 0:
        return 0.0
    b, acc = state.trend, ln.slope
    # The positive root of acc/2 h^2 + b h - gap = 0, in the form that stays exact as acc -> 0.
    return 2.0 * gap / (b + math.sqrt(b * b + 2.0 * acc * gap))


def floor_tau(tau: float, cycle_s: float) -> float:
    """The floor line's window (s): ``FLOOR_CYCLES`` GC cycles, at least one drift window."""
    return max(tau, FLOOR_CYCLES * cycle_s)


def floor_eta(state: SeriesState, limit: float, tau: float, settings: ForecastSettings
              ) -> tuple[float, float | None, float | None] | None:
    """(eta_s, lower_s, upper_s) until the GC teeth's tops (the floor line plus the mean
    fall's depth, plus ``envelope_z`` residual sds) reach ``limit``; None unless the falls
    are regular, the floor line spans a window and rose by more than ``drift_z`` of its sds
    over it. ``lower_s`` adds ``z`` sds, as the drift line's does.

    Why: a slow leak under tall teeth never rises by two of the teeth's own sds within a drift
    window, so the drift line calls it flat; the floors scatter only by the noise.
    """
    f = state.floor_sums
    if f is None or not alarm.regular_cycle(gc_cycle(state)):
        return None
    window = floor_tau(tau, state.cycle_s)
    if f.last_t - f.first_t < window:
        return None
    ln = drift.line(f)
    if ln is None or not drift.significant(ln, window, settings.drift_z):
        return None
    # The line's origin is the newest fall.
    return drift.envelope_etas_since(ln, limit - state.drop, settings.envelope_z, settings.z,
                                     state.last_t - f.last_t)


def significant(state: SeriesState, settings: ForecastSettings) -> bool:
    """True when the trend is ``trend_z`` standard errors above zero.

    The standard error is what the trend estimate would wobble by on a series with no trend and
    the same one-step noise. This test is what keeps flat, noisy and high-but-flat series quiet.
    """
    a, b = _effective(state, settings)
    se = math.sqrt(alarm.trend_var_ratio(a, b) * state.var)
    return state.trend * state.dt_nom > settings.trend_z * se
