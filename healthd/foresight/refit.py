"""Periodic, off-the-hot-path fitting of the forecaster's smoothing parameters.

Owns: ``fit`` (statsmodels ``ExponentialSmoothing``: Holt on recent samples, Holt-Winters additive
on the downsampled long series; ``foresight.cycles``' period search on a finer one) and
``RefitPool``, the daemon's bounded worker that runs ``fit`` in one spawned child process.
Must never: import statsmodels at module level (it costs ~1.2 s and ~110 MB RSS, which the daemon
must not keep resident), block the caller, or raise a failed fit into the daemon.

Bounded CPU: one worker process, at most one job in flight per series, at most ``max_queue`` jobs
queued in total; a submission beyond that is dropped and counted. The child is recycled after
``max_tasks_per_child`` fits so whatever statsmodels allocated is given back to the OS.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import multiprocessing
import os
import sys
import threading
import time
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from healthd.foresight import cycles, forecast, holt
from healthd.foresight.forecast import FittedParams
from healthd.foresight.holt import SeriesState
from healthd.foresight.series import Downsampler, Ring
from healthd.foresight.settings import ForecastSettings

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_MIN_HOLT = 10  # fewer samples than this cannot pin down level, trend and their smoothing
# A long cycle this close to the daily period (share of it) is the day's own curve.
DAILY_TOLERANCE = 0.05


class FitError(ValueError):
    """The series cannot be fitted (too short, constant, not finite)."""


def _clean(values: Any, what: str, minimum: int) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size < minimum:
        raise FitError(f"{what}: {arr.size} points, need at least {minimum}")
    if not np.all(np.isfinite(arr)):
        raise FitError(f"{what}: contains NaN or infinite values")
    if float(np.ptp(arr)) == 0.0:
        # statsmodels divides by the variance; a constant series has nothing to fit anyway.
        raise FitError(f"{what}: constant series")
    return arr


def _seasonal(
    long_values: FloatArray, season_len: int, t0: float, step_s: float
) -> tuple[float, tuple[float, ...], float]:
    """(gamma, zero-mean profile, epoch s of profile bucket 0) from a Holt-Winters additive fit."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    model = ExponentialSmoothing(
        long_values,
        trend="add",
        seasonal="add",
        seasonal_periods=season_len,
        # "estimated" would optimise one initial state per bucket (~100 parameters with numeric
        # gradients, ~0.4 s a fit); the heuristic start leaves only alpha, beta and gamma.
        initialization_method="heuristic",
    )
    res = model.fit(use_brute=False)
    season = np.asarray(res.season, dtype=np.float64)[-season_len:]
    profile = season - float(season.mean())  # additive: a non-zero mean belongs to the level
    first = long_values.size - season_len  # the profile's bucket 0 is this bucket of the series
    gamma = float(res.params["smoothing_seasonal"])
    return gamma, tuple(float(x) for x in profile), t0 + first * step_s


def _learn_cycle(cycle: dict[str, Any] | None) -> cycles.Cycle | None:
    """The cycle of the fine downsampled series (``fit_request``'s ``cycle`` entry), if any;
    else one longer than ``max_s`` in the long series, when the request carries it."""
    if not cycle:
        return None
    known = cycle.get("known_s", 0.0)
    found = cycles.learn(np.asarray(cycle["values"], dtype=np.float64), cycle["t0"],
                         cycle["step_s"], cycle["min_s"], cycle["max_s"], cycle["strength"],
                         known_s=known if known <= cycle["max_s"] else 0.0)
    if found is not None or "long_values" not in cycle:
        return found
    # Cycles of half a day to a day and a half (a 16-hour batch, a shift pattern) do not
    # fit three times in the fine series; the daily profile's 15-minute buckets hold four
    # days. Their rising halves were most false alarms at a one-hour horizon (cycle_high,
    # tuning seeds: 90 of 124 on cycles over 12 h; 71 in all with this search).
    long_values = np.asarray(cycle["long_values"], dtype=np.float64)
    found = cycles.learn(long_values, cycle["long_t0"], cycle["long_step_s"], cycle["max_s"],
                         long_values.size * cycle["long_step_s"], cycle["strength"],
                         known_s=known if known > cycle["max_s"] else 0.0)
    daily = cycle.get("daily_s", 0.0)
    if found is not None and daily > 0 and abs(found.period_s / daily - 1.0) <= DAILY_TOLERANCE:
        return None  # the day's own curve: the daily profile's (Holt-Winters) to model
    return found


def fit(
    values: Any,
    interval_s: float,
    season_len: int | None = None,
    *,
    t_end: float = 0.0,
    long_values: Any = None,
    long_t0: float = 0.0,
    long_step_s: float = 0.0,
    cycle: dict[str, Any] | None = None,
    season_strength: float = 0.0,
) -> FittedParams:
    """Fit Holt's alpha and beta on recent samples, and optionally an additive seasonal profile.

    ``values``: recent samples, oldest first, about ``interval_s`` seconds apart; the last one taken
    at epoch ``t_end``. ``season_len``: seasonal period in buckets of the long series; with it,
    ``long_values`` are bucket means ``long_step_s`` seconds wide, the first one starting at epoch
    ``long_t0``. Without ``long_values`` but with ``season_len`` the seasonal fit runs on
    ``values`` themselves (period ``season_len`` samples). ``cycle``: the fine downsampled series
    (``values``, ``t0``, ``step_s``), the search range (``min_s``, ``max_s``, ``strength``) and
    the period in use (``known_s``);
    a regular cycle found there (``foresight.cycles``) is the profile, in place of the daily one.
    The recent samples are deseasonalised with the new profile before the Holt fit, as the
    forecaster will deseasonalise them.
    Raises ``FitError`` (or whatever statsmodels raises) when the data cannot be fitted.
    Cost: ~10-20 ms for Holt on 360 points, ~0.1-0.2 s for Holt-Winters on 384 buckets, a few ms
    for the cycle search on ~1,000 buckets.
    """
    recent = _clean(values, "recent samples", _MIN_HOLT)
    gamma: float | None = None
    profile: tuple[float, ...] = ()
    season_t0 = 0.0
    step_s = 0.0
    weak = False
    with warnings.catch_warnings():
        # Convergence chatter from the optimiser is expected on short noisy series; the clamping
        # in holt.py bounds whatever comes out.
        warnings.simplefilter("ignore")
        found = _learn_cycle(cycle)
        if found is not None:
            profile, season_t0, step_s = found.profile, found.t0, found.step_s
        elif season_len is not None:
            if long_values is None:
                long_arr = recent
                long_t0 = t_end - (recent.size - 1) * interval_s
                long_step_s = interval_s
            else:
                long_arr = _clean(long_values, "long series", 2 * season_len + 1)
            if long_step_s <= 0:
                raise FitError(f"long_step_s must be > 0, got {long_step_s}")
            # The same test as a learnt cycle's, before the costlier fit: the daily shape
            # must explain a share of what the day's own mean leaves.
            weak = season_strength > 0 and cycles.profile(
                long_arr, long_t0, long_step_s, season_len * long_step_s,
                season_strength) is None
            if not weak:
                gamma, profile, season_t0 = _seasonal(long_arr, season_len, long_t0,
                                                      long_step_s)
                step_s = long_step_s
        if profile:
            times = t_end - interval_s * np.arange(recent.size - 1, -1, -1, dtype=np.float64)
            recent = recent - holt.seasonal_offsets(profile, season_t0, step_s, times,
                                                    smooth=found is not None)
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        model = ExponentialSmoothing(recent, trend="add", initialization_method="estimated")
        res = model.fit(use_brute=False)
    alpha = float(res.params["smoothing_level"])
    beta = float(res.params["smoothing_trend"])
    if not (np.isfinite(alpha) and np.isfinite(beta)):
        raise FitError(f"fit returned non-finite parameters alpha={alpha} beta={beta}")
    return FittedParams(
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        season=profile,
        season_t0=season_t0,
        season_step_s=step_s,
        fitted_at=t_end,
        cycle=found is not None,
        no_cycle=bool(cycle) and found is None,
        no_season=weak,
    )


def buffers(settings: ForecastSettings) -> tuple[Ring, Downsampler | None]:
    """The bounded history one series keeps for its refits: a ring and, if seasonal, a downsampler.

    Memory: ``2 * window + season_buckets * season_keep_cycles`` floats per series (a
    downsampler keeps its bucket means only).
    """
    ring = Ring(settings.window)
    width = forecast.bucket_s(settings)
    if width <= 0:
        return ring, None
    return ring, Downsampler(width, settings.season_buckets * settings.season_keep_cycles)


def cycle_buffer(settings: ForecastSettings) -> Downsampler | None:
    """The fine downsampled series the cycle search runs on; None when cycles are not learnt.

    Memory: ``cycle_buckets`` floats per series (8.6 KB at the default 1,080 buckets).
    """
    if settings.cycle_max_s <= 0:
        return None
    # No gap filling beyond a tenth of the series: a longer fill would invent whole cycles.
    return Downsampler(settings.cycle_bucket_s, settings.cycle_buckets,
                       max_gap=max(1, settings.cycle_buckets // 10))


def _cycle_request(fine: Downsampler | None, down: Downsampler | None,
                   settings: ForecastSettings, state: SeriesState) -> dict[str, Any] | None:
    """``fit``'s ``cycle`` argument once the fine series spans three of the shortest periods,
    with the period of the cycle in use (``known_s``, 0 if none) to test again, and the long
    (daily profile's) series once it spans three of ``cycle_max_s``: cycles longer than that
    are searched there."""
    if fine is None:
        return None
    shortest = max(4, math.ceil(settings.cycle_min_s / fine.bucket_s))
    if len(fine) < 3 * shortest:
        return None
    request: dict[str, Any] = {
        "values": fine.values(),
        "t0": float(fine.starts()[0]),
        "step_s": fine.bucket_s,
        "min_s": settings.cycle_min_s,
        "max_s": settings.cycle_max_s,
        "strength": settings.cycle_strength,
        "known_s": len(state.season) * state.season_step_s if state.season_cycle else 0.0,
    }
    if down is not None and len(down) * down.bucket_s >= 3 * settings.cycle_max_s:
        request.update(long_values=down.values(), long_t0=float(down.starts()[0]),
                       long_step_s=down.bucket_s, daily_s=settings.season_s)
    return request


def fit_request(
    ring: Ring, down: Downsampler | None, settings: ForecastSettings, state: SeriesState,
    fine: Downsampler | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``fit`` / ``RefitPool.submit`` from one series' history and state.

    The daemon and replay both build their jobs here, so they fit on the same inputs. The seasonal
    part is included only when ``forecast.season_due`` says so; the cycle search (``fine``, the
    series of ``cycle_buffer``) on every refit once it has enough history: it costs milliseconds.
    The sampling interval passed on is the forecaster's nominal one (``state.dt_nom``).
    """
    last = ring.last()
    t_end = last[0] if last else state.last_t
    request: dict[str, Any] = {
        "values": ring.values(),
        "interval_s": state.dt_nom,
        "season_len": None,
        "t_end": t_end,
    }
    if down is not None and forecast.season_due(state, len(down), t_end, settings):
        starts = down.starts()
        request.update(
            season_len=forecast.season_len(settings),
            long_values=down.values(),
            long_t0=float(starts[0]),
            long_step_s=down.bucket_s,
            season_strength=settings.season_strength,
        )
    # A GC sawtooth has its own guard (alarm.before_next_fall); taken for a cycle, its
    # jittered teeth (or pairs of them) would become the profile and its rising floor would
    # hide under the residual spread. Sharp falls seen at least twice, the last within
    # three of their gaps, say sawtooth, however irregular.
    gc = holt.gc_cycle(state)
    sawtooth = (gc.fall_t is not None and gc.cycle_s > 0
                and state.last_t - gc.fall_t <= 3 * gc.cycle_s)
    cycle = None if sawtooth else _cycle_request(fine, down, settings, state)
    if cycle is not None:
        request["cycle"] = cycle
    return request


def exit_with_parent(poll_s: float = 1.0) -> None:
    """The worker's initializer: it exits once the daemon that started it is gone.

    Why: the pool's worker waits on a queue whose write end it holds itself, so it never
    sees its parent die; a SIGKILLed healthd left its worker running for good (under
    systemd or in a container the cgroup or namespace goes with it; run by hand, nothing
    did). A thread, not PR_SET_PDEATHSIG: that fires when the *thread* that started the
    child ends, and the pool starts its replacement workers from a thread of its own.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class RefitPool:
    """One spawned worker process running ``fit`` jobs for the daemon. Not thread-safe.

    Counters (``submitted``, ``dropped``, ``completed``, ``failed``) are for metrics.
    """

    def __init__(self, max_queue: int = 16, max_tasks_per_child: int = 200) -> None:
        if max_queue < 1 or max_tasks_per_child < 1:
            raise ValueError("max_queue and max_tasks_per_child must be >= 1")
        self.max_queue = max_queue
        self.max_tasks_per_child = max_tasks_per_child
        self._executor: cf.ProcessPoolExecutor | None = None
        self._inflight: dict[str, cf.Future[FittedParams]] = {}
        self._tasks_in_child = 0  # only used where max_tasks_per_child is unavailable (3.10)
        self.submitted = 0
        self.dropped = 0
        self.completed = 0
        self.failed = 0

    def _pool(self) -> cf.ProcessPoolExecutor:
        if self._executor is not None and sys.version_info < (3, 11):
            # Python 3.10 has no max_tasks_per_child: recycle by hand once the worker is idle.
            if self._tasks_in_child >= self.max_tasks_per_child and not self._inflight:
                self._executor.shutdown(wait=True)
                self._executor = None
        if self._executor is None:
            # One BLAS thread in the child: threaded BLAS makes these small fits ~3x slower and
            # would spread them over every core. The parent's numpy is already loaded, so setting
            # these here only affects the children it starts.
            for var in _THREAD_VARS:
                os.environ.setdefault(var, "1")
            # spawn, so the child starts clean and the parent never imports statsmodels.
            ctx = multiprocessing.get_context("spawn")
            if sys.version_info >= (3, 11):
                self._executor = cf.ProcessPoolExecutor(
                    max_workers=1, mp_context=ctx, max_tasks_per_child=self.max_tasks_per_child,
                    initializer=exit_with_parent,
                )
            else:
                self._executor = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx,
                                                        initializer=exit_with_parent)
            self._tasks_in_child = 0
        return self._executor

    def pending(self) -> int:
        """Jobs queued or running."""
        return len(self._inflight)

    def submit(
        self,
        key: str,
        values: Any,
        interval_s: float,
        season_len: int | None = None,
        **kwargs: Any,
    ) -> bool:
        """Queue a fit for series ``key``; False (and ``dropped`` + 1) when it was not queued.

        Not queued: a job for ``key`` is still in flight, or ``max_queue`` jobs are. ``kwargs``
        go to ``fit`` (``t_end``, ``long_values``, ``long_t0``, ``long_step_s``, ``cycle``).
        """
        if key in self._inflight or len(self._inflight) >= self.max_queue:
            self.dropped += 1
            return False
        arr = np.array(values, dtype=np.float64)  # a copy: the caller's ring moves on
        try:
            fut = self._pool().submit(fit, arr, interval_s, season_len, **kwargs)
        except (RuntimeError, OSError) as exc:  # broken or shut-down pool: start afresh next time
            log.warning("refit pool unavailable, job for %s dropped: %s", key, exc)
            self._executor = None
            self.dropped += 1
            return False
        self._inflight[key] = fut
        self._tasks_in_child += 1
        self.submitted += 1
        return True

    def poll(self) -> list[tuple[str, FittedParams]]:
        """Finished fits as (key, params); never blocks, never raises for a failed fit."""
        done: list[tuple[str, FittedParams]] = []
        for key, fut in list(self._inflight.items()):
            if not fut.done():
                continue
            del self._inflight[key]
            try:
                done.append((key, fut.result()))
                self.completed += 1
            except Exception as exc:  # noqa: BLE001 - any failure of a fit is logged and dropped
                self.failed += 1
                log.info("refit of %s failed: %s: %s", key, type(exc).__name__, exc)
        return done

    def close(self) -> None:
        """Stop the worker; queued jobs are cancelled, a running one is abandoned."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._inflight.clear()
