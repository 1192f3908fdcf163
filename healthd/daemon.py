"""The observe → decide → act loop: wiring between the shell and the pure core.

Owns: the main loop that takes events, inspects and sweeps off one queue, hands the
observations to the core and the decisions to the actions. Its parts each have a module:
per-container memory (``observe.memory``), action bookkeeping (``act.runner``), the
/status shape (``serve.snapshot``). Must never: hold decision logic (``core``), talk to
the engine on its own thread, or keep state that one of those parts owns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from healthd.act import watching
from healthd.act.control import Approve, Control
from healthd.act.escalation import Escalation
from healthd.act.notifier import Notifier
from healthd.act.runner import Actions, Inspected
from healthd.act.verify import Verifier
from healthd.cluster import Cluster
from healthd.core import churn, decide, escalate, labels, throttle
from healthd.core.model import ContainerState, Resource
from healthd.core.settings import Config
from healthd.decider import Decider
from healthd.foresight.tracker import Foresight
from healthd.observe import engine
from healthd.observe.appsignals import AppSignals
from healthd.observe.containers import Event, Limits
from healthd.observe.logtail import LogMatches
from healthd.observe.memory import Memory, Tracked
from healthd.observe.observer import Observer, Sweep
from healthd.observe.probes import ProbeResult
from healthd.observe.sampler import Sampler
from healthd.observe.scrape import Scraped
from healthd.observe.stacks import Stacks
from healthd.observe.swarm import SwarmListed
from healthd.observe.watcher import DISCONNECTED, RECONNECTED, Watcher
from healthd.serve import snapshot
from healthd.serve.metrics import Metrics
from healthd.store.control import ControlStore
from healthd.store.ledger import Ledger
from healthd.store.verdicts import VerdictStore

log = logging.getLogger("healthd")

_CURSOR_KEY = "events_cursor_ns"
# create, pause, unpause and update change what an inspect shows without a state the list
# would catch sooner: with the list read only every [watch] resync_s, they are inspected too.
_RELEVANT = ("die", "oom", "kill", "health_status", "start", "restart", "stop", "create",
             "pause", "unpause", "update")
# A cursor older than this is not trusted to bound "died while we watched": the engine
# keeps few events in memory, so anything older would be healed without its history.
_MAX_LOOKBACK_S = 3600.0


def saved_cursor(text: str | None) -> int | None:
    """The events cursor kept in the ledger (ns since the epoch); None when there is none, or
    when it is not one (healthd then starts as on a first run instead of refusing to)."""
    if text is None:
        return None
    if text.isascii() and text.isdigit() and 0 < int(text) < 2**63:
        return int(text)
    log.warning("ignoring the saved events cursor %r: not a time in ns; starting from now",
                text[:40])
    return None


class Daemon:
    """healthd's main loop. ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        cfg: Config,
        eng: engine.Engine,
        ledger: Ledger,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
        control_store: ControlStore | None = None,
        verdict_store: VerdictStore | None = None,
    ) -> None:
        """control_store: where pending approvals and pauses are kept, verdict_store: the
        verdicts on healthd's actions (None: memory)."""
        self.cfg, self.engine, self.ledger, self.metrics, self.clock = (
            cfg, eng, ledger, metrics, clock)
        self.notifier = notifier
        self._ledger_said: tuple[bool, str | None] = (True, None)  # what notices last said
        self.dry_run = cfg.daemon.dry_run
        self.memory = Memory(engine.own_container_ids())
        self.queue: queue.Queue[Any] = queue.Queue()
        self._stopping = threading.Event()
        self._turned = time.monotonic()  # when the main loop last finished an iteration
        # Called once per turn of the main loop, first after the first sweep: systemd's
        # READY=1 and watchdog pings (serve.systemd.Heartbeat), so a wedged loop stops them.
        self.heartbeat: Callable[[], None] = lambda: None
        self.actions = Actions(eng, ledger, metrics, self.queue, cfg.daemon.action_workers,
                               clock, notifier)
        # Inspects run here, never on the main loop: the engine answers one only when it can
        # take the container's lock, which it holds through a stop or restart.
        self.inspector = ThreadPoolExecutor(4, thread_name_prefix="inspect")
        self.sampler = Sampler(eng, mode=cfg.watch.stats_path,
                               cgroup_root=cfg.watch.cgroup_root,
                               concurrency=cfg.watch.stats_concurrency)
        self.foresight = Foresight(cfg.forecast, metrics)
        self.stacks = Stacks(cfg)
        self.started_at = clock()
        # The host is watched like a container that is always opted in: its forecasts go
        # through the same classifier and decision table (rows predicted_exhaustion.host_*).
        self.host = Tracked(
            state=ContainerState(id="host", name="host", labels=((labels.ENABLE, "true"),)),
            limits=Limits(None, None, None), inspected=True)
        self.cursor_ns = saved_cursor(ledger.get_meta(_CURSOR_KEY))
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
        self.observer = Observer(eng, self.sampler, self.memory.known, self.queue,
                                 cfg.watch.stats_interval_s, cfg.watch.docker_root or None,
                                 clock, cfg.watch.resync_s, lambda: self.watcher.connected)
        self.signals = AppSignals(eng, self.queue, cfg.signals, clock)
        self.cluster = Cluster(cfg, eng, self.queue, self.actions, ledger, metrics, clock)
        self.control = Control(cfg, control_store or ControlStore(None), ledger, self.queue,
                               clock, notifier)
        self.cluster.gate = lambda d: decide.paused(d, self.control.pauses(), self.clock())
        self.verifier = Verifier(cfg.verify, verdict_store or VerdictStore(None), metrics,
                                 clock)
        self.verifier.resume()
        # Verdicts are kept as long as the history they explain, and the fix rates count.
        self.verifier.keep_s = max(cfg.ledger.retention_s, cfg.ladder.learn_window_s)
        self.escalation = Escalation(cfg.ladder, self.verifier, self.control)
        self.decider = Decider(cfg, clock, ledger, self.memory, self.stacks, self.actions,
                               self.control, self.escalation, self.verifier, self.signals,
                               self.cluster, notifier, self.watch_since, self.started_at)

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
        self.signals.start()
        self.cluster.start()
        while not self._stopping.is_set():
            # Set before blocking on the queue: an idle loop turns at least once a second,
            # so a stale mark means the loop is stuck inside an item, not waiting for one.
            self._turned = time.monotonic()
            self.heartbeat()
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
            elif isinstance(item, SwarmListed):
                self.cluster.on_listed(item, self.actions.busy_services(), self.dry_run)
                watching.observe_swarm(self.verifier, self.cluster, self.memory.all(),
                                       self.clock())
            elif isinstance(item, (ProbeResult, Scraped, LogMatches)):
                self._on_signal(item)
            elif isinstance(item, Approve):
                self.decider.on_approve(item)
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
        self.signals.stop()
        self.cluster.stop()
        self.inspector.shutdown(wait=True, cancel_futures=True)
        self.actions.shutdown()
        self.foresight.close()
        self.verifier.store.close()
        self._save_cursor()

    def liveness(self) -> str | None:
        """For /healthz and the systemd watchdog: None while the main loop turns and the
        events stream is connected, else what is wrong."""
        stalled = time.monotonic() - self._turned
        if stalled > self.cfg.daemon.liveness_s:
            return (f"main loop stalled for {stalled:.0f} s "
                    f"(limit daemon.liveness_s = {self.cfg.daemon.liveness_s:.0f} s)")
        if not self.watcher.connected:
            return "engine unreachable: the events stream is disconnected"
        return None

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

    def _apply_inspect(self, cid: str, data: dict[str, Any]) -> Tracked:
        return self.memory.apply_inspect(cid, data, engine.is_own(cid, self.memory.own_ids))

    def _on_inspected(self, item: Inspected) -> None:
        in_flight = self.actions.in_flight
        if item.after_action:
            # Only now, with the post-action state in hand, may the container be decided
            # on again: earlier, its stale pre-restart state would ask for a second restart.
            t = self.memory.get(item.cid)
            if t is not None:
                t.epoch += 1  # inspects requested during the action are stale
            if item.data is not None:
                self._apply_inspect(item.cid, item.data)
            self.actions.done(item.cid)
            if item.acted is None and t is not None:
                self.verifier.acting.pop(t.state.name, None)  # failed: no window to wait for
            if item.acted is not None:
                t = self.memory.get(item.cid)
                state = t.state if t is not None else None
                service = (escalate.target_of(state, self.stacks.topology).service
                           if state is not None else None)
                self.verifier.opened(item.acted, state, service, item.made)
        elif item.data is None:
            self._forget(item.cid)
        elif item.cid not in in_flight and self.memory.fresh(item.cid, item.epoch):
            t = self._apply_inspect(item.cid, item.data)
            self.decider.evaluate(t, trigger=item.trigger)

    def _forget(self, cid: str) -> None:
        self.verifier.gone(cid, self.clock())
        t = self.memory.forget(cid)
        self.actions.forget(cid)
        if t is not None:
            self.foresight.forget(cid, t.state.name)

    def _on_event(self, ev: Event) -> None:
        now = self.clock()
        self.cursor_ns = ev.time_ns
        self.metrics.events.labels(ev.verb).inc()
        self.metrics.event_lag.set(max(0.0, now - ev.time))
        self.decider.note_churn(ev)
        if ev.verb == "destroy":
            self._forget(ev.id)
            return
        if ev.verb not in _RELEVANT:
            return
        t = self.memory.on_event(ev)
        if ev.verb == "start":
            # A fresh process is a new regime: the old series (and any alarm it raised)
            # would read its drop to a small footprint as a fall and its regrowth as a leak.
            self.foresight.forget(ev.id, t.state.name)
        if ev.id in self.actions.in_flight or ev.verb in ("kill", "oom"):
            return
        if ev.verb == "die" and t.inspected and ev.time < t.state.started_at:
            # Replayed from before the container's last start (healthd restarted after
            # its own restart of it): history, not its state now; the start event follows.
            return
        if ev.verb == "die" and ev.exit_code is not None and t.inspected:
            # The event says all a die decision needs; an inspect then brings the rest (the
            # list that used to, on the next sweep, now comes only every resync_s).
            self.memory.apply_die(t, ev)
            self.decider.evaluate(t, trigger=ev.time)
            if ev.id not in self.actions.in_flight:
                self._request_inspect(t, ev.time)
        else:
            self._request_inspect(t, ev.time)

    def _apply_sweep(self, sw: Sweep) -> None:
        """Fold one observation sweep in and decide for every container."""
        started = time.perf_counter()
        in_flight = self.actions.in_flight
        if sw.summaries is not None:
            self.metrics.lists.inc()
            self.metrics.engine_up.set(1)
            seen = {s.id for s in sw.summaries}
            # Forget what the list no longer shows, unless an event about it came since.
            for t in self.memory.all():
                cid = t.state.id
                if cid not in seen and sw.epochs.get(cid) == t.epoch:
                    self._forget(cid)
        for cid, (data, epoch) in sw.inspected.items():
            if data is None:
                self._forget(cid)
            elif cid not in in_flight and self.memory.fresh(cid, epoch):
                self._apply_inspect(cid, data)
        self.signals.sync(t.state for t in self.memory.all() if t.inspected)
        for t in self.memory.all():
            t.usage = sw.usages.get(t.state.id) if t.state.running else None
            if t.usage is not None:
                t.forecasts = self.foresight.observe(t.state.id, t.state.name, t.usage)
        if sw.images is not None:
            self.decider.image_tags = sw.images
        self.control.tick()  # pauses and pending decisions that ran out end first
        self._observe_host(sw)
        self.foresight.poll()
        self.stacks.rebuild(self.memory.all())
        self.decider.backup_running = churn.backup_running(t.state for t in self.memory.all())
        # Without the engine, what we know of containers is stale: acting on it would only
        # burn budgets on failed restarts. Decide again once the stream is back.
        if self.watcher.connected:
            # Upstreams first: a dependent's decision reads its upstream's fresh health.
            for t in self.decider.in_dependency_order(self.memory.all()):
                if t.state.id not in in_flight:
                    self.decider.evaluate(t)
                else:
                    self.decider.refresh_service(t)
            self.decider.scale(self.clock())
            self._recheck_thresholds()
            self.cluster.observe_node(self.memory.all(), self.host, sw.memory, sw.disk)
            self.cluster.tick(self.actions.busy_services(), self.dry_run)
        self._export_counts()
        now = self.clock()
        watching.observe_swarm(self.verifier, self.cluster, self.memory.all(), now)
        watching.observe_scaled(self.verifier, self.cluster, self.stacks, now)
        watching.observe_nodes(self.verifier, self.cluster, now)
        self.verifier.tick()
        self._save_cursor()
        self._tend_ledger()
        elapsed = sw.duration_s + time.perf_counter() - started
        self.metrics.sweep.set(elapsed)
        self.metrics.sweep_hist.observe(elapsed)

    def _tend_ledger(self) -> None:
        """Write what the ledger holds in memory, prune a batch of old rows, export health."""
        now = self.clock()
        self.ledger.flush()
        self.ledger.prune(now, now - throttle.history_window_s(self.cfg.guards))
        h = self.ledger.health()
        self.metrics.set_ledger(h.up, h.pending, h.dropped)
        said = (h.up, h.set_aside)
        if said != self._ledger_said and self.notifier is not None:
            # Once per change: down, up again, or a corrupt file set aside at start.
            self.notifier.state_file(h.up, h.error, None if said[1] == self._ledger_said[1]
                                     else h.set_aside, h.path)
        self._ledger_said = said

    def _export_counts(self) -> None:
        items = self.memory.all()
        self.metrics.export_counts(items, self.memory.health_counts(), self.stacks.topology,
                                   {t.state.name: row for t in items
                                    if (row := self.signals.row(t.state.id)) is not None})
        self.cluster.export()

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
        self.decider.evaluate(self.host)

    def _save_cursor(self) -> None:
        # The last event *handled*, not the watcher's last one read: events still queued
        # when healthd is killed must be replayed on the next start.
        if self.cursor_ns:
            self.ledger.set_meta(_CURSOR_KEY, str(self.cursor_ns))

    def _on_signal(self, item: ProbeResult | Scraped | LogMatches) -> None:
        """A probe, scrape or log count came in: fold it, forecast it, judge the container."""
        t = self.memory.get(item.cid)
        if t is None or not t.inspected or not self.signals.fold(item, t.state.name):
            return
        now = self.clock()
        if self.signals.signals(t.state, now) is not None:
            self.signals.set_forecasts(t.state.id, self.foresight.observe_series(
                t.state.id, t.state.name, now, self.signals.series(t.state.id)))
        if t.state.id not in self.actions.in_flight and self.watcher.connected:
            self.decider.evaluate(t)

    def _recheck_thresholds(self) -> None:
        """The engine says nothing between an unhealthy container's checks: look again at
        those the unhealthy threshold holds, so their failing streak is read as it grows."""
        for t in self.memory.all():
            d = t.last_decision
            if d is not None and (d.suppressed_by or "").startswith("threshold:"):
                self._request_inspect(t, None)

    # ---- status ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What ``healthd status`` shows (``serve.snapshot.status``)."""
        return snapshot.status(self)
