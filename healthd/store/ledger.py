"""The action ledger: every decision and action, in SQLite (WAL); never a point of failure.

Owns: the only sqlite3 connection. An action's intent is committed before it is sent and
its outcome after, so a healthd killed mid-action knows on restart what it may have done
(pending rows become ``abandoned`` and still count for cooldowns and budgets).

When the state file cannot be opened or written (disk full, read-only, I/O error, locked),
writes never raise: they wait in a bounded in-memory ``Backlog`` and are written in order
once the file takes them again (retried on each later write and on ``flush``, which also
re-opens a file that could not be opened). Guards read ``recent`` from memory, which holds
the guard window whether written or not. A file that is not a database, or fails
``PRAGMA quick_check``, is set aside beside the original and a fresh one started. ``prune``
bounds the history by age and row count, a batch at a time, never touching a row newer
than the guards' window or a pending intent.
The file itself (schema and migrations, opening and checking it, telling a corrupt file
from an unreadable one, moving it aside, the SQL statements) is ``statefile``'s; what lives
in memory is in ``memory``.
Must never: decide anything; raise from a write.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from healthd.core.model import Action, ActionRecord, Decision, Outcome
from healthd.store import statefile
from healthd.store.memory import (
    DEFAULT_LIMIT,
    Backlog,
    BadRow,
    Completion,
    HistoryRow,
    Row,
    Window,
    from_decision,
    storable,
)

__all__ = ["HistoryRow", "Ledger", "LedgerError", "LedgerHealth"]

log = logging.getLogger("healthd.ledger")

_ABANDONED = "healthd stopped before the outcome was known"
_WRITE_BATCH = 500  # rows per transaction when a backlog is written
PRUNE_BATCH = 500  # rows deleted at most per ``prune`` call


class LedgerError(RuntimeError):
    """The state file cannot be read, or holds a row healthd would not have written
    (``history``, read-only handles)."""


@dataclass(frozen=True)
class LedgerHealth:
    """Whether history is being persisted, for /status, ``healthd status`` and metrics."""

    up: bool  # the state file takes writes
    since: float  # when it last started or stopped taking them (epoch seconds)
    error: str | None  # the last open or write error; None when there has been none
    pending: int  # writes waiting in memory for the file
    dropped: int  # rows dropped from a full backlog since start
    path: str
    set_aside: str | None = None  # where a corrupt state file was moved, this run

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


class Ledger:
    """Thread-safe append-mostly store of decisions and actions.

    readonly: for ``healthd history``; read errors raise ``LedgerError``.
    clock: epoch seconds, for ``health().since`` and a set-aside file's name.
    retention_s, retention_rows: what ``prune`` keeps at least (age) and at most (rows).
    backlog_limit: rows held in memory while the file cannot be written.
    busy_timeout_s: how long a write waits on a lock held by another connection while the
      file is up (0 while it is down, so the loop never waits on a retry).
    """

    def __init__(self, path: str, readonly: bool = False, *,
                 clock: Callable[[], float] = time.time,
                 retention_s: float = 30 * 86400.0, retention_rows: int = 100_000,
                 backlog_limit: int = DEFAULT_LIMIT, busy_timeout_s: float = 1.0) -> None:
        self.path, self.readonly, self._clock = path, readonly, clock
        self._retention_s, self._retention_rows = retention_s, retention_rows
        self._busy_s = busy_timeout_s
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._backlog = Backlog(backlog_limit)
        self._window = Window()
        self._up, self._since = True, clock()
        self._error: str | None = None
        self._set_aside: str | None = None
        self._incremental = False
        self._noted_vacuum = False
        self._abandon_deferred = False
        self._abandoned = 0
        self._bad: set[int] = set()  # rows of the file left out of ``recent``, logged once
        if readonly:
            try:
                self._db = statefile.connect_ro(path)
            except (sqlite3.Error, OSError) as exc:
                what = ("is not a healthd state file" if statefile.is_corrupt(exc)
                        else "cannot be read")
                raise LedgerError(f"state file {path} {what}: {exc}") from exc
            return
        with self._lock:
            self._open()

    # ---- the file ----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db, self._incremental = statefile.connect(self.path, self._busy_s)
        if not self._incremental and not self._noted_vacuum:
            self._noted_vacuum = True
            log.info("state file %s was made without incremental vacuum: pruned rows' space is"
                     " reused but the file does not shrink (with healthd stopped, `sqlite3 %s"
                     " 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM'` converts it)",
                     self.path, self.path)
        return db

    def _open(self) -> bool:
        """Open the file, setting a corrupt one aside first; False when it cannot be."""
        try:
            self._db = self._connect()
        except (sqlite3.Error, OSError, statefile.Corrupt) as exc:
            if not statefile.is_corrupt(exc):
                self._fail(f"cannot open {self.path}: {exc}", loud=True)
                return False
            try:
                self._move_aside(str(exc))
                self._db = self._connect()
            except (sqlite3.Error, OSError, statefile.Corrupt) as exc2:
                self._fail(f"cannot replace corrupt {self.path}: {exc2}", loud=True)
                return False
        return True

    def _move_aside(self, reason: str) -> None:
        dest = statefile.set_aside(self.path, self._clock())
        self._set_aside = dest
        log.error("state file %s is corrupt (%s): set aside as %s, starting a fresh one."
                  " Past actions, cooldowns, budgets and the events cursor are forgotten:"
                  " deaths before now are treated as before healthd watched",
                  self.path, reason, dest)
        # Rows this run wrote to the old file go to the new one, under the same ids.
        self._backlog.requeue_first(self._window.in_file())
        self._backlog.updates.clear()

    def _fail(self, error: str, reopen: bool = False, loud: bool = False) -> None:
        """Writes stopped working: keep everything in memory; log on the change only."""
        self._error = error
        if reopen and self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if not self._up:
            return
        self._up, self._since = False, self._clock()
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA busy_timeout=0")
        (log.error if loud else log.warning)(
            "history is NOT being persisted: %s. Healing goes on; up to %d rows are held in"
            " memory and written once the file takes writes again", error, self._backlog.limit)

    def _recovered(self) -> None:
        if self._up:
            return
        self._up, self._since = True, self._clock()
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute(f"PRAGMA busy_timeout={int(self._busy_s * 1000)}")
        log.warning("state file %s takes writes again: history is persisted (%d rows were"
                    " dropped meanwhile)", self.path, self._backlog.dropped)

    def _drain(self) -> bool:
        """Write what waits, in order; True when nothing is left. Lock held."""
        db, b = self._db, self._backlog
        if db is None or self.readonly:
            return False
        try:
            if b.abandon_at is not None:
                self._abandoned = statefile.abandon(db, b.abandon_at, _ABANDONED)
                self._window.abandon(b.abandon_at, _ABANDONED, set(b.rows))
                b.abandon_at = None
                if self._abandon_deferred and self._abandoned:
                    log.warning("%d action(s) were in flight when healthd last stopped; marked"
                                " abandoned", self._abandoned)
            while b.rows:
                batch = list(itertools.islice(b.rows.values(), _WRITE_BATCH))
                ids = statefile.insert(db, batch)
                for row, new in zip(batch, ids, strict=True):
                    self._written(row, int(new or 0))
            if b.updates:
                statefile.update(db, b.updates)
                b.updates.clear()
            if b.meta:
                statefile.put_meta(db, b.meta)
                b.meta.clear()
        except (sqlite3.Error, OSError) as exc:
            self._fail(f"cannot write {self.path}: {exc}", reopen=statefile.needs_reopen(exc))
            return False
        self._recovered()
        return True

    def _written(self, row: Row, new_id: int) -> None:
        old = row.id
        del self._backlog.rows[old]
        if old != new_id:
            row.id = new_id
            self._window.written(row, old)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any] | None:
        """Rows of a query; None when the file cannot answer (``LedgerError`` if readonly)."""
        try:
            if self._db is None:
                raise sqlite3.OperationalError(self._error or "state file not open")
            return self._db.execute(sql, tuple(storable(a) for a in args)).fetchall()
        except sqlite3.Error as exc:
            if self.readonly:
                raise LedgerError(f"state file {self.path}: {exc}") from exc
            return None

    # ---- writes: never raise --------------------------------------------------------------
    def record(self, d: Decision, outcome: Outcome, error: str | None = None) -> int:
        """Store a decision with its (first) outcome; returns the row id for ``complete``."""
        row = from_decision(d, outcome, error)
        with self._lock:
            self._backlog.add(row)
            self._window.add(row)
            self._drain()
            return row.id

    def complete(self, row_id: int, outcome: Outcome, at: float, error: str | None = None,
                 retryable: bool = True) -> None:
        """Record how a pending action ended."""
        done = Completion(outcome.value, error, at, retryable)
        with self._lock:
            rid = self._window.resolve(row_id)
            row = self._backlog.rows.get(rid) or self._window.rows.get(rid)
            if row is not None:
                row.complete(done)
                self._window.changed()
            if rid > 0 and rid not in self._backlog.rows:
                self._backlog.updates[rid] = done
            self._drain()

    def abandon_pending(self, at: float) -> int:
        """Mark actions left pending by a previous run as abandoned; returns how many.

        0 when the file cannot be written now; it is done before anything else once it can.
        """
        with self._lock:
            self._backlog.abandon_at = at
            self._abandoned = 0
            self._abandon_deferred = not self._drain()
            return self._abandoned

    def set_meta(self, key: str, value: str) -> None:
        """Store a cursor or marker."""
        with self._lock:
            self._backlog.meta[key] = value
            self._drain()

    def flush(self) -> bool:
        """Open the file if it could not be, write what waits; True when all is written."""
        with self._lock:
            if self.readonly or (self._db is None and not self._open()):
                return False
            return self._drain()

    def prune(self, now: float, keep_after: float, batch: int = PRUNE_BATCH) -> int:
        """Delete up to ``batch`` rows, oldest first, beyond the retention; returns how many.

        keep_after: epoch seconds; no row at or after it is deleted (the guards' window),
        nor any pending intent. Beyond retention: older than ``retention_s`` before ``now``,
        or not among the newest ``retention_rows`` ids.
        """
        with self._lock:
            db = self._db
            if db is None or self.readonly or not self._up:
                return 0
            try:
                n = statefile.prune(db, min(keep_after, now - self._retention_s), keep_after,
                                    self._retention_rows, batch, self._incremental)
            except sqlite3.Error as exc:
                self._fail(f"cannot prune {self.path}: {exc}", reopen=statefile.needs_reopen(exc))
                return 0
            return max(0, n)

    # ---- reads ---------------------------------------------------------------------------
    def recent(self, since: float, container: str | None = None,
               everyone_since: float | None = None) -> list[ActionRecord]:
        """Actions at or after ``since`` that guards must see, written or not, oldest first.

        container: only that container's, plus every container's at or after
        ``everyone_since`` (the host-wide rate's window); the daemon asks this per decision.
        """
        with self._lock:
            if self._window.needs_load(since):
                rows = self._read(statefile.RECENT,
                                  (since, Action.NONE.value, Outcome.SKIPPED.value))
                if rows is not None:
                    self._window.merge(self._window.countable(rows, self._left_out), since,
                                       self._backlog.updates)
            return self._window.records(since, container, everyone_since)

    def _left_out(self, exc: BadRow) -> None:
        if exc.row_id not in self._bad:
            self._bad.add(exc.row_id)
            log.warning("state file %s: %s; left out of cooldowns, budgets and /status",
                        self.path, exc)

    def history(self, limit: int = 50, container: str | None = None) -> list[HistoryRow]:
        """Newest rows first, written or waiting; ``LedgerError`` when the file cannot answer
        or holds a row healthd would not have written (naming its row and column)."""
        args: tuple[str, ...]
        with self._lock:
            waiting = [r.history() for r in reversed(self._backlog.rows.values())
                       if container is None or r.container == container][:limit]
            q, args = statefile.SELECT, ()
            if container:
                q, args = q + " WHERE container = ?", (container,)
            # SQLite's integers are 64-bit; a larger limit means "all" all the same.
            rows = self._read(q + " ORDER BY id DESC LIMIT ?",
                              (*args, min(limit - len(waiting), 2**63 - 1)))
            if rows is None:
                raise LedgerError(f"state file {self.path}: {self._error or 'cannot read'}")
            try:
                written = [self._window.latest(values, self._backlog.updates).history()
                           for values in rows]
            except BadRow as exc:
                raise LedgerError(f"state file {self.path}: {exc}") from exc
        return waiting + written

    def last_action_for(self, container: str) -> HistoryRow | None:
        """The newest row about ``container`` that was acted on (not held back)."""
        skipped = Outcome.SKIPPED.value
        with self._lock:
            for r in reversed(self._backlog.rows.values()):
                if r.container == container and r.outcome != skipped:
                    return r.history()
            rows = self._read(statefile.LAST_ACTED, (container, skipped))
            if rows is not None:
                if not rows:
                    return None
                try:
                    return self._window.latest(rows[0], self._backlog.updates).history()
                except BadRow as exc:
                    if self.readonly:
                        raise LedgerError(f"state file {self.path}: {exc}") from exc
                    self._left_out(exc)  # /status shows what memory knows instead
            newest = self._window.newest_acted(container)
        return newest.history() if newest else None

    def get_meta(self, key: str) -> str | None:
        """A stored cursor or marker (None also when the file cannot answer)."""
        with self._lock:
            if key in self._backlog.meta:
                return self._backlog.meta[key]
            rows = self._read(statefile.META, (key,))
        return str(rows[0][0]) if rows else None

    def oldest(self) -> float | None:
        """When the oldest row in the file was recorded; None when there is none."""
        with self._lock:
            rows = self._read(statefile.OLDEST, (math.inf,))
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def health(self) -> LedgerHealth:
        """Whether history is being persisted, and what waits."""
        with self._lock:
            return LedgerHealth(self._up, self._since, self._error, len(self._backlog),
                                self._backlog.dropped, self.path, self._set_aside)

    def close(self) -> None:
        """Write what waits (a last try), checkpoint and close."""
        with self._lock:
            if not self.readonly:
                if self._db is None:
                    self._open()
                self._drain()
                if self._backlog:
                    log.error("%d write(s) to %s could not be made and are lost: %s",
                              len(self._backlog), self.path, self._error)
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    # read-only handles cannot checkpoint; closing is still right
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
                self._db = None

