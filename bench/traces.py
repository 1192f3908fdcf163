"""Synthetic leak traces with a known exhaustion time, for bench/forecast_eval.py.

Every trace is a fraction of its limit (limit = 1.0) sampled every ``INTERVAL_S`` seconds: a flat
(or daily-cycling) warm-up, then a leak until the first sample at or over the limit, where the
trace ends (the container would be killed there). Parameters are drawn from one seeded generator,
so a trace is fully determined by ``(kind, seed)``; the evaluation tunes on one range of seeds and
scores on another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

INTERVAL_S = 30.0
DAY_S = 86400.0
KINDS = ("linear", "stepwise", "accelerating", "sawtooth_gc", "daily_leak")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Trace:
    """One exhausting series: times (epoch s), values (fraction of the limit), exhaustion time."""

    name: str
    t: FloatArray
    v: FloatArray
    limit: float
    t_exhaust: float  # epoch s of the first sample >= limit (the last sample)


def _finish(name: str, t: FloatArray, clean: FloatArray, noise: FloatArray) -> Trace:
    """Cut at the noise-free crossing: the leak, not a noisy reading, defines exhaustion."""
    over = np.flatnonzero(clean >= 1.0)
    if over.size == 0:
        raise ValueError(f"{name}: trace never reaches its limit")
    end = int(over[0]) + 1
    v = clean[:end] + noise[:end]
    return Trace(name, t[:end], v, 1.0, float(t[end - 1]))


def make(kind: str, seed: int) -> Trace:
    """Draw one trace of ``kind`` (see ``KINDS``) from ``seed``."""
    if kind not in KINDS:
        raise ValueError(f"unknown trace kind {kind!r}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    base = rng.uniform(0.2, 0.5)  # resting level, fraction of the limit
    sigma = rng.uniform(0.002, 0.015)  # workload noise, fraction of the limit
    leak_s = rng.uniform(3 * 3600, 24 * 3600)  # leak start to (noise-free) exhaustion
    warm_s = rng.uniform(2.2, 3.0) * DAY_S if kind == "daily_leak" else rng.uniform(6, 24) * 3600
    t0 = 1.7e9 + rng.uniform(0, DAY_S)  # random phase against the day
    n = int((warm_s + leak_s * 3.0) / INTERVAL_S)  # cut at the crossing; the cycle may delay it
    t = t0 + INTERVAL_S * np.arange(n, dtype=np.float64)
    x = np.clip(t - t0 - warm_s, 0.0, None)  # seconds since the leak started
    head = 1.0 - base
    if kind == "linear":
        trend = head * x / leak_s
    elif kind == "stepwise":
        period = rng.uniform(10, 40) * 60  # an allocation that is never freed, every period
        trend = head * np.floor(x / period) * period / leak_s
    elif kind == "accelerating":
        power = rng.uniform(1.5, 2.5)
        trend = head * (x / leak_s) ** power
    elif kind == "sawtooth_gc":
        period = rng.uniform(20, 60) * 60  # a GC cycle
        amp = rng.uniform(0.05, 0.15)
        saw = amp * ((t - t0) % period) / period
        head -= amp  # the sawtooth's peaks are what hit the limit
        trend = saw + head * x / leak_s
    elif kind == "daily_leak":
        amp = rng.uniform(0.05, 0.15)
        phase = rng.uniform(0, 2 * np.pi)
        daily = amp * np.sin(2 * np.pi * (t % DAY_S) / DAY_S + phase)
        head -= amp
        trend = daily + head * x / leak_s
    return _finish(f"{kind}-{seed}", t, base + trend, rng.normal(0.0, sigma, n))
