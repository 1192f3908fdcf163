"""Exhaustion forecaster: one series' samples in, a verdict against its limit out.

Owns: the per-series step (``step``: the Holt model of ``foresight.holt`` and the drift line of
``foresight.drift`` combined into one ETA with a prediction interval, and the alarm confirmation
/ release logic), the verdict (``Forecast``), and when and how to refit (``refit_due``,
``FittedParams``, ``apply_fit``). The model's state and arithmetic are ``foresight.holt``'s.
Must never: import statsmodels, time, threading, docker or sqlite3, fit anything, or read the
sample history. Fitting happens elsewhere (``healthd.refit``) and comes back as ``FittedParams``.

Alarm. Two paths, either of which makes a tick *alarming*. Holt: the series is below the limit,
trends up, its point ETA is within the look-ahead (``horizon_s * (1 + confirm_frac) + lead_s``,
so confirmation still ends a horizon ahead) and the trend is ``trend_z`` standard errors above
zero; on a regular GC sawtooth the ETA must also fall before the next expected collection
(``healthd.alarm``); an accelerating trend (``reach.accel_eta``) bends that ETA sooner.
Drift (``healthd.drift``): an exponentially weighted least-squares line over ``tau_s`` (at
least one horizon) rises by more than ``drift_z`` residual sds over its window,
and its upper envelope (line + ``envelope_z`` sds, plus the seasonal profile's peak) reaches the
limit within the look-ahead; it sees through GC teeth and the flat stretches of a growing
cache, which reset Holt's trend. On a series with regular GC falls, a line through the
values just after each fall (``reach.floor_eta``: the floor, plus the falls' mean depth for
the teeth's tops) is part of the drift path: its scatter is the noise, not the teeth. So is
a line through the maxima of short blocks of samples (``foresight.peak``), for GC teeth
sampled too sparsely to show their falls: the maxima sit at the band's top. The
alarm is raised after ``confirm`` consecutive alarming
ticks spanning ``confirm_frac * horizon_s`` seconds, but never more than ``confirm_eta_frac`` of
the ETA (a fast leak is still caught), and cleared after ``release`` quiet ticks. A sample at
or over the limit is an alarm at once. The ETA (and its interval) is reported only when one
path's trend is significant; otherwise the forecast is "learning" (fewer than
``learning()`` samples) or "steady".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

from healthd.foresight import alarm, drift, holt, peak, reach
from healthd.foresight.holt import SeriesState
from healthd.foresight.settings import ForecastSettings


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
    cycle: bool = False  # ``season`` is a cycle learnt from the data (foresight.cycles)
    no_cycle: bool = False  # the cycle search ran and found none: a learnt cycle is dropped
    no_season: bool = False  # the daily profile explained too little: a daily one is dropped


# A named tuple, not a frozen dataclass: one is made per series per sample, and the frozen
# ``__init__`` (a guarded setattr per field) took 5 us of a step's ~30; immutable all the same.
class Forecast(NamedTuple):
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


def tau_s(settings: ForecastSettings) -> float:
    """The drift line's window (s): ``drift_tau_frac`` horizons, at least ``drift_tau_min_s``."""
    return max(settings.drift_tau_frac * settings.horizon_s, settings.drift_tau_min_s, 1.0)


_Etas = tuple[float, float | None, float | None]


def _sooner(a: _Etas | None, b: _Etas | None) -> _Etas | None:
    """The one of two (eta_s, lower_s, upper_s) whose ETA comes first; ``a`` on a tie."""
    return b if b is not None and (a is None or b[0] < a[0]) else a


def _drift_etas(
    state: SeriesState, limit: float, settings: ForecastSettings, tau: float
) -> _Etas | None:
    """(eta_s, lower_s, upper_s) of the drift path when its rise is significant, else None.

    Two lines: one over ``tau_s`` and one ``drift_long`` times longer (a slow leak under large
    GC teeth only rises significantly over hours); the sooner significant ETA is used.

    ``eta_s``: when the peaks (line + ``envelope_z`` sds, plus the seasonal profile's highest
    offset) reach the limit; ``lower_s`` with ``z`` more sds; ``upper_s`` when the line itself
    does. Needs ``min_samples`` and one drift window of history ("learning" until then).
    """
    best: _Etas | None = None
    if state.n < settings.min_samples:
        return None
    for d, window in ((state.drift_sums, tau), (state.drift_long, settings.drift_long * tau)):
        if d is None or window <= 0 or state.last_t - d.first_t < window:
            continue
        ln = drift.line(d)
        if ln is None:
            continue
        top = state.season_top
        # On a learnt cycle, the line with the profile's peak already at the limit needs no
        # significant slope: the cycle's next peak reaches the limit (a leak on a cycle, late
        # in its life, whose troughs inflate the residual sd). Not on the daily profile: a
        # CPU series whose daily peaks touch 100 % (NAB) alarmed every day on it.
        at_peak = state.season_cycle and ln.value + top >= limit
        if not at_peak and not drift.significant(ln, window, settings.drift_z):
            continue
        best = _sooner(best, drift.envelope_etas(ln, limit - top, settings.envelope_z, settings.z))
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
        new = holt.initial(t, value, settings)
    elif t <= state.last_t:
        new = state
    else:
        new = holt.update(state, t, value, settings, tau)
    if new.n < 2:
        fc = Forecast(None, None, None, new.alarm, new.level, new.trend, samples=new.n)
        return new, fc
    # Look ahead far enough that the confirmation still ends a horizon before the limit.
    horizon = settings.horizon_s * (1.0 + settings.confirm_frac) + settings.lead_s
    eta: float | None = None
    lower: float | None = None
    upper: float | None = None
    holt_alarming = False
    # At the limit is what reach.etas calls an ETA of 0 (its first test), said before any search.
    offset = holt.seasonal_offset(new, new.last_t)
    at_limit = new.level + offset >= limit or value >= limit
    if at_limit:
        eta, lower, upper = 0.0, 0.0, 0.0
    elif (new.n >= settings.min_samples and (new.trend > 0 or bool(new.season))
          and not new.season_cycle and holt.significant(new, settings)):
        # Not on a learnt cycle: Holt's trend follows the last few samples, so whatever of the
        # cycle's shape the profile misses (its steep edges, between two of its bins) is a
        # steep trend to it on every rise. The drift line, over at least one horizon, is the
        # judge of whether the cycle itself is climbing.
        # Holt's ETA is searched for only when it could be used: an idle container's series
        # is rarely significant, and the search is most of a step's cost.
        eta, lower, upper = reach.etas(new, limit, settings)
        if settings.accel_z > 0 and not new.season:
            # Not on a seasonal profile: each daily rise would bend the forecast up.
            fast = reach.accel_eta(new, limit, tau, settings.accel_z)
            if fast is not None and (eta is None or fast < eta):
                eta, lower = fast, fast if lower is None else min(lower, fast)
        holt_alarming = (
            eta is not None
            and (lower if settings.alarm_on_lower and lower is not None else eta) <= horizon
            and alarm.before_next_fall(holt.gc_cycle(new), new.last_t, eta, settings.gc_overdue,
                                       holt.gc_headroom(new, limit - offset, settings.gc_top_z))
        )
    dr = None
    if not at_limit:
        dr = _drift_etas(new, limit, settings, tau)
        if new.floor_sums is not None:
            dr = _sooner(dr, reach.floor_eta(new, limit, tau, settings))
        if settings.peak_blocks > 0:
            dr = _sooner(dr, peak.eta(new.peaks, new.last_t, limit - new.season_top,
                                      settings.envelope_z, settings.z))
    if dr is not None and dr[0] > settings.max_eta_s:
        # Not trending to the limit, as for Holt's ETA: a constant series' line has a slope of
        # rounding error and no spread, so its rise is "significant", and was shown as trending
        # with an ETA of 10^18 s.
        dr = None
    drifting = dr is not None and dr[0] <= horizon
    if dr is not None and (not holt_alarming or eta is None or dr[0] < eta):
        # The drift path's ETA is the one shown when it is the sooner (or Holt's is not trusted).
        eta, lower, upper = dr
    seen, needed = learning(new, settings, tau)
    if at_limit or holt_alarming or drifting or dr is not None:
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
        holt_alarming or drifting or at_limit,
        new is state,  # a sample not folded in neither raises nor clears
        settings.confirm,
        0.0 if at_limit else _confirm_s(eta, settings),
        settings.release,
        at_limit=at_limit,
    )
    if verdict != (new.streak, new.calm, new.alarm_since, new.alarm):
        new = holt.evolve(new, streak=verdict.streak, calm=verdict.calm,
                          alarm_since=verdict.since, alarm=verdict.alarm)
    fc = Forecast(
        eta_s=eta,
        lower_s=lower,
        upper_s=upper,
        alarm=new.alarm,
        level=new.level + offset,
        trend_per_s=new.trend,
        sigma=math.sqrt(new.var),
        alarming=holt_alarming or drifting or at_limit,
        seasonal=bool(new.season),
        state=label,
        samples=seen,
        samples_needed=needed,
    )
    return new, fc


def apply_fit(state: SeriesState, fit: FittedParams) -> SeriesState:
    """Adopt fitted smoothing parameters (and a new seasonal profile, if the fit has one). Pure.

    A learnt cycle is dropped when a later search finds none (``fit.no_cycle``).

    The level is re-based so that level plus seasonal offset at the last sample is unchanged:
    swapping profiles must not look like a jump in the series.
    """
    new = replace(state, alpha=fit.alpha, beta=fit.beta, fitted_at=fit.fitted_at)
    if fit.season and fit.season_step_s > 0:
        old_s = holt.seasonal_offset(state, state.last_t)
        new = replace(
            new,
            gamma=fit.gamma,
            season=fit.season,
            season_t0=fit.season_t0,
            season_step_s=fit.season_step_s,
            season_fitted_at=fit.fitted_at,
            season_cycle=fit.cycle,
            season_top=max(fit.season),
        )
        new = replace(new, level=state.level + old_s - holt.seasonal_offset(new, state.last_t))
    elif fit.no_season and not state.season_cycle:
        # Taken as the day's shape, noise or a GC sawtooth's teeth moved the limit the drift
        # and peak lines aim at down by the profile's top: false alarms every day after two.
        # Not tried again before season_refit_every_s.
        new = _without_profile(state, new, season_fitted_at=fit.fitted_at)
    elif fit.no_cycle and state.season_cycle:
        # A cycle that is no longer there (or was a fluke of a short window) would keep Holt's
        # path off and bend the series by its profile for good; the daily fit may come back.
        new = _without_profile(state, new, season_fitted_at=None)
    return new


def _without_profile(state: SeriesState, new: SeriesState,
                     season_fitted_at: float | None) -> SeriesState:
    """``new`` without a seasonal profile, its level re-based on ``state``'s so that the
    current reading is unchanged."""
    return replace(new, season=(), season_t0=0.0, season_step_s=0.0, season_cycle=False,
                   season_top=0.0, gamma=None, season_fitted_at=season_fitted_at,
                   level=state.level + holt.seasonal_offset(state, state.last_t))


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
