"""Synthetic memory traces, exhausting and not, for bench/forecast_eval.py.

Every trace is a fraction of its limit (limit = 1.0). Exhausting kinds have a warm-up, then a leak
until the first sample at or over the limit, where the trace ends (the container would be killed
there). Quiet kinds never reach the limit and only count false alarms. Parameters are drawn from
one seeded generator over wide ranges (rates, noise, step sizes, tooth lengths, cycle periods,
sampling intervals), so a trace is fully determined by ``(kind, seed, horizon_s)``; the
evaluation tunes on one range of seeds and scores on another, never used for tuning.

The leak's duration (start to exhaustion) is drawn between 2 horizons and 24 h, so every leak
is visible at least a horizon ahead; the sampling interval between 5 s and 5 min, at most a fifth
of the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DAY_S = 86400.0
LEAKS = ("linear", "accelerating", "stepwise", "sawtooth_gc", "cycle_leak")
QUIET = ("cycle_high", "sawtooth_high", "cache_plateau")
KINDS = LEAKS + QUIET
INTERVALS = (5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Trace:
    """One series: times (epoch s), values (fraction of the limit), exhaustion time or None."""

    name: str
    t: FloatArray
    v: FloatArray
    limit: float
    t_exhaust: float | None  # epoch s of the first sample >= limit (the last sample); None: quiet
    interval_s: float


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _cycle(rng: np.random.Generator, t: FloatArray, period: float) -> FloatArray:
    """A zero-mean cycle of ``period`` s: a sine, or a batch-like plateau, amplitude 1."""
    phase = rng.uniform(0, 2 * np.pi)
    x = 2 * np.pi * t / period + phase
    if rng.random() < 0.5:
        return np.asarray(np.sin(x))
    return np.asarray(np.tanh(3 * np.sin(x)))  # a batch: on for half the cycle, off the other


def _teeth(rng: np.random.Generator, t: FloatArray, period: float) -> FloatArray:
    """A GC sawtooth in [0, 1): rises over a jittered tooth length, falls back at a collection."""
    n_teeth = int((t[-1] - t[0]) / period) + 2
    gaps = period * rng.uniform(0.8, 1.2, n_teeth)
    starts = t[0] - rng.uniform(0, period) + np.concatenate(([0.0], np.cumsum(gaps)))
    k = np.searchsorted(starts, t, side="right") - 1
    return np.asarray((t - starts[k]) / gaps[np.minimum(k, n_teeth - 1)])


def _finish(name: str, t: FloatArray, clean: FloatArray, noise: FloatArray, dt: float) -> Trace:
    """Cut at the first sample at or over the limit: there the container would be killed."""
    v = clean + noise
    over = np.flatnonzero((clean >= 1.0) | (v >= 1.0))
    if over.size == 0:
        raise ValueError(f"{name}: trace never reaches its limit")
    end = int(over[0]) + 1
    v[end - 1] = max(v[end - 1], 1.0)
    return Trace(name, t[:end], v[:end], 1.0, float(t[end - 1]), dt)


def make(kind: str, seed: int, horizon_s: float = 1800.0) -> Trace:
    """Draw one trace of ``kind`` (see ``KINDS``) from ``seed`` for a forecast ``horizon_s``."""
    if kind not in KINDS:
        raise ValueError(f"unknown trace kind {kind!r}")
    rng = np.random.default_rng([seed, KINDS.index(kind), int(horizon_s)])
    allowed = [d for d in INTERVALS if d <= horizon_s / 5]
    dt = float(rng.choice(allowed))
    base = rng.uniform(0.1, 0.6)  # resting level, fraction of the limit
    sigma = _loguniform(rng, 0.001, 0.01)  # workload noise, fraction of the limit
    leak_s = _loguniform(rng, max(2 * horizon_s, 3600.0), 24 * 3600)
    period = _loguniform(rng, 1200.0, DAY_S)  # cycle period (cycle kinds)
    warm_s = rng.uniform(4, 24) * 3600
    if kind in ("cycle_leak", "cycle_high"):
        warm_s = max(warm_s, rng.uniform(2.5, 3.5) * period)
        dt = max(dt, 30.0) if period > 6 * 3600 else dt  # keep multi-day traces affordable
    t0 = 1.7e9 + rng.uniform(0, DAY_S)
    total = warm_s + (leak_s * 3.0 if kind in LEAKS else max(DAY_S, 4 * period))
    n = int(total / dt)
    t = t0 + dt * np.arange(n, dtype=np.float64)
    x = np.clip(t - t0 - warm_s, 0.0, None)  # seconds since the leak started
    noise = rng.normal(0.0, sigma, n)
    head = 1.0 - base
    name = f"{kind}-{seed}"
    if kind == "linear":
        return _finish(name, t, base + head * x / leak_s, noise, dt)
    if kind == "accelerating":
        return _finish(name, t, base + head * (x / leak_s) ** rng.uniform(1.3, 3.0), noise, dt)
    if kind == "stepwise":
        # A cache that grows by an allocation never freed: random step sizes at random times.
        every = _loguniform(rng, 120.0, min(2 * 3600.0, leak_s / 4))
        n_steps = int(3 * leak_s / every) + 2
        at = t0 + warm_s + np.cumsum(rng.exponential(every, n_steps))
        size = rng.exponential(1.0, n_steps)
        per_s = head / leak_s  # mean growth rate, fraction per s
        size *= per_s * every / size.mean()
        grown = np.concatenate(([0.0], np.cumsum(size)))[np.searchsorted(at, t, side="right")]
        return _finish(name, t, base + grown, noise, dt)
    if kind == "sawtooth_gc":
        tooth = _loguniform(rng, 60.0, 3600.0)
        amp = rng.uniform(0.03, 0.3)
        head -= amp  # the teeth's peaks are what hit the limit
        return _finish(name, t, base + amp * _teeth(rng, t, tooth) + head * x / leak_s, noise, dt)
    if kind == "cycle_leak":
        amp = rng.uniform(0.03, 0.15)
        head -= 2 * amp
        clean = base + amp + amp * _cycle(rng, t, period) + head * x / leak_s
        return _finish(name, t, clean, noise, dt)
    # Quiet kinds: they peak between 85 and 97 % of the limit, never at it.
    peak = rng.uniform(0.85, 0.97) - 2 * sigma
    if kind == "cycle_high":
        amp = rng.uniform(0.05, 0.3)
        clean = peak - amp + amp * _cycle(rng, t, period)
    elif kind == "sawtooth_high":
        amp = rng.uniform(0.05, 0.4)
        clean = peak - amp + amp * _teeth(rng, t, _loguniform(rng, 60.0, 3600.0))
    else:  # cache_plateau: grows like a leak for a while, then the cache is full and stays flat
        fill_s = _loguniform(rng, 2 * 3600.0, 12 * 3600.0)
        clean = base + (peak - base) * np.minimum(x / fill_s, 1.0)
    v = np.minimum(clean + noise, 0.995)
    return Trace(name, t, v, 1.0, None, dt)
