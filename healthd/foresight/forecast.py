"""Exhaustion forecaster: Holt's linear trend, optionally on a deseasonalised series.

Owns: the per-series forecasting state, its O(1) update (``step``), the time-to-limit estimate with
a prediction interval, the alarm confirmation / release logic, and when to refit (``refit_due``).
Must never: import statsmodels, time, threading, docker or sqlite3, fit anything, or read the
sample history. Fitting happens elsewhere (``healthd.refit``) and comes back as ``FittedParams``.

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

Alarm. Two paths, either of which makes a tick *alarming*. Holt: the series is below the limit,
trends up, its point ETA is within the look-ahead (``horizon_s * (1 + confirm_frac) + lead_s``,
so confirmation still ends a horizon ahead) and the trend is ``trend_z`` standard errors above
zero; on a regular GC sawtooth the ETA must also fall before the next expected collection
(``healthd.alarm``). Drift (``healthd.drift``): an exponentially weighted least-squares line over
``tau_s`` (at least one horizon) rises by more than ``drift_z`` residual sds over its window,
and its upper envelope (line + ``envelope_z`` sds, plus the seasonal profile's peak) reaches the
limit within the look-ahead; it sees through GC teeth and the flat stretches of a growing
cache, which reset Holt's trend. The alarm is raised after ``confirm`` consecutive alarming
ticks spanning ``confirm_frac * horizon_s`` seconds, but never more than ``confirm_eta_frac`` of
the ETA (a fast leak is still caught), and cleared after ``release`` quiet ticks. A sample at
or over the limit is an alarm at once. The ETA (and its interval) is reported only when one
path's trend is significant; otherwise the forecast is "learning" (fewer than
``learning()`` samples) or "steady".
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from healthd.foresight import alarm, drift

_GRID_POINTS = 160  # ETA search grid: geometric, so ~7% resolution before interpolation


@dataclass(frozen=True)
class ForecastSettings:
    """All forecaster tunables; one-to-one with the ``[forecast]`` config section."""

    horizon_s: float = 600.0  # warn at least this many seconds before the limit is reached
    lead_s: float = 600.0  # extra look-ahead (s) to pay for the confirmation delay
    season_s: float = 86400.0  # season length (s) of the additive seasonal term; 0 disables it
    season_buckets: int = 96  # buckets per season in the downsampled series (900 s at 1 day)
    season_min_cycles: int = 2  # full seasons of history before the seasonal fit is attempted
    season_keep_cycles: int = 4  # seasons kept in the downsampled series (bounds its memory)
    window: int = 360  # ring capacity in samples: recent history used by the Holt refit
    interval_s: float = 0.0  # nominal sampling interval (s); 0 infers it from the timestamps
    min_samples: int = 30  # samples seen before any alarm may be raised
    alarm_on_lower: bool = False  # time the alarm on lower_s (earliest plausible) not on eta_s
    confirm: int = 3  # consecutive alarming ticks before the alarm is raised
    confirm_frac: float = 0.5  # ...and must span this fraction of horizon_s (s), whatever the rate
    confirm_eta_frac: float = 0.25  # if > 0, never more than this fraction of the ETA (fast leaks)
    drift_tau_frac: float = 1.0  # the drift line's window (mean age, s) in horizons...
    drift_tau_min_s: float = 1200.0  # ...but never shorter than this (s)
    drift_long: float = 0.0  # a second drift line over this many drift windows; 0 disables it
    # (6 catches slow leaks under large GC teeth but takes the rising half of a daily cycle
    # for a leak until cycles are learnt; see the README)
    drift_z: float = 2.0  # the drift's rise over one window must exceed this many residual sds
    envelope_z: float = 2.0  # the peaks the drift path forecasts: line + this many residual sds
    release: int = 3  # consecutive non-alarming ticks before a raised alarm clears
    alpha: float = 0.1  # level smoothing (0..1) used until the first fit
    beta: float = 0.05  # trend smoothing (0..1, Holt's beta*) used until the first fit
    alpha_min: float = 0.05  # floor on a fitted alpha, so a new leak is still followed
    alpha_max: float = 0.8  # ceiling on a fitted alpha, so noise is never followed blindly
    beta_min: float = 0.02  # floor on a fitted beta (a fit on a flat series says ~0)
    beta_max: float = 0.5  # ceiling on a fitted beta
    z: float = 2.0  # prediction interval half-width in standard deviations (2.0 ~ 95%)
    trend_z: float = 3.0  # standard errors the trend must sit above zero before it can alarm
    var_memory: int = 60  # samples of memory of the residual variance (EWMA span)
    clip_sigma: float = 4.0  # clip one-step errors beyond this many sd; 0 disables clipping
    gc_drop_sigma: float = 4.0  # a one-sample fall beyond this many sd is a GC; 0: no GC guard
    gc_overdue: float = 0.5  # cycles an expected GC may be late before the GC guard lapses
    max_eta_s: float = 604800.0  # ETAs beyond this (s) count as not trending to the limit
    refit_every_s: float = 3600.0  # seconds between smoothing-parameter refits of a series
    season_refit_every_s: float = 21600.0  # seconds between seasonal-profile refits (costlier)
    fit_min_samples: int = 60  # samples in the ring before the first refit

    def validate(self) -> list[str]:
        """Human-readable problems, one per bad field; empty when the settings are usable."""
        errors: list[str] = []
        positive = (
            "horizon_s",
            "max_eta_s",
            "refit_every_s",
            "season_refit_every_s",
            "z",
            "trend_z",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                errors.append(f"{name} must be > 0, got {getattr(self, name)}")
        non_negative = ("lead_s", "season_s", "interval_s", "clip_sigma", "confirm_frac",
                        "confirm_eta_frac", "drift_tau_frac", "drift_tau_min_s", "drift_z",
                        "drift_long", "envelope_z")
        for name in (*non_negative, "gc_drop_sigma", "gc_overdue"):
            if not getattr(self, name) >= 0:
                errors.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("confirm", "release", "season_min_cycles", "var_memory"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be an integer >= 1, got {getattr(self, name)}")
        for name in ("min_samples", "fit_min_samples"):
            if getattr(self, name) < 2:
                errors.append(f"{name} must be an integer >= 2, got {getattr(self, name)}")
        if self.window < 10:
            errors.append(f"window must be an integer >= 10, got {self.window}")
        if self.season_buckets < 2:
            errors.append(f"season_buckets must be an integer >= 2, got {self.season_buckets}")
        if self.season_keep_cycles < self.season_min_cycles:
            errors.append(
                f"season_keep_cycles must be >= season_min_cycles ({self.season_min_cycles}),"
                f" got {self.season_keep_cycles}"
            )
        for name in ("alpha", "beta", "alpha_min", "alpha_max", "beta_min", "beta_max"):
            if not 0 < getattr(self, name) <= 1:
                errors.append(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.alpha_min > self.alpha_max:
            errors.append(f"alpha_min ({self.alpha_min}) must be <= alpha_max ({self.alpha_max})")
        if self.beta_min > self.beta_max:
            errors.append(f"beta_min ({self.beta_min}) must be <= beta_max ({self.beta_max})")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                errors.append(f"{f.name} must be a finite number, got {value}")
        return errors


@dataclass(frozen=True)
class FittedParams:
    """Smoothing parameters from a refit, plus an optional additive seasonal profile.

    ``season`` holds one offset per bucket (series units, zero mean), bucket ``k`` covering
    ``[season_t0 + k*season_step_s + m*len(season)*season_step_s, ... + season_step_s)`` for any
    integer ``m``. An empty ``season`` means the fit did not (re)estimate one.
    """

    alpha: float
    beta: float
    gamma: float | None = None
    season: tuple[float, ...] = ()
    season_t0: float = 0.0  # epoch s
    season_step_s: float = 0.0
    fitted_at: float = 0.0  # epoch s of the newest sample the fit saw


@dataclass(frozen=True)
class SeriesState:
    """Everything ``step`` needs for one series; replaced, never mutated."""

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
    drift_sums: drift.Drift | None = None  # the long least-squares line (drift.py)
    drift_long: drift.Drift | None = None  # the same over ``drift_long`` windows (slow leaks)


@dataclass(frozen=True)
class Forecast:
    """The verdict on one series after one sample.

    ``eta_s``: seconds until the point forecast reaches the limit, 0 when already there, None when
    not trending towards it within ``max_eta_s``. ``lower_s`` / ``upper_s``: earliest / latest
    plausible seconds until the limit (prediction interval), None when not reached.
    """

    eta_s: float | None
    lower_s: float | None
    upper_s: float | None
    alarm: bool
    level: float  # level plus the current seasonal offset, series units
    trend_per_s: float
    sigma: float = 0.0  # one-step forecast error sd, series units
    alarming: bool = False  # this tick met the alarm condition (before confirmation)
    seasonal: bool = False  # a seasonal profile is in use
    state: str = "learning"  # learning (too few samples), steady, or trending (a significant ETA)
    samples: int = 0  # samples folded in so far
    samples_needed: int = 0  # samples before the forecast stops learning


_STATE_FIELDS = frozenset(f.name for f in fields(SeriesState))


def _evolve(state: SeriesState, **changes: Any) -> SeriesState:
    """``dataclasses.replace`` for the per-sample path, at a fifth of its cost.

    ``step`` runs for every series on every sweep (hundreds per sweep on a busy host), and
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
    """The seasonal profile's value at epoch ``t`` (0 without a profile)."""
    if not state.season or state.season_step_s <= 0:
        return 0.0
    k = math.floor((t - state.season_t0) / state.season_step_s) % len(state.season)
    return state.season[k]


def _initial(t: float, value: float, settings: ForecastSettings) -> SeriesState:
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
        drift_long=drift.start(t, value),
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


def _cycle(state: SeriesState) -> alarm.Cycle:
    return alarm.Cycle(state.fall_t, state.cycle_s, state.cycle_regular)


def _update(state: SeriesState, t: float, value: float, settings: ForecastSettings,
            tau: float) -> SeriesState:
    """Fold one sample in: O(1), pure. ``tau``: ``tau_s(settings)``, computed once a step."""
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
    cycle = alarm.track(_cycle(state), t, fall, 4 * dt_nom) if fall else None
    # Clip only once the variance estimate means something.
    if settings.clip_sigma > 0 and state.n > 10 and sd > 0:
        bound = settings.clip_sigma * sd
        e = max(-bound, min(bound, e))
    w = max(1.0 / state.n, 1.0 / settings.var_memory)
    d = drift.start(t, y) if state.drift_sums is None else state.drift_sums
    common = dict(
        drift_sums=drift.fold(d, t, y, tau),
        drift_long=drift.fold(state.drift_long or d, t, y, max(settings.drift_long, 1.0) * tau),
        n=state.n + 1, last_t=t, dt_nom=dt_nom,
    )
    if cycle is not None:
        # alarm.track leaves the cycle as it was on any tick without a fall.
        common.update(fall_t=cycle.fall_t, cycle_s=cycle.cycle_s, cycle_regular=cycle.regular)
    if fall:
        # A collection: a new tooth starts at this sample. Re-level, and keep the fall out of the
        # trend and the variance, or every later fall would hide inside an inflated sd.
        return _evolve(state, level=y, **common)
    return _evolve(
        state,
        level=pred + alpha * e,
        trend=state.trend + alpha * beta * e / dt_nom,
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


def _etas(
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
        idx = np.floor((state.last_t + h - state.season_t0) / state.season_step_s).astype(np.int64)
        f = f + np.asarray(state.season)[idx % len(state.season)]
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


def _significant(state: SeriesState, settings: ForecastSettings) -> bool:
    """True when the trend is ``trend_z`` standard errors above zero.

    The standard error is what the trend estimate would wobble by on a series with no trend and
    the same one-step noise. This test is what keeps flat, noisy and high-but-flat series quiet.
    """
    a, b = _effective(state, settings)
    se = math.sqrt(alarm.trend_var_ratio(a, b) * state.var)
    return state.trend * state.dt_nom > settings.trend_z * se


def tau_s(settings: ForecastSettings) -> float:
    """The drift line's window (s): ``drift_tau_frac`` horizons, at least ``drift_tau_min_s``."""
    return max(settings.drift_tau_frac * settings.horizon_s, settings.drift_tau_min_s, 1.0)


def _drift_etas(
    state: SeriesState, limit: float, settings: ForecastSettings, tau: float
) -> tuple[float, float | None, float | None] | None:
    """(eta_s, lower_s, upper_s) of the drift path when its rise is significant, else None.

    Two lines: one over ``tau_s`` and one ``drift_long`` times longer (a slow leak under large
    GC teeth only rises significantly over hours); the sooner significant ETA is used.

    ``eta_s``: when the peaks (line + ``envelope_z`` sds, plus the seasonal profile's highest
    offset) reach the limit; ``lower_s`` with ``z`` more sds; ``upper_s`` when the line itself
    does. Needs ``min_samples`` and one drift window of history ("learning" until then).
    """
    best: tuple[float, float | None, float | None] | None = None
    if state.n < settings.min_samples:
        return None
    for d, window in ((state.drift_sums, tau), (state.drift_long, settings.drift_long * tau)):
        if d is None or window <= 0 or state.last_t - d.first_t < window:
            continue
        ln = drift.line(d)
        if ln is None or not drift.significant(ln, window, settings.drift_z):
            continue
        top = max(state.season) if state.season else 0.0
        eta = drift.envelope_eta(ln, limit - top, settings.envelope_z)
        if eta is None or (best is not None and best[0] <= eta):
            continue
        lower = drift.envelope_eta(ln, limit - top, settings.envelope_z + settings.z)
        upper = drift.envelope_eta(ln, limit - top, 0.0)
        best = (eta, lower, upper)
    return best


def learning(state: SeriesState, settings: ForecastSettings,
             tau: float | None = None) -> tuple[int, int]:
    """(samples seen, samples needed) before the forecaster stops learning this series.

    Needed: ``min_samples`` and one drift window (``tau_s``) at the nominal sampling interval.
    """
    per = state.dt_nom if state.dt_nom > 0 else settings.interval_s
    if tau is None:
        tau = tau_s(settings)
    window = math.ceil(tau / per) if per > 0 else settings.min_samples
    return state.n, max(settings.min_samples, window + 1)


def _confirm_s(eta: float | None, settings: ForecastSettings) -> float:
    """Seconds of alarming ticks needed: a share of the horizon, but a leak that will hit the
    limit sooner than that is confirmed in a share of its own ETA, so it is still caught."""
    confirm_s = settings.confirm_frac * settings.horizon_s
    if eta is not None and settings.confirm_eta_frac > 0:
        confirm_s = min(confirm_s, settings.confirm_eta_frac * eta)
    return confirm_s


def step(
    state: SeriesState | None, t: float, value: float, limit: float, settings: ForecastSettings
) -> tuple[SeriesState, Forecast]:
    """Fold the sample ``(t, value)`` into ``state`` and forecast against ``limit``. O(1), pure.

    ``t``: epoch s; ``value`` and ``limit`` in the same unit. A sample not newer than the last one
    is not folded in (duplicates, clock steps); the forecast is then recomputed from the old state.
    """
    value = float(value)  # a numpy scalar would leak into the state and the JSON output
    tau = tau_s(settings)
    if state is None:
        new = _initial(t, value, settings)
    elif t <= state.last_t:
        new = state
    else:
        new = _update(state, t, value, settings, tau)
    if new.n < 2:
        fc = Forecast(None, None, None, new.alarm, new.level, new.trend, samples=new.n)
        return new, fc
    # Look ahead far enough that the confirmation still ends a horizon before the limit.
    horizon = settings.horizon_s * (1.0 + settings.confirm_frac) + settings.lead_s
    eta: float | None = None
    lower: float | None = None
    upper: float | None = None
    holt = False
    # At the limit is what _etas calls an ETA of 0 (its first test), said before any search.
    at_limit = new.level + seasonal_offset(new, new.last_t) >= limit or value >= limit
    if at_limit:
        eta, lower, upper = 0.0, 0.0, 0.0
    elif (new.n >= settings.min_samples and (new.trend > 0 or bool(new.season))
          and _significant(new, settings)):
        # Holt's ETA is searched for only when it could be used: an idle container's series
        # is rarely significant, and the search is most of a step's cost.
        eta, lower, upper = _etas(new, limit, settings)
        holt = (
            eta is not None
            and (lower if settings.alarm_on_lower and lower is not None else eta) <= horizon
            and alarm.before_next_fall(_cycle(new), new.last_t, eta, settings.gc_overdue)
        )
    dr = None if at_limit else _drift_etas(new, limit, settings, tau)
    drifting = dr is not None and dr[0] <= horizon
    if dr is not None and (not holt or eta is None or dr[0] < eta):
        # The drift path's ETA is the one shown when it is the sooner (or Holt's is not trusted).
        eta, lower, upper = dr
    seen, needed = learning(new, settings, tau)
    if at_limit or holt or drifting or dr is not None:
        label = "trending"
    elif seen < needed:
        label = "learning"
    else:
        label = "steady"
    if label != "trending" and not at_limit:
        eta, lower, upper = None, None, None  # an ETA without a significant trend is not shown
    verdict = alarm.decide(
        alarm.Streak(new.streak, new.calm, new.alarm_since, new.alarm),
        new.last_t,
        holt or drifting or at_limit,
        new is state,  # a sample not folded in neither raises nor clears
        settings.confirm,
        0.0 if at_limit else _confirm_s(eta, settings),
        settings.release,
        at_limit=at_limit,
    )
    new = _evolve(
        new,
        streak=verdict.streak,
        calm=verdict.calm,
        alarm_since=verdict.since,
        alarm=verdict.alarm,
    )
    fc = Forecast(
        eta_s=eta,
        lower_s=lower,
        upper_s=upper,
        alarm=new.alarm,
        level=new.level + seasonal_offset(new, new.last_t),
        trend_per_s=new.trend,
        sigma=math.sqrt(new.var),
        alarming=holt or drifting or at_limit,
        seasonal=bool(new.season),
        state=label,
        samples=seen,
        samples_needed=needed,
    )
    return new, fc


def apply_fit(state: SeriesState, fit: FittedParams) -> SeriesState:
    """Adopt fitted smoothing parameters (and a new seasonal profile, if the fit has one). Pure.

    The level is re-based so that level plus seasonal offset at the last sample is unchanged:
    swapping profiles must not look like a jump in the series.
    """
    new = replace(state, alpha=fit.alpha, beta=fit.beta, fitted_at=fit.fitted_at)
    if fit.season and fit.season_step_s > 0:
        old_s = seasonal_offset(state, state.last_t)
        new = replace(
            new,
            gamma=fit.gamma,
            season=fit.season,
            season_t0=fit.season_t0,
            season_step_s=fit.season_step_s,
            season_fitted_at=fit.fitted_at,
        )
        new = replace(new, level=state.level + old_s - seasonal_offset(new, state.last_t))
    return new


def refit_due(state: SeriesState, t: float, settings: ForecastSettings) -> bool:
    """True when a refit of this series should be requested at epoch ``t``.

    Daemon and replay both call this, then ``mark_refit``, so they schedule fits identically.
    """
    if state.n < settings.fit_min_samples:
        return False
    if state.refit_requested_at is None:
        return True
    return t - state.refit_requested_at >= settings.refit_every_s


def mark_refit(state: SeriesState, t: float) -> SeriesState:
    """Record that a refit was requested at epoch ``t`` (whether or not it comes back)."""
    return replace(state, refit_requested_at=t)


def season_len(settings: ForecastSettings) -> int | None:
    """Seasonal period in downsampled buckets, or None when seasonality is disabled."""
    return settings.season_buckets if settings.season_s > 0 else None


def bucket_s(settings: ForecastSettings) -> float:
    """Width (s) of one downsampled bucket; 0 when seasonality is disabled."""
    return settings.season_s / settings.season_buckets if settings.season_s > 0 else 0.0


def season_due(state: SeriesState, n_buckets: int, t: float, settings: ForecastSettings) -> bool:
    """True when a refit at epoch ``t`` should include the seasonal fit.

    Needs ``season_min_cycles`` seasons of closed buckets (``n_buckets``), and the last profile to
    be older than ``season_refit_every_s``: the profile drifts slowly and its fit costs ~10x more.
    """
    length = season_len(settings)
    if length is None or n_buckets < settings.season_min_cycles * length:
        return False
    last = state.season_fitted_at
    return last is None or t - last >= settings.season_refit_every_s
