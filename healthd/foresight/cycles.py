"""Cycles of any length: find a series' period from its own history, and its profile.

Owns: ``find_period`` (the strongest regular period of a bucketed series, by autocorrelation
over candidate periods) and ``learn`` (that period's additive, zero-mean profile, phase-binned,
in the form ``holt.SeriesState`` keeps its seasonal profile in).
Must never: import statsmodels, time or I/O, or run per sample: this is the refit worker's
heavier fitting (``foresight.refit``), on a downsampled series of at most a few thousand points.

Why. A batch every two hours or an hourly cron that lifts memory to 95 % of its limit looks,
on each rising half, exactly like a leak heading for the limit; only the daily curve used to be
learnt (after two days). With the period and the profile known, the forecaster subtracts the
profile before its trend and drift lines (as it did the daily one): a cycle that stays within
itself leaves a flat remainder and does not alarm, a leak riding on it leaves a rising one and
does, and the ETA is when the *peaks* (remainder + highest profile offset) reach the limit.

Method. The series (bucket means ``step_s`` apart) is detrended with a straight line, so a leak
under the cycle does not look like a long period; its autocorrelation (by FFT) is searched for
the highest local peak between ``min_s`` and ``max_s`` that is preceded by a dip (a regular
cycle swings through its trough at half a period; a random walk's autocorrelation decays
without one). The peak lag is refined at its largest multiple within the data, divided back,
so that the phase does not drift over the hours until the next refit. The profile is the mean,
per phase bin, of the series minus its centred one-period moving average (the classical
decomposition: the moving average takes out the level and any leak, whatever its shape), and
the cycle is kept only if the profile explains ``min_strength`` of that remainder's variance
(adjusted for the number of bins) and is not a GC sawtooth's (``alarm`` has its own guard).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MAX_BINS = 48  # phase bins of a profile: enough for a smooth interpolated shape, few to carry
MIN_DIP = 0.3  # the autocorrelation must fall this far below its peak before the peak
MIN_ACF = 0.3  # ...and reach this at the period: a regular cycle repeats, noise does not


class Cycle(NamedTuple):
    """A learnt cycle: bin ``k`` of ``profile`` covers ``[t0 + k*step_s, t0 + (k+1)*step_s)``
    modulo ``period_s`` (= ``len(profile) * step_s``); series units, zero mean."""

    period_s: float
    profile: tuple[float, ...]
    t0: float  # epoch s of the start of bin 0 (any cycle)
    step_s: float  # seconds per bin
    strength: float  # share of the detrended variance the profile explains, 0..1
    acf: float  # the autocorrelation at the period, -1..1; NaN when re-tested at a known one


def _acf(x: FloatArray) -> FloatArray:
    """Autocorrelation of ``x`` (mean removed by the caller) at lags 0..n-1.

    Each lag's sum is divided by its own number of pairs (the unbiased estimator): the usual
    ``1 - lag/n`` taper would pull a peak towards shorter lags, 2-5 % short on a series
    holding three or four cycles, which is a quarter of a cycle off within a day.
    """
    n = x.size
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[:n] / (n - np.arange(n))
    return np.asarray(ac / ac[0]) if ac[0] > 0 else np.zeros(n)


def find_period(values: FloatArray, step_s: float, min_s: float, max_s: float,
                min_cycles: float = 3.0) -> tuple[float, float] | None:
    """(period_s, autocorrelation at it) of the strongest regular cycle, or None.

    ``values``: bucket means ``step_s`` seconds apart, oldest first. Periods searched: from
    ``min_s`` (at least 4 buckets) to ``max_s``, and at most ``len / min_cycles`` buckets, so
    that every period found has been seen ``min_cycles`` times.
    """
    n = values.size
    lo = max(4, math.ceil(min_s / step_s))
    hi = min(math.floor(max_s / step_s), math.floor(n / min_cycles))
    if hi <= lo or n < 3 * lo:
        return None
    idx = np.arange(n, dtype=np.float64)
    x = values - np.polyval(np.polyfit(idx, values, 1), idx)
    ac = _acf(x)
    lags = np.arange(lo, hi + 1)
    peak = (ac[lags] > ac[lags - 1]) & (ac[lags] >= ac[lags + 1])
    best = None
    for lag in lags[peak]:
        dip = float(ac[: lag].min())
        if ac[lag] < MIN_ACF or ac[lag] - dip < MIN_DIP:
            continue  # no trough before it, or too weak: a wobble of a drift or of noise
        # A cycle's autocorrelation peaks again at each multiple, a little lower each time:
        # the first peak within 90 % of the best one is the period, not a multiple of it.
        if best is None or ac[lag] > 1.1 * ac[best] + 0.02:
            best = int(lag)
    if best is None:
        return None
    return _refine(ac, best, n) * step_s, float(ac[best])


def _vertex(ac: FloatArray, i: int) -> float:
    """The lag of the parabola's top through ``ac[i-1..i+1]`` (sub-bucket resolution)."""
    if i <= 0 or i + 1 >= ac.size:
        return float(i)
    a, b, c = float(ac[i - 1]), float(ac[i]), float(ac[i + 1])
    den = a - 2 * b + c
    return float(i) if den >= 0 else i + 0.5 * (a - c) / den


def _refine(ac: FloatArray, lag: int, n: int) -> float:
    """The period (buckets) measured at its largest multiple in the first half of the data.

    One bucket of error at the first peak is ``1/m`` bucket at the m-th: a 2 % error in a
    two-hour period would move the profile's phase by a quarter cycle within a day.
    """
    period = _vertex(ac, lag)
    m = max(1, int((n // 2) / period))
    while m > 1:
        centre = m * period
        a, b = max(1, int(centre - 0.25 * period)), min(n - 2, int(centre + 0.25 * period) + 1)
        if b > a:
            j = a + int(np.argmax(ac[a:b]))
            if ac[j] > 0:
                return _vertex(ac, j) / m
        m -= 1
    return period


def _sawtooth(profile: FloatArray) -> bool:
    """True for a GC sawtooth's shape: a slow rise, then most of the swing lost in one bin.

    Its teeth are the GC guard's (``alarm.before_next_fall``), which knows that the next
    collection comes first; as a profile, the teeth's jitter would misalign with it and hide
    the rising floor of a leak under the residual spread.
    """
    span = float(profile.max() - profile.min())
    w = max(1, round(profile.size / 6))  # a sixth of the cycle: a jittered fall spreads
    around = np.concatenate((profile, profile[:w]))
    steps = around[w:] - around[:-w]
    # A sine changes by half its span over a sixth of a cycle both ways, a batch by more;
    # only a sawtooth falls that far and rises so much less (jitter smears its profile).
    return span > 0 and -float(steps.min()) >= 0.5 * span and float(steps.max()) < 0.4 * span


def learn(values: FloatArray, t0: float, step_s: float, min_s: float, max_s: float,
          min_strength: float, min_cycles: float = 3.0, known_s: float = 0.0) -> Cycle | None:
    """The cycle of a bucketed series and its profile, or None when it has no regular cycle.

    ``values``: bucket means, the first starting at epoch ``t0``, ``step_s`` seconds apart.
    ``min_strength``: share (0..1) of the de-levelled variance the profile must explain.
    ``known_s``: the period (s) of the cycle learnt before, 0 if none. When the search finds
    nothing, the cycle is tested again at that period: a leak growing under it swamps the
    autocorrelation long before it swamps the cycle, and forgetting the cycle then would
    turn the leak's detection back over to the very paths the cycle fooled.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 8 or not np.all(np.isfinite(values)) or float(np.ptp(values)) == 0.0:
        return None
    found = find_period(values, step_s, min_s, max_s, min_cycles)
    if found is not None:
        cyc = profile(values, t0, step_s, found[0], min_strength, found[1])
        if cyc is not None:
            return cyc
    if known_s > 0 and values.size >= min_cycles * known_s / step_s:
        return profile(values, t0, step_s, known_s, min_strength, math.nan)
    return None


def profile(values: FloatArray, t0: float, step_s: float, period_s: float,
            min_strength: float, acf: float = math.nan) -> Cycle | None:
    """The profile of the cycle of ``period_s`` seconds in ``values`` (as ``learn``), or None
    when it explains less than ``min_strength`` or has a GC sawtooth's shape."""
    width = period_s / step_s  # buckets per period, not an integer
    w = max(2, round(width))
    if values.size < 2 * w:
        return None
    # Centred one-period moving average: the level (and a leak's rise) without the cycle.
    c = np.concatenate(([0.0], np.cumsum(values)))
    ma = (c[w:] - c[:-w]) / w  # ma[i] averages values[i : i + w]
    centre = np.arange(ma.size) + (w - 1) / 2.0
    rest = np.interp(np.arange(values.size), centre, ma)
    valid = slice(w // 2, values.size - (w - 1 - w // 2))
    r = (values - rest)[valid]
    mids = (t0 + step_s * (np.arange(values.size) + 0.5))[valid]
    bins = int(min(MAX_BINS, max(4, round(width))))
    # Phase counted back from the newest bucket's end: an error in the period then misplaces
    # the recent cycles least, and those are the ones the forecaster is about to extend.
    anchor = t0 + values.size * step_s
    phase = np.floor(((mids - anchor) / period_s % 1.0) * bins).astype(np.int64) % bins
    counts = np.bincount(phase, minlength=bins)
    if counts.min() == 0:
        return None
    prof = np.bincount(phase, r, minlength=bins) / counts
    prof = prof - prof.mean()
    total = float(np.var(r))
    if total <= 0 or r.size <= 2 * bins:
        return None
    # Adjusted for the bins' own freedom: ``bins`` means of a short noisy series explain
    # bins/len of it by chance alone (a third, on three cycles of noise).
    unexplained = float(np.var(r - prof[phase])) / (r.size - bins) * (r.size - 1)
    strength = 1.0 - unexplained / total
    if strength < min_strength or _sawtooth(prof):
        return None
    return Cycle(period_s, tuple(float(x) for x in prof), anchor, period_s / bins, strength, acf)
