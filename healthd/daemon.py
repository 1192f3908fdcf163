"""The observe → decide → act loop (the imperative shell around the pure core).

Owns: the per-container memory of what the engine said, the main loop that handles events
and periodic sweeps, and the action workers. Every action's intent goes to the ledger
before it is sent and its outcome after. Must never: hold decision logic; that is
``classify`` and ``decide``.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from healthd.core import classify, decide, labels
from healthd.core.config import Config
from healthd.core.model import (
    Action,
    Assessment,
    ContainerState,
    Decision,
    ForecastView,
    Health,
    Outcome,
    Resource,
    Usage,
)
from healthd.foresight.tracker import Foresight
from healthd.observe import containers, engine
from healthd.observe.containers import Event, Limits
from healthd.observe.observer import Known, Observer, Sweep
from healthd.observe.sampler import Sampler, StatsTarget
from healthd.observe.watcher import DISCONNECTED, RECONNECTED, Watcher
from healthd.serve.metrics import Metrics
from healthd.store.ledger import Ledger

log = logging.getLogger("healthd")

_DEATH_MEMORY = 32  # die times kept per container: enough for any crash-loop window
_CURSOR_KEY = "events_cursor_ns"
_RELEVANT = ("die", "oom", "kill", "health_status", "start", "restart", "stop")
# A cursor older than this is not trusted to bound "died while we watched": the engine
# keeps few events in memory, so anything older would be healed without its history.
_MAX_LOOKBACK_S = 3600.0


@dataclass
class Tracked:
    """What healthd remembers of one container between observations (shell state)."""

    state: ContainerState
    limits: Limits
    fingerprint: tuple[str, str | None] = ("", None)
    deaths: deque[float] = field(default_factory=lambda: deque(maxlen=_DEATH_MEMORY))
    stopped_on_purpose: bool = False
    oom_seen: bool = False
    usage: Usage | None = None
    forecasts: tuple[ForecastView, ...] = ()
    assessment: Assessment = field(default_factory=lambda: Assessment(Health.UNKNOWN))
    last_decision: Decision | None = None
    last_recorded: tuple[Any, ...] | None = None
    inspected: bool = False  # False for a placeholder made from an event: never decided on
    epoch: int = 0  # bumped by each lifecycle event; an inspect taken before it is stale


@dataclass(frozen=True)
class Inspected:
    """An inspect done by a worker thread, handed back to the main loop."""

    cid: str
    data: dict[str, Any] | None  # None: gone, or (after an action) the engine did not answer
    epoch: int
    trigger: float | None
    after_action: bool = False  # the look after healthd's own restart: ends "in flight"


class Daemon:
    """healthd's main loop. ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        cfg: Config,
        eng: engine.Engine,
        ledger: Ledger,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg, self.engine, self.ledger, self.metrics, self.clock = (
            cfg, eng, ledger, metrics, clock)
        self.dry_run = cfg.daemon.dry_run
        self.tracked: dict[str, Tracked] = {}
        self.own_ids = engine.own_container_ids()
        self.queue: queue.Queue[Event | Sweep | Inspected | str] = queue.Queue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # guards tracked/in_flight against the HTTP thread
        self.in_flight: dict[str, str] = {}  # container id -> service key
        self.workers = ThreadPoolExecutor(cfg.daemon.action_workers, thread_name_prefix="act")
        # Inspects run here, never on the main loop: the engine answers one only when it can
        # take the container's lock, which it holds through a stop or restart.
        self.inspector = ThreadPoolExecutor(4, thread_name_prefix="inspect")
        self.sampler = Sampler(eng, mode=cfg.watch.stats_path,
                               cgroup_root=cfg.watch.cgroup_root,
                               concurrency=cfg.watch.stats_concurrency)
        self.foresight = Foresight(cfg.forecast, metrics)
        self.started_at = clock()
        # The host is watched like a container that is always opted in: its forecasts go
        # through the same classifier and decision table (rows predicted_exhaustion.host_*).
        self.host = Tracked(
            state=ContainerState(id="host", name="host", labels=((labels.ENABLE, "true"),)),
            limits=Limits(None, None, None), inspected=True)
        cursor = ledger.get_meta(_CURSOR_KEY)
        self.cursor_ns = int(cursor) if cursor else None
        # Deaths before this time happened while healthd was not watching.
        # A minute of overlap before the cursor: a death handled just before a kill may
        # not have been acted on yet, and one that was is running again, so not "crashed".
        self.watch_since = (
            max(self.cursor_ns / 1e9 - 60.0, self.started_at - _MAX_LOOKBACK_S)
            if self.cursor_ns else self.started_at
        )
        self.watcher = Watcher(eng.events, self.queue,
                               self.cursor_ns or int(self.started_at * 1e9),
                               cfg.watch.reconnect_max_s)
        self.observer = Observer(eng, self.sampler, self._known, self.queue,
                                 cfg.watch.stats_interval_s, cfg.watch.docker_root or None,
                                 clock)

    # ---- lifecycle -------------------------------------------------------------------
    def run(self) -> int:
        """Observe and heal until stopped; returns the exit code."""
        abandoned = self.ledger.abandon_pending(self.clock())
        if abandoned:
            log.warning("%d action(s) were in flight when healthd last stopped; marked abandoned"
                        " and counted for cooldowns and budgets", abandoned)
        self.metrics.stats_path.labels(self.sampler.path).set(1)
        self.watcher.start()
        self._apply_sweep(self.observer.sweep())  # the first picture, before any event
        self.observer.start()
        while not self._stopping.is_set():
            try:
                item = self.queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if isinstance(item, Event):
                self._on_event(item)
            elif isinstance(item, Inspected):
                self._on_inspected(item)
            elif isinstance(item, Sweep):
                self._apply_sweep(item)
            elif item == RECONNECTED:
                self.metrics.reconnects.inc()
                self.observer.wake()  # re-list everything: things changed while we were away
            elif item == DISCONNECTED:
                self.metrics.engine_up.set(0)
        return 0

    def stop(self) -> None:
        """Ask the loop to finish; in-flight actions are waited for, the store flushed."""
        self._stopping.set()

    def shutdown(self) -> None:
        """Release everything; called after ``run`` returns."""
        self.watcher.stop()
        self.observer.stop()
        self.inspector.shutdown(wait=True, cancel_futures=True)
        self.workers.shutdown(wait=True, cancel_futures=True)
        self.foresight.close()
        self._save_cursor()

    def healthy(self) -> bool:
        """For /healthz: the events stream is connected."""
        return self.watcher.connected

    # ---- observe ---------------------------------------------------------------------
    def _request_inspect(self, t: Tracked, trigger: float | None) -> None:
        self.inspector.submit(self._inspect_job, t.state.id, t.epoch, trigger)

    def _inspect_job(self, cid: str, epoch: int, trigger: float | None) -> None:
        try:
            data = self.engine.inspect(cid)
        except engine.ContainerGone:
            data = None
        except engine.EngineUnavailable as exc:
            log.warning("skipping %s this round: %s", cid[:12], exc)
            return
        self.queue.put(Inspected(cid, data, epoch, trigger))

    def _fresh(self, cid: str, epoch: int) -> bool:
        """False when an inspect taken at ``epoch`` predates a newer lifecycle event."""
        t = self.tracked.get(cid)
        return t is None or not t.inspected or t.epoch == epoch

    def _on_inspected(self, item: Inspected) -> None:
        if item.after_action:
            # Only now, with the post-restart state in hand, may the container be decided
            # on again: earlier, its stale pre-restart state would ask for a second restart.
            t = self.tracked.get(item.cid)
            if t is not None:
                t.epoch += 1  # inspects requested during the restart are stale
            if item.data is not None:
                self._apply_inspect(item.cid, item.data)
            self.in_flight.pop(item.cid, None)
        elif item.data is None:
            self._forget(item.cid)
        elif item.cid not in self.in_flight and self._fresh(item.cid, item.epoch):
            t = self._apply_inspect(item.cid, item.data)
            self._evaluate(t, trigger=item.trigger)

    def _apply_inspect(self, cid: str, data: dict[str, Any]) -> Tracked:
        with self._lock:
            t = self.tracked.get(cid)
            limits = containers.limits_from_inspect(data)
            if t is None:
                t = Tracked(state=containers.from_inspect(data), limits=limits)
                self.tracked[cid] = t
            t.limits = limits
            t.state = containers.from_inspect(
                data, deaths=tuple(t.deaths), stopped_on_purpose=t.stopped_on_purpose,
                is_self=engine.is_own(cid, self.own_ids))
            if t.state.running:
                t.oom_seen = False
            t.fingerprint = (t.state.status, t.state.health)
            t.inspected = True
        return t

    def _known(self) -> Known:
        """For the observer thread: fingerprints to diff the list against, stats targets."""
        with self._lock:
            items = list(self.tracked.values())
        return Known(
            fingerprints={t.state.id: t.fingerprint for t in items},
            epochs={t.state.id: t.epoch for t in items},
            targets=[StatsTarget(t.state.id, t.state.name, t.limits.mem_bytes,
                                 t.limits.cpu_cores, t.limits.pids)
                     for t in items if t.state.running],
        )

    def _forget(self, cid: str) -> None:
        with self._lock:
            t = self.tracked.pop(cid, None)
        if t is not None:
            self.foresight.forget(cid, t.state.name)

    def _on_event(self, ev: Event) -> None:
        now = self.clock()
        self.cursor_ns = ev.time_ns
        self.metrics.events.labels(ev.verb).inc()
        self.metrics.event_lag.set(max(0.0, now - ev.time))
        if ev.verb == "destroy":
            self._forget(ev.id)
            return
        if ev.verb not in _RELEVANT:
            return
        t = self.tracked.get(ev.id)
        if t is None:  # new to us: a placeholder keeps the event's memory until inspected
            t = Tracked(state=ContainerState(id=ev.id, name=ev.name, status="created"),
                        limits=Limits(None, None, None))
            with self._lock:
                self.tracked[ev.id] = t
        t.epoch += 1
        if ev.verb == "kill":
            t.stopped_on_purpose = True  # docker stop / kill / compose down: leave it be
        elif ev.verb == "oom":
            t.oom_seen = True  # the die that follows carries the decision
        elif ev.verb == "start":
            t.stopped_on_purpose = t.oom_seen = False
            # A fresh process is a new regime: the old series (and any alarm it raised)
            # would read its drop to a small footprint as a fall and its regrowth as a leak.
            self.foresight.forget(ev.id, t.state.name)
            t.forecasts = ()
        elif ev.verb == "die" and not t.stopped_on_purpose:
            t.deaths.append(ev.time)
        if ev.id in self.in_flight or ev.verb in ("kill", "oom"):
            return
        if ev.verb == "die" and ev.exit_code is not None and t.inspected:
            # The event says all a die decision needs. The next sweep inspects.
            t.state = dataclasses.replace(
                t.state, status="exited", exit_code=ev.exit_code, finished_at=ev.time,
                oom_killed=t.oom_seen, deaths=tuple(t.deaths),
                stopped_on_purpose=t.stopped_on_purpose)
            t.fingerprint = ("", None)
            self._evaluate(t, trigger=ev.time)
        else:
            self._request_inspect(t, ev.time)

    def _apply_sweep(self, sw: Sweep) -> None:
        """Fold one observation sweep in and decide for every container."""
        started = time.perf_counter()
        if sw.summaries is not None:
            self.metrics.engine_up.set(1)
            seen = {s.id for s in sw.summaries}
            # Forget what the list no longer shows, unless an event about it came since.
            for cid, t in list(self.tracked.items()):
                if cid not in seen and sw.epochs.get(cid) == t.epoch:
                    self._forget(cid)
        for cid, (data, epoch) in sw.inspected.items():
            if data is None:
                self._forget(cid)
            elif cid not in self.in_flight and self._fresh(cid, epoch):
                self._apply_inspect(cid, data)
        for t in list(self.tracked.values()):
            t.usage = sw.usages.get(t.state.id) if t.state.running else None
            if t.usage is not None:
                t.forecasts = self.foresight.observe(t.state.id, t.state.name, t.usage)
        self._observe_host(sw)
        self.foresight.poll()
        # Without the engine, what we know of containers is stale: acting on it would only
        # burn budgets on failed restarts. Decide again once the stream is back.
        for t in list(self.tracked.values()) if self.watcher.connected else []:
            if t.state.id not in self.in_flight:
                self._evaluate(t)
        self._export_health()
        self._save_cursor()
        self._tend_ledger()
        elapsed = sw.duration_s + time.perf_counter() - started
        self.metrics.sweep.set(elapsed)
        self.metrics.sweep_hist.observe(elapsed)

    def _observe_host(self, sw: Sweep) -> None:
        views = []
        if sw.memory is not None:
            views.append(self.foresight.observe_host(
                Resource.HOST_MEMORY, sw.at, sw.memory.used_bytes, sw.memory.total_bytes))
        if sw.disk is not None:
            views.append(self.foresight.observe_host(
                Resource.HOST_DISK, sw.at, sw.disk.used_bytes,
                sw.disk.used_bytes + sw.disk.free_bytes))
        self.host.forecasts = tuple(views)
        self._evaluate(self.host)

    def _export_health(self) -> None:
        counts = dict.fromkeys(Health, 0)
        for t in self.tracked.values():
            counts[t.assessment.health] += 1
        for h, n in counts.items():
            self.metrics.containers.labels(h.value).set(n)

    def _save_cursor(self) -> None:
        # The last event *handled*, not the watcher's last one read: events still queued
        # when healthd is killed must be replayed on the next start.
        if self.cursor_ns:
            self.ledger.set_meta(_CURSOR_KEY, str(self.cursor_ns))

    def _tend_ledger(self) -> None:
        """Write what the ledger holds in memory, prune a batch of old rows, export health."""
        now = self.clock()
        self.ledger.flush()
        self.ledger.prune(now, now - decide.history_window_s(self.cfg.guards))
        h = self.ledger.health()
        self.metrics.set_ledger(h.up, h.pending, h.dropped)

    # ---- decide and act --------------------------------------------------------------
    def _evaluate(self, t: Tracked, trigger: float | None = None) -> None:
        if not t.inspected:
            return  # a placeholder knows no labels or restart policy: wait for its inspect
        now = self.clock()
        state = t.state
        t.assessment, cls = classify.assess(state, t.usage, t.forecasts, now,
                                            self.cfg.classify, self.cfg.thresholds)
        if cls is None:
            t.last_decision, t.last_recorded = None, None
            return
        horizon = decide.history_window_s(self.cfg.guards)
        ctx = decide.Context(
            now=now, config=self.cfg, history=self.ledger.recent(now - horizon),
            watch_since=self.watch_since, dry_run=self.dry_run,
            busy_services=frozenset(self.in_flight.values()))
        d = decide.decide(state, cls, ctx)
        if d is None or d.action is Action.NONE:
            t.last_decision = d
            return
        t.last_decision = d
        held = d.suppressed_by.split(":", 1)[0] if d.suppressed_by else ""
        self.metrics.decisions.labels(d.action.value, held or "none").inc()
        if d.acts:
            self._send(t, d, trigger)
        elif d.action is Action.ALERT and d.suppressed_by is None:
            log.warning("ALERT %s", d.explain())
            self.ledger.record(d, Outcome.SUCCEEDED)
            self.metrics.actions.labels("alert", "succeeded").inc()
        else:
            # A held decision repeats every tick; record it only when what holds it changes.
            key = (d.action, d.rule, held)
            if key != t.last_recorded:
                log.info("%s", d.explain())
                self.ledger.record(d, Outcome.SKIPPED)
            t.last_recorded = key
            return
        t.last_recorded = None

    def _send(self, t: Tracked, d: Decision, trigger: float | None) -> None:
        row = self.ledger.record(d, Outcome.PENDING)
        service = labels.parse(t.state.labels).service or f"container:{t.state.id}"
        self.in_flight[t.state.id] = service
        log.warning("%s", d.explain())
        if trigger is not None:
            self.metrics.latency.labels("restart").observe(max(0.0, self.clock() - trigger))
        self.workers.submit(self._restart, d, row)

    def _restart(self, d: Decision, row: int) -> None:
        log.debug("sending restart %s %s", d.target_id, d.target_name)
        try:
            self.engine.restart(d.target_id, d.stop_timeout_s)
        except engine.ActionFailed as exc:
            log.error("restart %s failed (%s): %s", d.target_name,
                      "retryable" if exc.retryable else "permanent", exc)
            self.ledger.complete(row, Outcome.FAILED, self.clock(), str(exc), exc.retryable)
            self.metrics.actions.labels("restart", "failed").inc()
        else:
            self.ledger.complete(row, Outcome.SUCCEEDED, self.clock())
            self.metrics.actions.labels("restart", "succeeded").inc()
            log.info("restarted %s", d.target_name)
        finally:
            data: dict[str, Any] | None = None
            try:
                data = self.engine.inspect(d.target_id)
            except engine.EngineError as exc:
                log.info("cannot look at %s after the restart: %s", d.target_name, exc)
            self.queue.put(Inspected(d.target_id, data, 0, None, after_action=True))

    # ---- status ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What ``healthd status`` shows: one row per watched container."""
        rows = []
        with self._lock:
            items = list(self.tracked.values())
        for t in sorted(items, key=lambda x: x.state.name):
            last = self.ledger.last_action_for(t.state.name)
            rows.append({
                "id": t.state.id[:12], "name": t.state.name, "status": t.state.status,
                "health": t.assessment.health.value, "reasons": list(t.assessment.reasons),
                "decision": t.last_decision.explain() if t.last_decision else None,
                "last_action": last.explanation if last else None,
                "last_action_outcome": last.outcome if last else None,
                "last_action_at": last.at if last else None,
                "forecasts": [f.__dict__ | {"resource": f.resource.value} for f in t.forecasts],
                "usage": t.usage.__dict__ if t.usage else None,
            })
        return {
            "now": self.clock(), "started_at": self.started_at, "dry_run": self.dry_run,
            "engine_connected": self.watcher.connected, "stats_path": self.sampler.path,
            "containers": rows, "host": self.foresight.host_rows(),
            "ledger": self.ledger.health().as_dict(),
        }
