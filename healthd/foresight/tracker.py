"""Per-series forecasting state for the daemon: ring buffers, Holt state, refit scheduling.

Owns: one ``Tracker`` per (container, resource) and per host resource, and the refit worker
pool. ``Tracker`` is also what ``replay`` drives, so daemon and replay run the very same
forecaster and alarm logic. Must never: decide what to do about a forecast (that is
``classify``/``decide``) or import statsmodels (fits run in ``refit``'s worker process).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from healthd.core.model import ForecastView, Resource, Usage
from healthd.foresight import forecast, refit
from healthd.foresight.forecast import Forecast
from healthd.foresight.holt import SeriesState
from healthd.foresight.settings import ForecastSettings

log = logging.getLogger(__name__)


class Tracker:
    """One series: bounded history plus the O(1) forecaster state.

    Daemon and replay both drive this class, so they schedule and apply refits identically;
    only where the fit runs differs (a worker process, or in process for replay).
    """

    def __init__(self, settings: ForecastSettings) -> None:
        self.settings = settings
        self.ring, self.long = refit.buffers(settings)
        self.fine = refit.cycle_buffer(settings)
        self.state: SeriesState | None = None
        self._unmarked: SeriesState | None = None
        self._last: tuple[float, Forecast] | None = None  # the last folded sample's limit, verdict
        self._min_gap = settings.min_gap_s()  # kept aside: observe runs for every sample

    def observe(
        self, t: float, value: float, limit: float
    ) -> tuple[Forecast, dict[str, Any] | None]:
        """Fold one sample in; returns the forecast and, when one is due, a refit request
        (keyword arguments for ``refit.fit`` / ``RefitPool.submit``).

        A sample less than ``step_s`` after the last folded one is not taken (the last verdict
        is returned): the forecaster then sees a quiet series as sampled every ``step_s``,
        which is all its horizons of minutes need, at a fraction of the cost on a 5 s sweep.
        It is taken all the same when it is at or over the limit (an alarm at once), when the
        limit changed (the forecast is against the new one), and while the last verdict was
        alarming or an alarm: confirming and releasing count ticks, and at a step's pace a
        CPU alarm at the limit outlived the load by 30 s and held a scaler at "wants more".
        """
        last = self._last
        if (last is not None and self.state is not None and t - self.state.last_t < self._min_gap
                and value < limit and limit == last[0] and not (last[1].alarm
                                                                or last[1].alarming)):
            return last[1], None
        self.ring.append(t, value)
        if self.long is not None:
            self.long.add(t, value)
        if self.fine is not None:
            self.fine.add(t, value)
        self.state, fc = forecast.step(self.state, t, value, limit, self.settings)
        self._last = (limit, fc)
        if not forecast.refit_due(self.state, t, self.settings):
            return fc, None
        self._unmarked = self.state
        self.state = forecast.mark_refit(self.state, t)
        return fc, refit.fit_request(self.ring, self.long, self.settings, self.state, self.fine)

    def refit_refused(self) -> None:
        """The worker queue was full: ask again on the next sample instead of a period later."""
        if self.state is not None and self._unmarked is not None:
            self.state = dataclasses.replace(
                self.state, refit_requested_at=self._unmarked.refit_requested_at)

    def apply(self, fit: forecast.FittedParams) -> None:
        """Adopt a finished refit."""
        if self.state is not None:
            self.state = forecast.apply_fit(self.state, fit)


def _series(usage: Usage) -> list[tuple[Resource, float, float]]:
    """(resource, value, limit) for each limited resource in a sample."""
    out = []
    if usage.mem_bytes is not None and usage.mem_limit_bytes:
        out.append((Resource.MEMORY, float(usage.mem_bytes), float(usage.mem_limit_bytes)))
    if usage.cpu_fraction is not None:
        out.append((Resource.CPU, usage.cpu_fraction, 1.0))
    if usage.pids is not None and usage.pids_limit:
        out.append((Resource.PIDS, float(usage.pids), float(usage.pids_limit)))
    return out


def view(resource: Resource, fc: Forecast, value: float, limit: float) -> ForecastView:
    """The core's view of a forecast."""
    return ForecastView(resource, fc.eta_s, fc.lower_s, fc.upper_s, fc.alarm, limit, value,
                        fc.state, fc.samples, fc.samples_needed)


class Foresight:
    """All trackers of the daemon and the worker pool that refits them."""

    def __init__(self, settings: ForecastSettings, metrics: Any) -> None:
        self.settings = settings
        self.metrics = metrics
        self.trackers: dict[tuple[str, Resource], Tracker] = {}
        self.host: dict[Resource, ForecastView] = {}
        self.pool = refit.RefitPool()
        # (container name, resource) -> its two gauges and the values they were last set to:
        # looked up once, not on every sample, and set only when the value changed.
        self._gauges: dict[tuple[str, Resource], list[Any]] = {}

    def _track(self, key: str, res: Resource, t: float, value: float,
               limit: float) -> ForecastView:
        tr = self.trackers.get((key, res))
        if tr is None:
            tr = self.trackers[(key, res)] = Tracker(self.settings)
        fc, req = tr.observe(t, value, limit)
        if req is not None and not self.pool.submit(f"{key}\0{res.value}", **req):
            # Bounded CPU: at most the pool's queue of fits at once; the rest wait a tick.
            tr.refit_refused()
        return view(res, fc, value, limit)

    def observe(self, cid: str, name: str, usage: Usage) -> tuple[ForecastView, ...]:
        """Feed one container sample; returns a view per limited resource."""
        views = tuple(self._track(cid, res, usage.t, v, lim) for res, v, lim in _series(usage))
        for v in views:
            g = self._gauges.get((name, v.resource))
            if g is None:
                g = self._gauges[(name, v.resource)] = [
                    self.metrics.forecast_eta.labels(name, v.resource.value),
                    self.metrics.forecast_alarm.labels(name, v.resource.value), None, None]
            eta, alarmed = v.eta_s if v.eta_s is not None else float("inf"), int(v.alarm)
            if eta != g[2]:
                g[0].set(eta)
                g[2] = eta
            if alarmed != g[3]:
                g[1].set(alarmed)
                g[3] = alarmed
        return views

    def observe_series(self, cid: str, name: str, t: float,
                       series: list[tuple[Resource, float, float]]) -> tuple[ForecastView, ...]:
        """Feed an application's signal values (error ratio, latency) at epoch ``t``, each
        with its critical threshold as the limit; returns a view per series."""
        views = tuple(self._track(cid, res, t, v, lim) for res, v, lim in series)
        for v in views:
            eta = v.eta_s if v.eta_s is not None else float("inf")
            self.metrics.forecast_eta.labels(name, v.resource.value).set(eta)
            self.metrics.forecast_alarm.labels(name, v.resource.value).set(int(v.alarm))
        return views

    def observe_host(self, res: Resource, t: float, used: float, total: float) -> ForecastView:
        """Feed one host sample (memory or docker data-root disk)."""
        v = self._track("host", res, t, used, total)
        self.host[res] = v
        eta = v.eta_s if v.eta_s is not None else float("inf")
        self.metrics.forecast_eta.labels("", res.value).set(eta)
        self.metrics.forecast_alarm.labels("", res.value).set(int(v.alarm))
        return v

    def poll(self) -> None:
        """Adopt finished refits (non-blocking)."""
        for key, fit in self.pool.poll():
            cid, _, res = key.partition("\0")
            tr = self.trackers.get((cid, Resource(res)))
            if tr is not None:
                tr.apply(fit)
            self.metrics.refits.labels("ok").inc()

    def forget(self, cid: str, name: str) -> None:
        """Drop a vanished container's series and metrics."""
        for res in Resource:
            if self.trackers.pop((cid, res), None) is not None:
                self._gauges.pop((name, res), None)
                for g in (self.metrics.forecast_eta, self.metrics.forecast_alarm):
                    try:
                        g.remove(name, res.value)
                    except KeyError:
                        pass  # the series never made it to /metrics

    def host_rows(self) -> list[dict[str, Any]]:
        """Host forecasts for the status snapshot."""
        return [{"resource": r.value, "eta_s": v.eta_s, "lower_s": v.lower_s, "upper_s": v.upper_s,
                 "alarm": v.alarm, "value": v.value, "limit": v.limit, "state": v.state,
                 "samples": v.samples, "samples_needed": v.samples_needed}
                for r, v in self.host.items()]

    def close(self) -> None:
        """Stop the refit worker."""
        self.pool.close()
