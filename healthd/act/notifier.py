"""Notification delivery: from recorded decisions, through the spool, to the receivers.

Owns: the alerts open per container (so that a recovery sends "resolved"), one worker
thread per target that forms messages with ``core.notices``' grouping and delivers them
in order, with exponential back-off between failed attempts, and the notification
metrics. A receiver that hangs holds up only its own worker, for at most ``timeout_s``
per attempt; the others carry on.
Must never: make its caller wait for a receiver (``submit`` only writes the spool and
wakes a worker), or decide anything about containers.

Delivery is at-least-once: a message is marked delivered only after its receiver said
yes, so one that was on the wire when healthd was killed is sent again, under the same
``id`` (the ``Idempotency-Key`` header, the webhook document's ``id``; Alertmanager
de-duplicates alerts by their labels). A receiver that dedupes on it sees each message
exactly once; Slack and Apprise targets cannot, so they may show such a message twice.
"""

from __future__ import annotations

import logging
import platform
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from healthd.act import senders
from healthd.core import notices, payloads
from healthd.core.model import ContainerState, Decision, Outcome
from healthd.core.notices import Alert, Notice
from healthd.core.notifyconfig import EventKind, NotificationSettings, NotifyTarget, status_url
from healthd.core.settings import Config
from healthd.serve.metrics import Metrics
from healthd.store import spool as spool_mod
from healthd.store.spool import Row, Spool

log = logging.getLogger("healthd")

_PRUNE_EVERY_S = 600.0
# A worker plans on the oldest rows of its spool only: enough for several full messages,
# and a backlog of max_queued rows is not read (and decoded) on every step.
_PLAN_ROWS = 5 * notices.MAX_PER_MESSAGE


def new_id() -> str:
    """A random notice or message id."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Settled:
    """How a watched notice ended (for ``healthd notify --test``)."""

    ok: bool
    seconds: float  # from being queued to the receiver's answer
    error: str = ""


def from_config(cfg: Config, metrics: Metrics | None = None, channel: str = "",
                max_attempts: int = 0, in_memory: bool = False) -> Notifier:
    """A notifier for ``cfg``'s targets with its spool next to the state file (not started).

    channel: the spool rows it sees ('' for the daemon); in_memory: no spool file at all.
    """
    settings = cfg.notifications
    instance = settings.instance or platform.node() or "localhost"
    spool = Spool(None if in_memory else spool_mod.path_for(cfg.state_path), channel,
                  settings.max_queued)
    return Notifier(cfg.notify, spool, instance=instance,
                    status_url=status_url(settings, cfg.daemon.listen, instance),
                    settings=settings, metrics=metrics, max_attempts=max_attempts)


class Notifier:
    """Takes notices from the daemon and has them delivered to every target."""

    def __init__(self, targets: Sequence[NotifyTarget], spool: Spool, *, instance: str,
                 status_url: str, settings: NotificationSettings | None = None,
                 metrics: Metrics | None = None, clock: Callable[[], float] = time.time,
                 make_id: Callable[[], str] = new_id,
                 sender_for: Callable[[NotifyTarget], senders.Sender] = senders.sender_for,
                 max_attempts: int = 0) -> None:
        """max_attempts: 0 retries until max_age_s; 1 is a single try (``--test``)."""
        self.spool, self.instance, self.status_url = spool, instance, status_url
        self.settings = settings or NotificationSettings()
        self.metrics = metrics or Metrics()
        self.clock, self.make_id = clock, make_id
        self.stopping = threading.Event()
        self._lock = threading.Lock()  # guards _open and _watched
        self._open = spool.load_open()
        self._watched: dict[str, Settled | None] = {}
        self._settled = threading.Condition(self._lock)
        self._pruned = 0.0
        self.workers = {t.name: _Worker(self, t, sender_for(t), max_attempts) for t in targets}
        for t in targets:
            self.metrics.notify_target(t.name)

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start one worker per target; what the spool holds from before goes out first."""
        for w in self.workers.values():
            w.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers; undelivered notices stay in the spool for the next start.
        A worker inside a send is waited for until ``timeout`` (its thread is a daemon)."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for w in self.workers.values():
            w.kick()
        for w in self.workers.values():
            w.join(max(0.0, deadline - time.monotonic()))

    # ---- intake ------------------------------------------------------------------------
    def submit(self, d: Decision, outcome: Outcome, labels: Iterable[tuple[str, str]] = (),
               error: str | None = None, kind: EventKind | None = None) -> None:
        """A decision was recorded with ``outcome``: notify about it if it is worth it.
        kind: what it is about, when not what ``notices.kind_of`` says (a rejection).
        Never raises: a notification problem must not stop healing."""
        try:
            self._submit(d, outcome, labels, error, kind)
        except Exception:
            log.exception("notification about %s lost", d.target_name)

    def _submit(self, d: Decision, outcome: Outcome, labels: Iterable[tuple[str, str]],
                error: str | None, kind: EventKind | None) -> None:
        now = self.clock()
        n = notices.notice_for(d, outcome, labels, self.make_id(), now, error or "", kind)
        if n is None:
            return
        with self._lock:
            self._open = notices.opened(self._open, n)
            opened = self._open.get(n.container, ())
        if opened:
            self.spool.save_open(n.container, opened)
        self._queue(n, now)

    def healthy(self, state: ContainerState) -> None:
        """``state`` is healthy now: resolve what was notified about it, if anything.
        Never raises, like ``submit``."""
        if state.name not in self._open:  # the common case, checked without the lock
            return
        try:
            now = self.clock()
            with self._lock:
                n, self._open = notices.resolution(self._open, state.name, state.id,
                                                   self.make_id(), now)
            if n is None:
                return
            self.spool.save_open(state.name, ())
            self._queue(n, now)
        except Exception:
            log.exception("resolved notice about %s lost", state.name)

    def state_file(self, up: bool, error: str | None, set_aside: str | None,
                   path: str) -> None:
        """healthd's state file stopped (or started again) taking writes, or a corrupt one
        was set aside: say so, once per change. Never raises, like ``submit``."""
        try:
            now = self.clock()
            n = notices.state_file_notice(up, error, set_aside, path, self.make_id(), now)
            with self._lock:
                if n is not None:
                    self._open = notices.opened(self._open, n)
                elif up:
                    n, self._open = notices.resolution(self._open, notices.SELF, "",
                                                       self.make_id(), now)
            if n is not None:
                self._queue(n, now)
        except Exception:
            log.exception("notice about the state file lost")

    def maintenance(self, target: str, started: bool, summary: str) -> None:
        """A pause of ``target`` began or ended. Never raises, like ``submit``."""
        try:
            now = self.clock()
            self._queue(notices.maintenance_notice(target, started, summary, self.make_id(),
                                                   now), now)
        except Exception:
            log.exception("notice about the pause of %s lost", target)

    def open_alerts(self) -> Mapping[str, tuple[Alert, ...]]:
        """What is open per container (for tests and status)."""
        with self._lock:
            return dict(self._open)

    def _queue(self, n: Notice, now: float) -> None:
        for w in self.workers.values():
            mine = notices.for_target(n, w.target)
            if mine is not None:
                w.put(mine, now)
        if now - self._pruned > _PRUNE_EVERY_S:
            self._pruned = now
            self.spool.prune(now, self.settings.keep_delivered_s)

    # ---- healthd notify --test ------------------------------------------------------------
    def probe(self, names: Sequence[str], wait_s: float) -> dict[str, Settled | None]:
        """Send a test notice to each named target; wait up to ``wait_s`` for the answers.
        None for a target that had not answered by then."""
        ids: dict[str, str] = {}
        now = self.clock()
        for name in names:
            n = notices.probe_notice(name, self.instance, self.make_id(), now)
            with self._lock:
                self._watched[n.id] = None
            ids[name] = n.id
            self.workers[name].put(n, now)
        deadline = time.monotonic() + wait_s
        with self._settled:
            while any(self._watched[i] is None for i in ids.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._settled.wait(left)
            return {name: self._watched[i] for name, i in ids.items()}

    def settle(self, rows: Sequence[Row], ok: bool, at: float, error: str = "") -> None:
        """A worker's word that ``rows`` are done; wakes ``probe`` if it waits on one."""
        with self._settled:
            hit = False
            for r in rows:
                if r.notice.id in self._watched:
                    self._watched[r.notice.id] = Settled(ok, at - r.queued_at, error)
                    hit = True
            if hit:
                self._settled.notify_all()


class _Worker:
    """Delivers one target's spool in order: one message at a time, retried until done."""

    def __init__(self, owner: Notifier, target: NotifyTarget, sender: senders.Sender,
                 max_attempts: int) -> None:
        self.owner, self.target, self.sender = owner, target, sender
        self.max_attempts = max_attempts
        self.pacing = notices.Pacing()
        self.failures = 0  # consecutive failed attempts
        self.retry_at = 0.0
        self._rng = random.Random()
        self._cond = threading.Condition()
        self._kicked = False
        self._thread = threading.Thread(target=self._run, name=f"notify-{target.name}",
                                        daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the thread to end."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def kick(self) -> None:
        """Wake the thread: something was queued, or it should stop."""
        with self._cond:
            self._kicked = True
            self._cond.notify()

    def put(self, n: Notice, now: float) -> None:
        """Spool ``n`` for this target and wake the thread."""
        _, dropped = self.owner.spool.add(self.target.name, n, now)
        if dropped:
            log.error("notify %s: spool full (max_queued %d): dropped the %d oldest notices",
                      self.target.name, self.owner.spool.max_queued, dropped)
            self._count("dropped", dropped)
        self._gauge()
        self.kick()

    # ---- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        stopping = self.owner.stopping
        while not stopping.is_set():
            try:
                delay = self._step()
            except Exception:  # a bug must not end this target's deliveries for good
                log.exception("notify %s: delivery loop failed; retrying", self.target.name)
                delay = self.target.retry_max_s
            with self._cond:
                if not self._kicked and not stopping.is_set():
                    self._cond.wait(delay)
                self._kicked = False

    def _step(self) -> float | None:
        """Do the next thing due; returns seconds until something is (None: nothing)."""
        owner, name = self.owner, self.target.name
        now = owner.clock()
        rows = owner.spool.undone(name, _PLAN_ROWS)
        expired = [r for r in rows if now - r.queued_at > owner.settings.max_age_s]
        if expired:
            self._give_up(expired, now, f"not delivered within max_age_s "
                          f"({owner.settings.max_age_s:.0f} s)")
            return 0.0
        sending = [r for r in rows if r.state == spool_mod.SENDING]
        if sending:  # a message formed before (maybe before a restart): it goes first
            batch = sending[0].batch or ""
            message = [r for r in sending if r.batch == batch]
        else:
            waiting = [notices.Queued(r.seq, r.notice, r.queued_at) for r in rows]
            flush, due = notices.next_flush(waiting, self.pacing, self.target, now)
            if flush is None:
                return None if due is None else due - now
            self.pacing = notices.after_flush(self.pacing, flush, self.target, now)
            if flush.suppressed:
                owner.spool.finish([q.seq for q in flush.suppressed], spool_mod.SUPPRESSED,
                                   now, "a repeat within repeat_interval_s")
                self._count("suppressed", len(flush.suppressed))
            if not flush.send:
                self._gauge()
                return 0.0
            batch = owner.make_id()
            chosen = {q.seq for q in flush.send}
            message = [r for r in rows if r.seq in chosen]
            owner.spool.form([r.seq for r in message], batch)
        if now < self.retry_at:
            return self.retry_at - now
        self._deliver(message, batch)
        return 0.0

    def _deliver(self, rows: list[Row], batch: str) -> None:
        owner, t = self.owner, self.target
        msg = payloads.Message(batch, t.name, notices.group_key(rows[0].notice, t),
                               tuple(r.notice for r in rows))
        rendered = payloads.render(t.kind, msg, owner.instance, owner.status_url,
                                   t.alert_ttl_s, t.json_key)
        seqs = [r.seq for r in rows]
        try:
            self.sender.send(rendered, batch)
        except Exception as exc:  # noqa: BLE001 - DeliveryError, or a transport's own bug
            retry = exc.retryable if isinstance(exc, senders.DeliveryError) else True
            self._failed(rows, seqs, str(exc) or repr(exc), retry)
        else:
            done = owner.clock()
            owner.spool.finish(seqs, spool_mod.DELIVERED, done)
            self._count("sent", len(rows))
            for r in rows:
                owner.metrics.notify_latency.labels(t.name).observe(max(0.0, done - r.queued_at))
            if self.failures:
                log.info("notify %s: delivered again after %d failed attempts", t.name,
                         self.failures)
            self.failures, self.retry_at = 0, 0.0
            log.debug("notify %s: delivered message %s (%d notices)", t.name, batch, len(rows))
            owner.settle(rows, True, done)
        self._gauge()

    def _failed(self, rows: list[Row], seqs: list[int], error: str, retry: bool) -> None:
        owner, t = self.owner, self.target
        now = owner.clock()
        owner.spool.attempt_failed(seqs, error)
        self._count("failed", len(rows))
        self.failures += 1
        attempts = rows[0].attempts + 1
        if not retry or (self.max_attempts and attempts >= self.max_attempts):
            self._give_up(rows, now, error)
            self.failures, self.retry_at = 0, 0.0
            return
        delay = min(t.retry_max_s, t.retry_min_s * 2 ** min(self.failures - 1, 30))
        delay *= 0.8 + 0.2 * self._rng.random()  # spread many hosts' retries apart
        self.retry_at = now + delay
        log.warning("notify %s: delivery failed (%s); attempt %d, next in %.1f s", t.name,
                    error, attempts, delay)

    def _give_up(self, rows: list[Row], now: float, why: str) -> None:
        self.owner.spool.finish([r.seq for r in rows], spool_mod.DROPPED, now, why)
        self._count("dropped", len(rows))
        log.error("notify %s: dropped %d notices: %s", self.target.name, len(rows), why)
        self.owner.settle(rows, False, now, why)

    def _count(self, result: str, n: int) -> None:
        self.owner.metrics.notifications.labels(self.target.name, result).inc(n)

    def _gauge(self) -> None:
        depth = self.owner.spool.depth(self.target.name)
        self.owner.metrics.notify_depth.labels(self.target.name).set(depth)
