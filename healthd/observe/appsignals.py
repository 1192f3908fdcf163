"""What healthd remembers of each application's own signals, and the workers behind them.

Owns: per container, the probe results and scrapes of the last window and when each value
crossed its critical threshold; the probe/scrape ``Pool`` and the ``LogTail`` (which jobs
and followers run follows the containers' labels, re-read each sweep); folding their
values in (on the main loop) and making the core's ``Signals`` of a container.
Must never: decide, or call the engine on the main loop (the log followers do, on their
own threads). Everything kept is bounded by the window and the containers watched.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from healthd.core import endpoints, labels, logcount, rates, signals
from healthd.core.labels import SignalSpec
from healthd.core.model import ContainerState, ForecastView, Resource, Signals
from healthd.core.settings import SignalSettings
from healthd.observe import engine, probes, scrape
from healthd.observe.logtail import LogMatches, LogTail
from healthd.observe.probes import Job, Pool, ProbeResult
from healthd.observe.scrape import Scraped

log = logging.getLogger(__name__)

_MAX_KEPT = 2048  # probe results or scrapes kept per container, whatever the window


@dataclass
class _App:
    """One container's signal memory."""

    spec: SignalSpec
    started_at: float
    probes: deque[ProbeResult] = field(default_factory=lambda: deque(maxlen=_MAX_KEPT))
    scrapes: deque[rates.Scrape] = field(default_factory=lambda: deque(maxlen=_MAX_KEPT))
    problem: str = ""  # the last scrape problem logged, so each is logged once
    since: dict[str, float | None] = field(default_factory=dict)
    forecasts: tuple[ForecastView, ...] = ()
    last: Signals | None = None


class AppSignals:
    """Probes, scrapes and log counts of every container that asks for them."""

    def __init__(self, eng: engine.Engine, out: queue.Queue[Any], ss: SignalSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.ss, self.clock = ss, clock
        self.pool = Pool(ss.probe_concurrency, out)
        self.logs = LogTail(eng, out, ss.log_minutes, clock)
        self.apps: dict[str, _App] = {}
        # id -> (the state its labels were read from, unresolved targets, spec): a state is
        # replaced, never changed, so the same object means the same labels; re-reading 200
        # containers' labels on every idle sweep was ~1 ms of its CPU.
        self._parsed: dict[str, tuple[ContainerState, tuple[str, ...], SignalSpec]] = {}
        self._noted: set[tuple[str, str]] = set()  # label problems logged once

    def start(self) -> None:
        """Start the probe and scrape scheduler."""
        self.pool.start()

    def stop(self) -> None:
        """Stop the scheduler and every log follower."""
        self.pool.stop()
        self.logs.stop()

    # ---- which containers, which jobs ------------------------------------------------
    def sync(self, states: Iterable[ContainerState]) -> None:
        """Re-read the labels of the running containers: which to probe, scrape, follow."""
        jobs: dict[Any, Job] = {}
        wanted: dict[str, str] = {}
        seen, running = set(), set()
        for c in states:
            if not c.running or c.is_self:
                continue
            parsed = self._parsed.get(c.id)
            if parsed is None or parsed[0] is not c:
                expanded, unresolved = endpoints.expand(c)
                parsed = self._parsed[c.id] = (c, unresolved, labels.signal_spec(expanded))
            _, unresolved, spec = parsed
            running.add(c.id)
            for p in (*unresolved, *spec.problems):
                if (c.id, p) not in self._noted:
                    self._noted.add((c.id, p))
                    log.warning("%s: %s", c.name, p)
            if not spec.any:
                continue
            seen.add(c.id)
            app = self.apps.get(c.id)
            if app is None or app.spec != spec:
                app = self.apps[c.id] = _App(spec, c.started_at)
            jobs.update(self._jobs(c.id, spec))
            if spec.error_pattern:
                wanted[c.id] = spec.error_pattern
        for cid in list(self.apps):
            if cid not in seen:
                del self.apps[cid]
        for cid in [c for c in self._parsed if c not in running]:
            del self._parsed[cid]
        self.pool.set_jobs(jobs)
        self.logs.sync(wanted)

    def _jobs(self, cid: str, spec: SignalSpec) -> dict[Any, Job]:
        ss, out = self.ss, {}
        interval = spec.interval_s or ss.probe_interval_s
        timeout = spec.timeout_s or ss.probe_timeout_s
        check: Callable[[], tuple[bool, str]] | None = None
        if spec.probe_http:
            check = partial(probes.http, spec.probe_http, timeout, spec.expect_status,
                            spec.expect_body)
        elif spec.probe_tcp:
            check = partial(probes.tcp, *spec.probe_tcp, timeout)
        if check is not None:
            out[(cid, "probe")] = Job(interval, partial(probes.timed, cid, check, timeout,
                                                        self.clock))
        if spec.metrics_url:
            out[(cid, "scrape")] = Job(ss.scrape_interval_s, partial(
                scrape.scrape, cid, spec, ss.scrape_timeout_s, ss.scrape_max_bytes,
                self.clock))
        return out

    # ---- values in -------------------------------------------------------------------
    def fold(self, item: ProbeResult | Scraped | LogMatches, name: str) -> bool:
        """Fold a worker's value in; True when the container has a new value to judge."""
        app = self.apps.get(item.cid)
        if app is None or item.at < app.started_at:
            return False  # gone, or a value from before its last start
        if isinstance(item, ProbeResult):
            app.probes.append(item)
        elif isinstance(item, Scraped):
            if item.scrape is None:
                if item.problem != app.problem:
                    log.warning("skipping the metrics of %s: %s", name, item.problem)
                app.problem = item.problem
                return False
            if app.problem:
                log.info("metrics of %s readable again", name)
            app.problem = ""
            app.scrapes.append(item.scrape)
        return True

    # ---- values out ------------------------------------------------------------------
    def signals(self, c: ContainerState, now: float) -> Signals | None:
        """The core's view of container ``c`` now; None when it asks for no signals."""
        app = self.apps.get(c.id)
        if app is None:
            return None
        if c.started_at != app.started_at:
            # A new process: what the old one said (and its counters) is history now.
            self.apps[c.id] = app = _App(app.spec, c.started_at)
        ss = self.ss
        w = ss.window_s
        while app.probes and now - app.probes[0].at > w:
            app.probes.popleft()
        while len(app.scrapes) > 2 and now - app.scrapes[1].at > w:
            app.scrapes.popleft()  # keep one scrape just before the window, as its start
        last = app.probes[-1] if app.probes else None
        ratio, ratio_src, lat, lat_src = None, "", None, ""
        m_ratio, m_lat = rates.scrape_window(list(app.scrapes), now, w + ss.scrape_interval_s,
                                             ss.latency_quantile)
        if m_ratio is not None:
            ratio, ratio_src = m_ratio, "metrics"
        if m_lat is not None:
            lat, lat_src = m_lat, "metrics"
        if len(app.probes) >= ss.min_probes:
            p_ratio = sum(1 for p in app.probes if not p.ok) / len(app.probes)
            if ratio is None or p_ratio > ratio:
                ratio, ratio_src = p_ratio, "probes"
            if lat is None:
                lat = rates.sample_quantile(ss.latency_quantile,
                                            [p.latency_s for p in app.probes])
                lat_src = "probes"
        counts = self.logs.counts(c.id) if app.spec.error_pattern else None
        per_min = logcount.per_minute(counts, now, w) if counts is not None else None
        if app.spec.error_pattern and per_min is None:
            per_min = 0.0
        since = app.since
        since["errors"] = signals.since(since.get("errors"), ratio, ss.error_ratio_critical, now)
        since["latency"] = signals.since(since.get("latency"), lat, ss.latency_critical_s, now)
        since["logs"] = signals.since(since.get("logs"), per_min,
                                      ss.log_errors_critical_per_min, now)
        app.last = Signals(
            probe_ok=last.ok if last else None, probe_latency_s=last.latency_s if last else None,
            probe_detail=last.detail if last else "", error_ratio=ratio, error_source=ratio_src,
            latency_s=lat, latency_source=lat_src, log_errors_per_min=per_min,
            last_log_match=counts.last_match if counts else "", window_s=w,
            errors_since=since["errors"], latency_since=since["latency"],
            logs_since=since["logs"])
        return app.last

    def series(self, cid: str) -> list[tuple[Resource, float, float]]:
        """(resource, value, limit) of the last signals, for the forecaster."""
        app = self.apps.get(cid)
        sig = app.last if app else None
        out = []
        if sig is not None and sig.error_ratio is not None:
            out.append((Resource.ERRORS, sig.error_ratio, self.ss.error_ratio_critical))
        if sig is not None and sig.latency_s is not None:
            out.append((Resource.LATENCY, sig.latency_s, self.ss.latency_critical_s))
        return out

    def set_forecasts(self, cid: str, views: tuple[ForecastView, ...]) -> None:
        """Remember the forecasts of a container's signal series."""
        app = self.apps.get(cid)
        if app is not None:
            app.forecasts = views

    def forecasts(self, cid: str) -> tuple[ForecastView, ...]:
        """The last forecasts of a container's signal series."""
        app = self.apps.get(cid)
        return app.forecasts if app else ()

    def row(self, cid: str) -> dict[str, Any] | None:
        """The /status view of a container's signals."""
        app = self.apps.get(cid)
        if app is None or app.last is None:
            return None
        sig = app.last
        return {"probe_ok": sig.probe_ok, "probe_latency_s": sig.probe_latency_s,
                "probe_detail": sig.probe_detail, "error_ratio": sig.error_ratio,
                "error_source": sig.error_source, "latency_s": sig.latency_s,
                "latency_quantile": self.ss.latency_quantile,
                "latency_source": sig.latency_source,
                "log_errors_per_min": sig.log_errors_per_min,
                "last_log_match": sig.last_log_match, "window_s": sig.window_s,
                "metrics_problem": app.problem or None,
                "forecasts": [f._asdict() | {"resource": f.resource.value}
                              for f in app.forecasts]}
