"""Action bookkeeping: from a Decision to the engine and into the ledger.

Owns: what is in flight, the worker threads that carry actions out, and the ledger rows of
every decision worth keeping (an action's intent before it is sent and its outcome after;
alerts; held decisions when what holds them changes). Hands the daemon a look at the
target after each action, so it decides on the post-action state, never the stale one.
Must never: decide; the pure core has done that.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from healthd.act import compose, container, swarm
from healthd.act.notifier import Notifier
from healthd.core import labels
from healthd.core.model import Action, Decision, Outcome
from healthd.observe import engine
from healthd.observe.memory import Tracked
from healthd.serve.metrics import Metrics
from healthd.store.ledger import Ledger

log = logging.getLogger("healthd")

# Returns the id of a container the action made (a recreate's), else None.
Performer = Callable[[engine.Engine, Decision], "str | None"]
# One entry per action family; each raises engine.ActionFailed when the engine says no.
PERFORMERS: dict[Action, Performer] = {
    Action.RESTART: container.restart,
    Action.RECREATE: container.recreate,
    Action.SCALE_UP: compose.scale_up,
    Action.SCALE_DOWN: compose.scale_down,
    Action.ROLLBACK: swarm.rollback,
    Action.REPLACE_TASK: swarm.replace_task,
    Action.DRAIN: swarm.drain,
    Action.ACTIVATE: swarm.activate,
    Action.STOP: container.stop,
}
# A Swarm service (``swarm/<name>``) is scaled through its spec, not container by container.
SWARM_PERFORMERS: dict[Action, Performer] = {
    Action.SCALE_UP: swarm.scale,
    Action.SCALE_DOWN: swarm.scale,
}


@dataclass(frozen=True)
class Inspected:
    """An inspect done by a worker thread, handed back to the main loop."""

    cid: str
    data: dict[str, Any] | None  # None: gone, or (after an action) the engine did not answer
    epoch: int
    trigger: float | None
    after_action: bool = False  # the look after healthd's own action: ends "in flight"
    acted: Decision | None = None  # that action, when the engine carried it out
    made: str | None = None  # the container that action made (a recreate's new one)


class Actions:
    """Sends decisions to the engine in worker threads and keeps their books."""

    def __init__(self, eng: engine.Engine, ledger: Ledger, metrics: Metrics,
                 out: queue.Queue[Any], workers: int, clock: Callable[[], float],
                 notifier: Notifier | None = None) -> None:
        self.engine, self.ledger, self.metrics, self.out, self.clock = (
            eng, ledger, metrics, out, clock)
        self.notifier = notifier  # told of every decision recorded (it picks what to send)
        self.in_flight: dict[str, str] = {}  # target container id -> its service key
        self.acted_at: dict[str, float] = {}  # target container id -> healthd's last action
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="act")

    def busy_services(self) -> frozenset[str]:
        """Services with an action in flight (one replica or service step at a time)."""
        return frozenset(self.in_flight.values())

    def handle(self, t: Tracked, d: Decision, trigger: float | None) -> None:
        """Act on, record or quietly keep a decision the core made for ``t``."""
        t.last_decision = d
        if d.action is Action.NONE:
            return
        held = d.suppressed_by.split(":", 1)[0] if d.suppressed_by else ""
        self.metrics.decisions.labels(d.action.value, held or "none").inc()
        if d.acts:
            self._send(t, d, trigger)
        elif d.action is Action.ALERT and d.suppressed_by is None:
            log.warning("ALERT %s", d.explain())
            self.ledger.record(d, Outcome.SUCCEEDED)
            self.metrics.actions.labels("alert", "succeeded").inc()
            self._notify(d, Outcome.SUCCEEDED, t.state.labels)
        else:
            # A held decision repeats every tick; record it only when what holds it changes.
            key = (d.action, d.rule, held)
            if key != t.last_recorded:
                log.info("%s", d.explain())
                self.ledger.record(d, Outcome.SKIPPED)
                self._notify(d, Outcome.SKIPPED, t.state.labels)
            t.last_recorded = key
            return
        t.last_recorded = None

    def _send(self, t: Tracked, d: Decision, trigger: float | None) -> None:
        row = self.ledger.record(d, Outcome.PENDING)
        service = d.service or labels.parse(t.state.labels).service
        self.in_flight[d.target_id] = service or f"container:{d.target_id}"
        self.acted_at[d.target_id] = self.clock()
        log.warning("%s", d.explain())
        if trigger is not None:
            self.metrics.latency.labels(d.action.value).observe(
                max(0.0, self.clock() - trigger))
        self._pool.submit(self._perform, d, row, t.state.labels)

    def _notify(self, d: Decision, outcome: Outcome, labels: tuple[tuple[str, str], ...],
                error: str | None = None) -> None:
        if self.notifier is not None:
            self.notifier.submit(d, outcome, labels, error)

    def _perform(self, d: Decision, row: int, labels: tuple[tuple[str, str], ...]) -> None:
        what = d.action.value
        log.debug("sending %s %s %s", what, d.target_id, d.target_name)
        done: Decision | None = None
        made: str | None = None
        try:
            swarm_service = (d.service or "").startswith("swarm/")
            table = SWARM_PERFORMERS if swarm_service and d.action in SWARM_PERFORMERS \
                else PERFORMERS
            made = table[d.action](self.engine, d)
        except engine.ActionFailed as exc:
            log.error("%s %s failed (%s): %s", what, d.target_name,
                      "retryable" if exc.retryable else "permanent", exc)
            self.ledger.complete(row, Outcome.FAILED, self.clock(), str(exc), exc.retryable)
            self.metrics.actions.labels(what, "failed").inc()
            self._notify(d, Outcome.FAILED, labels, str(exc))
        else:
            self.ledger.complete(row, Outcome.SUCCEEDED, self.clock())
            self.metrics.actions.labels(what, "succeeded").inc()
            self._notify(d, Outcome.SUCCEEDED, labels)
            log.info("%s %s: done", what, d.target_name)
            done = d
        finally:
            data: dict[str, Any] | None = None
            try:
                # A Swarm service or node is no container: the next listing shows it.
                if not d.target_name.startswith(("swarm/", "node/")):
                    data = self.engine.inspect(d.target_id)
            except engine.EngineError as exc:
                log.info("cannot look at %s after the %s: %s", d.target_name, what, exc)
            self.out.put(Inspected(d.target_id, data, 0, None, after_action=True, acted=done,
                                   made=made))

    def started_by_healthd(self, cid: str, started_at: float) -> bool:
        """True when the last start of ``cid`` came from healthd's own action."""
        at = self.acted_at.get(cid)
        return at is not None and started_at >= at

    def forget(self, cid: str) -> None:
        """``cid`` is gone."""
        self.acted_at.pop(cid, None)

    def done(self, cid: str) -> None:
        """The post-action look at ``cid`` has been folded in: it may be decided on again."""
        self.in_flight.pop(cid, None)

    def shutdown(self) -> None:
        """Wait for the actions in flight; drop those not started."""
        self._pool.shutdown(wait=True, cancel_futures=True)
