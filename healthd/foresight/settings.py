"""Forecaster settings: every tunable of the exhaustion forecaster, one-to-one with ``[forecast]``.

Owns: ``ForecastSettings``, its defaults and its own checks (``validate``); ``core.config``
registers it as the ``[forecast]`` section and coerces the raw values.
Must never: import numpy, time or I/O, or forecast anything: the model is ``foresight.holt``,
the per-series forecaster ``foresight.forecast``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ForecastSettings:
    """All forecaster tunables; one-to-one with the ``[forecast]`` config section."""

    horizon_s: float = 600.0  # warn at least this many seconds before the limit is reached
    lead_s: float = 600.0  # extra look-ahead (s) to pay for the confirmation delay
    season_s: float = 86400.0  # season length (s) of the additive seasonal term; 0 disables it
    season_buckets: int = 96  # buckets per season in the downsampled series (900 s at 1 day)
    season_min_cycles: int = 3  # full seasons of history before the seasonal fit is attempted
    season_keep_cycles: int = 4  # seasons kept in the downsampled series (bounds its memory)
    window: int = 360  # ring capacity in samples: recent history used by the Holt refit
    interval_s: float = 0.0  # nominal sampling interval (s); 0 infers it from the timestamps
    step_s: float = 10.0  # the forecaster takes a sample at most this often (s); 0: every one
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
    accel_z: float = 2.0  # Holt's trend rising by this many sds over a drift window bends its
    # forecast by that acceleration (accelerating leaks); 0 disables it
    peak_blocks: int = 12  # the peak line fits the maxima of blocks of a drift window over this
    # many (at least 4 samples each): GC teeth sampled too sparsely to show falls; 0 disables it
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
    gc_top_z: float = 3.0  # GCs come below the limit by this many deviations: no Holt alarm
    max_eta_s: float = 604800.0  # ETAs beyond this (s) count as not trending to the limit
    refit_every_s: float = 3600.0  # seconds between smoothing-parameter refits of a series
    season_refit_every_s: float = 21600.0  # seconds between seasonal-profile refits (costlier)
    fit_min_samples: int = 60  # samples in the ring before the first refit
    cycle_min_s: float = 1200.0  # shortest cycle period (s) searched for in a series' history
    # Longest (s) in the fine series (longer ones: in the daily profile's); 0 disables
    # learning cycles (the daily term stays).
    cycle_max_s: float = 43200.0
    cycle_bucket_s: float = 120.0  # bucket width (s) of the fine series the search runs on...
    cycle_buckets: int = 1080  # ...and its length in buckets (36 h: three 12 h cycles)
    cycle_strength: float = 0.5  # share of the variance the cycle's profile must explain (0..1)
    season_strength: float = 0.3  # the same for the daily profile; 0 keeps any daily fit

    def min_gap_s(self) -> float:
        """Seconds after the last sample the forecaster took before it takes another:
        ``step_s`` less a fifth, for sweep jitter (sweep times move by a few ms, and a 5 s
        sweep under a 10 s step must give every second sample, not every third)."""
        return 0.8 * self.step_s

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
        non_negative = ("lead_s", "season_s", "interval_s", "step_s", "clip_sigma", "confirm_frac",
                        "confirm_eta_frac", "drift_tau_frac", "drift_tau_min_s", "drift_z",
                        "drift_long", "envelope_z", "accel_z")
        for name in (*non_negative, "gc_drop_sigma", "gc_overdue", "gc_top_z"):
            if not getattr(self, name) >= 0:
                errors.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("confirm", "release", "season_min_cycles", "var_memory"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be an integer >= 1, got {getattr(self, name)}")
        for name in ("min_samples", "fit_min_samples"):
            if getattr(self, name) < 2:
                errors.append(f"{name} must be an integer >= 2, got {getattr(self, name)}")
        if self.peak_blocks < 0:
            errors.append(f"peak_blocks must be an integer >= 0 (0: off), got {self.peak_blocks}")
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
        if self.cycle_bucket_s <= 0 or not self.cycle_min_s >= 4 * self.cycle_bucket_s:
            errors.append(
                f"cycle_min_s ({self.cycle_min_s}) must be >= 4 buckets of cycle_bucket_s"
                f" ({self.cycle_bucket_s}, which must be > 0): a shorter cycle cannot be seen"
            )
        if self.cycle_max_s < 0 or 0 < self.cycle_max_s < self.cycle_min_s:
            errors.append(
                f"cycle_max_s must be 0 (off) or >= cycle_min_s ({self.cycle_min_s}),"
                f" got {self.cycle_max_s}"
            )
        if self.cycle_buckets < 16:
            errors.append(f"cycle_buckets must be an integer >= 16, got {self.cycle_buckets}")
        if not 0 < self.cycle_strength <= 1:
            errors.append(f"cycle_strength must be in (0, 1], got {self.cycle_strength}")
        if not 0 <= self.season_strength <= 1:
            errors.append(f"season_strength must be in [0, 1], got {self.season_strength}")
        if 0 < self.interval_s < self.min_gap_s():
            errors.append(
                f"interval_s ({self.interval_s}) must be 0 (inferred) or at least the step the"
                f" forecaster takes samples at, step_s ({self.step_s})"
            )
        if self.alpha_min > self.alpha_max:
            errors.append(f"alpha_min ({self.alpha_min}) must be <= alpha_max ({self.alpha_max})")
        if self.beta_min > self.beta_max:
            errors.append(f"beta_min ({self.beta_min}) must be <= beta_max ({self.beta_max})")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                errors.append(f"{f.name} must be a finite number, got {value}")
        return errors
