"""Holt's linear trend, optionally on a deseasonalised series: the model of one series.

Owns: the per-series state (``SeriesState``), its O(1) update (``update``: level, trend and
error variance, the drift sums and the GC cycle folded in with it), the seasonal offsets and
the trend's significance test. The time-to-limit search on this model is ``foresight.reach``.
Must never: import statsmodels, time, threading, docker or sqlite3, fit anything, read the
sample history, or decide an alarm (that is ``foresight.forecast`` and ``foresight.alarm``).

Model. Each sample ``y`` at time ``t`` is reduced by the seasonal profile ``s(t)`` (zero until a
seasonal fit exists) and folded into a level ``l`` and a trend ``b`` (units per second) with
Holt's error-correction form: ``e = y - s(t) - (l + b*dt)``, ``l += b*dt + alpha*e``,
``b += alpha*beta*e/dt_nom``. ``dt_nom`` is the nominal sampling interval, so a late sample does
not turn into a trend spike. The squared one-step error feeds an exponentially weighted variance.
Errors beyond ``clip_sigma`` standard deviations are clipped before they move level and trend,
so one spike (a CPU burst, a GC pause) does not become a trend; from the third such error in a
row on one side, the level takes them whole (the series has moved), the trend still clipped.

Forecast at ``h`` seconds ahead: ``f(h) = l + b*h + s(t+h)`` with the ETS(A,A,N) variance
``sigma^2 * (1 + (k-1)*(a^2 + a*B*k + B^2*k*(2k-1)/6))``, ``k = h/dt_nom``, ``a = alpha``,
``B = alpha*beta``. ``eta_s`` is the first ``h`` where ``f`` reaches the limit, ``lower_s`` where
``f + z*sd`` does (the earliest plausible time) and ``upper_s`` where ``f - z*sd`` does (the
latest plausible time; None when the limit is not surely reached within ``max_eta_s``).
"""

from __future__ import annotations

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
# Errors clipped in a row on one side; the next ones on that side are taken whole, until one
# falls within the bound again (``update``).
CLIP_RUN = 2
GC_EWMA = 0.3  # weight of each collection in the EWMAs of the falls' depth and height
FLOOR_CYCLES = 6  # GC cycles the floor line spans (its weights' mean age), at least a drift window


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
    gc_top_rose: bool = False  # the last collection came gc_top_z deviations above the others
    peaks: peak.Peaks | None = None  # a drift line of short blocks' maxima (peak.py)
    clip_run: int = 0  # errors clipped in a row, signed by their side (+ above, - below)


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


def effective(state: SeriesState, settings: ForecastSettings) -> tuple[float, float]:
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


def gc_headroom(state: SeriesState, limit: float, z: float) -> float:
    """``limit`` (deseasonalised) less the height the GC falls have come at plus ``z`` of its
    deviations, for ``alarm.before_next_fall``; -1 when that height says nothing: ``z`` is 0,
    or the last collection came more than ``z`` deviations higher (rising tops)."""
    if z <= 0 or state.gc_top_rose:
        return -1.0
    return limit - state.gc_top - z * state.gc_top_dev


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
    alpha, beta = effective(state, settings)
    y = value - seasonal_offset(state, t)
    pred = state.level + state.trend * dt
    e = y - pred
    sd = math.sqrt(state.var)
    fall = alarm.is_fall(e, sd, state.n, settings.gc_drop_sigma)
    cycle = alarm.track(gc_cycle(state), t, fall, 4 * dt_nom) if fall else None
    # Clip only once the variance estimate means something.
    clipped = 0
    e_trend = e
    if settings.clip_sigma > 0 and state.n > 10 and sd > 0 and not fall:
        bound = settings.clip_sigma * sd
        if abs(e) > bound:
            # One spike is clipped; a run of them on one side is the series moving (a quiet
            # series starting to leak fast), and clipping it too let the level fall further
            # behind on each sample while the sd grew far slower than the lag: a smooth
            # accelerating leak sampled every 5 min showed its level at 0.58 of the limit
            # when it was at 0.75. The trend keeps the clipped error: a step of a cache
            # taken whole into it alarmed (stepwise false alarms 0.55 -> 0.71 a day).
            side = 1 if e > 0 else -1
            run = state.clip_run + side if side * state.clip_run > 0 else side
            e_trend = max(-bound, min(bound, e))
            if abs(run) <= CLIP_RUN:
                e = e_trend
            clipped = max(-CLIP_RUN - 1, min(CLIP_RUN + 1, run))
    w = max(1.0 / state.n, 1.0 / settings.var_memory)
    d = drift.start(t, y) if state.drift_sums is None else state.drift_sums
    common = dict(drift_sums=drift.fold(d, t, y, tau), n=state.n + 1, last_t=t, dt_nom=dt_nom,
                  clip_run=clipped)
    if settings.drift_long > 0:  # off by default: its fold was a tenth of an idle step
        common["drift_long"] = drift.fold(state.drift_long or d, t, y,
                                           max(settings.drift_long, 1.0) * tau)
    if settings.peak_blocks > 0:
        pk = peak.fold(state.peaks, t, y, tau, settings.peak_blocks, dt_nom, settings.drift_z)
        if pk is not state.peaks:
            common["peaks"] = pk
    # A fall keeps the trend.
    trend = state.trend if fall else state.trend + alpha * beta * e_trend / dt_nom
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
            top, dev, rose = state.level, state.gc_top_dev, False
            if state.fall_t is not None:  # not the first collection
                jump = top - state.gc_top
                rose = jump > settings.gc_top_z * dev
                dev += GC_EWMA * (abs(jump) - dev)
                top = state.gc_top + GC_EWMA * jump
            common.update(
                gc_top=top, gc_top_dev=dev, gc_top_rose=rose,
                floor_sums=(drift.start(t, y) if f0 is None
                            else drift.fold(f0, t, y, floor_tau(tau, cycle.cycle_s))),
                drop=depth if state.drop <= 0 else state.drop + GC_EWMA * (depth - state.drop),
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


def floor_tau(tau: float, cycle_s: float) -> float:
    """The floor line's window (s): ``FLOOR_CYCLES`` GC cycles, at least one drift window."""
    return max(tau, FLOOR_CYCLES * cycle_s)


def significant(state: SeriesState, settings: ForecastSettings) -> bool:
    """True when the trend is ``trend_z`` standard errors above zero.

    The standard error is what the trend estimate would wobble by on a series with no trend and
    the same one-step noise. This test is what keeps flat, noisy and high-but-flat series quiet.
    """
    a, b = effective(state, settings)
    se = math.sqrt(alarm.trend_var_ratio(a, b) * state.var)
    return state.trend * state.dt_nom > settings.trend_z * se
