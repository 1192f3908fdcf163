"""When a series' forecast reaches its limit: Holt's ETA search and the accelerating and
floor lines' ETAs, from a ``holt.SeriesState``; O(grid) at most, independent of history.

Owns: ``etas`` (eta, lower and upper bounds of Holt's forecast and its prediction interval:
a scalar bisection for the common case of a rising series far from its limit, else a numpy
search of a geometric look-ahead grid), ``accel_eta`` (Holt's forecast bent by the trend's
own rise) and ``floor_eta`` (the GC teeth's tops on the floor line).
Must never: fold samples in (``holt.update``), keep history, or decide an alarm
(``foresight.forecast``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from healthd.foresight import alarm, drift, holt
from healthd.foresight.settings import ForecastSettings

_GRID_POINTS = 160  # ETA search grid: geometric, so ~7% resolution before interpolation


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
    state: holt.SeriesState, limit: float, settings: ForecastSettings
) -> tuple[float | None, float | None, float | None]:
    """(eta_s, lower_s, upper_s) from the current state; O(grid), independent of history."""
    seasonal = bool(state.season) and state.season_step_s > 0
    now = state.level + holt.seasonal_offset(state, state.last_t)
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
    state: holt.SeriesState, limit: float, settings: ForecastSettings
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
    a, b = holt.effective(state, settings)
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
    state: holt.SeriesState, limit: float, settings: ForecastSettings
) -> tuple[float | None, float | None, float | None]:
    """(eta_s, lower_s, upper_s) by a search of the look-ahead grid (numpy)."""
    seasonal = bool(state.season) and state.season_step_s > 0
    h = _grid(settings.max_eta_s)
    f = state.level + state.trend * h
    if seasonal:
        f = f + holt.seasonal_offsets(state.season, state.season_t0, state.season_step_s,
                                      state.last_t + h, state.season_cycle)
    a, b = holt.effective(state, settings)
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


def accel_eta(state: holt.SeriesState, limit: float, tau: float, z: float) -> float | None:
    """Seconds until ``level + trend*h + acc*h^2/2`` reaches ``limit``, where ``acc`` is the
    slope of the trend's own drift line (``accel_sums``, over ``ACCEL_TAU_FRAC * tau``); None
    unless the trend has been above zero for ``ACCEL_RISING_WINDOWS * tau`` and rose by more
    than ``z`` of its residual sds over its line's window (an accelerating leak).

    Why: Holt's forecast is a straight line from the current trend, so a leak that speeds up
    (a cache whose growth feeds itself, a retry storm) reaches the limit sooner than it says;
    at a one-hour horizon most such leaks were announced less than an hour ahead.
    """
    a = state.accel_sums
    if a is None or state.trend <= 0 or state.last_t - a.first_t < holt.ACCEL_RISING_WINDOWS * tau:
        return None
    ln = drift.line(a)
    if ln is None or not drift.significant(ln, holt.ACCEL_TAU_FRAC * tau, z):
        return None
    gap = limit - state.level
    if gap <= 0:
        return 0.0
    b, acc = state.trend, ln.slope
    # The positive root of acc/2 h^2 + b h - gap = 0, in the form that stays exact as acc -> 0.
    return 2.0 * gap / (b + math.sqrt(b * b + 2.0 * acc * gap))


def floor_eta(state: holt.SeriesState, limit: float, tau: float, settings: ForecastSettings
              ) -> tuple[float, float | None, float | None] | None:
    """(eta_s, lower_s, upper_s) until the GC teeth's tops (the floor line plus the mean
    fall's depth, plus ``envelope_z`` residual sds) reach ``limit``; None unless the falls
    are regular, the floor line spans a window and rose by more than ``drift_z`` of its sds
    over it. ``lower_s`` adds ``z`` sds, as the drift line's does.

    Why: a slow leak under tall teeth never rises by two of the teeth's own sds within a drift
    window, so the drift line calls it flat; the floors scatter only by the noise.
    """
    f = state.floor_sums
    if f is None or not alarm.regular_cycle(holt.gc_cycle(state)):
        return None
    window = holt.floor_tau(tau, state.cycle_s)
    if f.last_t - f.first_t < window:
        return None
    ln = drift.line(f)
    if ln is None or not drift.significant(ln, window, settings.drift_z):
        return None
    # The line's origin is the newest fall.
    return drift.envelope_etas_since(ln, limit - state.drop, settings.envelope_z, settings.z,
                                     state.last_t - f.last_t)
