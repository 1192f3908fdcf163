"""Refits with the real statsmodels, and the spawned worker pool that runs them."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from healthd.foresight import forecast, holt, refit
from healthd.foresight.forecast import FittedParams
from healthd.foresight.settings import ForecastSettings


def test_holt_fit_on_a_small_series_returns_usable_smoothing():
    rng = np.random.default_rng(0)
    values = 0.5 + 1e-3 * np.arange(120) + rng.normal(0, 0.01, 120)
    params = refit.fit(values, 10.0, t_end=1234.0)
    assert 0.0 <= params.alpha <= 1.0
    assert 0.0 <= params.beta <= 1.0
    assert params.season == ()
    assert params.fitted_at == 1234.0


def test_seasonal_fit_returns_a_zero_mean_profile_in_phase_with_the_data():
    rng = np.random.default_rng(1)
    period, step_s, t0 = 24, 3600.0, 1.7e9 - (1.7e9 % 86400)
    k = np.arange(period * 3)
    long = 10 + 3 * np.sin(2 * np.pi * k / period) + rng.normal(0, 0.1, k.size)
    recent = 10 + rng.normal(0, 0.1, 60)
    params = refit.fit(
        recent,
        60.0,
        period,
        t_end=t0 + k.size * step_s,
        long_values=long,
        long_t0=t0,
        long_step_s=step_s,
    )
    assert len(params.season) == period
    assert params.gamma is not None
    assert sum(params.season) == pytest.approx(0.0, abs=1e-9)
    state = forecast.step(None, 0.0, 10.0, 100.0, ForecastSettings())[0]
    state = forecast.apply_fit(state, params)
    peak = t0 + 6 * step_s  # sin peaks at a quarter period
    trough = t0 + 18 * step_s
    assert holt.seasonal_offset(state, peak) == pytest.approx(3.0, abs=0.6)
    assert holt.seasonal_offset(state, trough + 5 * period * step_s) == pytest.approx(
        -3.0, abs=0.6
    )


DAY_BUCKETS, BUCKET_S = 96, 900.0  # the daily fit's defaults: 15-minute buckets


def _daily_fit(long: np.ndarray, strength: float) -> FittedParams:
    t0 = 1.7e9 - (1.7e9 % 86400)
    return refit.fit(0.5 + np.random.default_rng(3).normal(0, 0.01, 60), 10.0, DAY_BUCKETS,
                     t_end=t0 + long.size * BUCKET_S, long_values=long, long_t0=t0,
                     long_step_s=BUCKET_S, season_strength=strength)


def gc_teeth_buckets(days: int, seed: int = 4) -> np.ndarray:
    """15-minute means of a GC sawtooth (40-60 min teeth, 0.3 high) sampled every 10 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, days * 86400, 10.0)
    starts = np.cumsum(rng.uniform(2400, 3600, int(days * 86400 / 2400) + 2))
    k = np.searchsorted(starts, t)
    phase = (t - np.concatenate(([0.0], starts))[k]) / 3600
    v = 0.6 + 0.3 * np.minimum(phase, 1.0) + rng.normal(0, 0.005, t.size)
    return np.asarray(v.reshape(-1, 90).mean(axis=1))


def test_a_daily_fit_on_gc_teeth_is_refused_and_says_so():
    long = gc_teeth_buckets(4)
    assert len(_daily_fit(long, 0.0).season) == DAY_BUCKETS  # unchecked: a profile of noise
    params = _daily_fit(long, 0.3)
    assert (params.season, params.no_season, params.gamma) == ((), True, None)


def test_a_real_daily_curve_passes_the_daily_fits_strength_test():
    k = np.arange(DAY_BUCKETS * 2 + 1)  # just over two days: the first fit, the least data
    long = 0.5 + 0.1 * np.sin(2 * np.pi * k / DAY_BUCKETS)
    long += np.random.default_rng(5).normal(0, 0.02, k.size)
    params = _daily_fit(long, 0.3)
    assert len(params.season) == DAY_BUCKETS and not params.no_season


@pytest.mark.parametrize(
    "values",
    [np.full(50, 3.0), np.arange(5.0), np.array([1.0, math.nan] * 20)],
    ids=["constant", "too-short", "nan"],
)
def test_fit_rejects_series_it_cannot_fit(values):
    with pytest.raises(refit.FitError):
        refit.fit(values, 10.0)


def test_fit_request_adds_the_seasonal_part_once_enough_buckets_exist():
    settings = ForecastSettings(season_s=3600.0, season_buckets=6, season_min_cycles=2, window=20)
    ring, down = refit.buffers(settings)
    assert down is not None
    state = None
    for i in range(60):  # 60 samples 60 s apart: 5 closed buckets of 600 s, 12 needed
        t, v = float(i * 60), float(i % 7)
        ring.append(t, v)
        down.add(t, v)
        state = forecast.step(state, t, v, 100.0, settings)[0]
    assert state is not None
    assert refit.fit_request(ring, down, settings, state)["season_len"] is None
    for i in range(60, 160):
        t, v = float(i * 60), float(i % 7)
        ring.append(t, v)
        down.add(t, v)
        state = forecast.step(state, t, v, 100.0, settings)[0]
    req = refit.fit_request(ring, down, settings, state)
    assert req["season_len"] == 6
    assert len(req["values"]) == 20
    assert req["long_step_s"] == 600.0
    assert req["interval_s"] == pytest.approx(60.0)


def _wait(pool: refit.RefitPool, deadline_s: float) -> list[tuple[str, FittedParams]]:
    end = time.monotonic() + deadline_s
    got: list[tuple[str, FittedParams]] = []
    while pool.pending() and time.monotonic() < end:
        got += pool.poll()
        time.sleep(0.05)
    return got + pool.poll()


@pytest.mark.timeout(60)
def test_refit_pool_returns_fits_from_a_spawned_process_and_drops_failures():
    rng = np.random.default_rng(2)
    values = 0.5 + 1e-3 * np.arange(100) + rng.normal(0, 0.01, 100)
    pool = refit.RefitPool(max_queue=2)
    try:
        assert pool.submit("api/memory", values, 10.0, None, t_end=5.0)
        assert not pool.submit("api/memory", values, 10.0, None)  # one in flight per series
        assert pool.submit("db/memory", np.full(50, 1.0), 10.0, None)  # constant: fails
        assert not pool.submit("web/memory", values, 10.0, None)  # queue full
        assert pool.poll() == [] or pool.pending() < 2  # poll never blocks
        got = _wait(pool, 45.0)
    finally:
        pool.close()
    assert [k for k, _ in got] == ["api/memory"]
    assert got[0][1].fitted_at == 5.0
    assert (pool.submitted, pool.dropped, pool.completed, pool.failed) == (2, 2, 1, 1)


# A daemon that starts its refit worker, says the worker's pid and is SIGKILLed.
_KILLED_PARENT = """
import os, signal
from healthd.foresight import refit
pool = refit.RefitPool()
print(pool._pool().submit(os.getpid).result(timeout=60), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_refit_worker_exits_when_its_daemon_is_sigkilled(tmp_path):
    # Output to a file, not a pipe: a worker that outlives the daemon would hold a pipe open.
    out = tmp_path / "out"
    with open(out, "w") as fh:
        proc = subprocess.run([sys.executable, "-c", _KILLED_PARENT], stdout=fh,
                              stderr=subprocess.STDOUT, timeout=90, check=False)
    assert proc.returncode == -9, out.read_text()
    worker = int(out.read_text().split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if psutil.Process(worker).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        psutil.Process(worker).kill()
        pytest.fail(f"refit worker {worker} outlived its SIGKILLed daemon by 15 s")
