"""The notification spool: every notice for every target, kept until it is delivered.

Owns: the spool's SQLite file and its rows. A notice is written here (``add``) before any
attempt to deliver it; the delivery worker then forms a message of some rows (``form``:
their message id is stored before the send) and marks them ``delivered`` after the
receiver said yes, or ``dropped``/``suppressed`` with the reason. After a restart, rows
still ``sending`` are sent again under the same message id: delivery is at-least-once,
and receivers that dedupe on the id see it exactly once.
Must never: decide what to send or when (``core.notices`` does), or talk to a receiver.

Why a file of its own (``<state>.spool.db`` next to the ledger's ``state.db``) rather than
a table in the ledger's file: SQLite lets one writer at a time into a file, and the ledger
writes an action's intent on the way to the engine. Notification traffic (a receiver
coming back after an outage drains thousands of rows) must never add to the time between
an event and the restart. Separate files also keep the two schemas apart.

When the file cannot be opened or written (read-only, full disk), the spool carries on in
memory, bounded by ``max_queued`` per target, and delivers from there; what it holds is
then lost if healthd stops before delivering it. Rows it could still read are taken along.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from healthd.core.model import Health
from healthd.core.notices import Alert, Notice
from healthd.core.notifyconfig import EventKind

log = logging.getLogger("healthd")

QUEUED, SENDING, DELIVERED, SUPPRESSED, DROPPED = (
    "queued", "sending", "delivered", "suppressed", "dropped")
_UNDONE = (QUEUED, SENDING)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of arrival; never reused
    channel TEXT NOT NULL DEFAULT '',       -- '' for the daemon; 'test-...' for --test runs
    target TEXT NOT NULL,
    notice TEXT NOT NULL,                   -- JSON of core.notices.Notice
    queued_at REAL NOT NULL,
    state TEXT NOT NULL,                    -- queued, sending, delivered, suppressed, dropped
    batch TEXT,                             -- the message id once its group was flushed
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS spool_undone ON spool (channel, target, state, seq);
CREATE TABLE IF NOT EXISTS open_alerts (container TEXT PRIMARY KEY, alerts TEXT NOT NULL);
"""


class _Done(NamedTuple):
    """What one statement did."""

    lastrowid: int
    rowcount: int
    rows: list[Any]


def path_for(state_path: str) -> str:
    """The spool file that goes with a ledger file: state.db -> state.spool.db."""
    root, _ = os.path.splitext(state_path)
    return root + ".spool.db"


@dataclass(frozen=True)
class Row:
    """One notice in the spool."""

    seq: int
    target: str
    notice: Notice
    queued_at: float
    state: str = QUEUED
    batch: str | None = None
    attempts: int = 0
    error: str | None = None
    done_at: float | None = None
    channel: str = ""


def _encode_alerts(alerts: tuple[Alert, ...]) -> str:
    return json.dumps([{**a.__dict__, "kind": a.kind.value, "severity": a.severity.value}
                       for a in alerts])


def _decode_alerts(raw: str) -> tuple[Alert, ...]:
    return tuple(Alert(**{**a, "kind": EventKind(a["kind"]), "severity": Health(a["severity"])})
                 for a in json.loads(raw))


class Spool:
    """Thread-safe spool: SQLite when it can, memory when it must.

    path: the spool file; None keeps everything in memory from the start.
    channel: rows this handle sees; a ``healthd notify --test`` run uses its own, so the
      daemon never sends its test rows and it never sends the daemon's.
    max_queued: undelivered rows per target; beyond it the oldest queued one is dropped.
    """

    def __init__(self, path: str | None, channel: str = "", max_queued: int = 10000) -> None:
        self.path, self.channel, self.max_queued = path, channel, max_queued
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._mem: list[Row] = []
        self._mem_open: dict[str, tuple[Alert, ...]] = {}
        self._next_seq = 1
        if path is None:
            return
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            db = sqlite3.connect(path, check_same_thread=False, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a row survives healthd being killed once committed;
            # a power cut may lose the newest notices (see the ledger for the same trade).
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        except (sqlite3.Error, OSError) as exc:
            log.error("notification spool %s cannot be used (%s): keeping notices in memory,"
                      " at most %d per target", path, exc, max_queued)

    @property
    def durable(self) -> bool:
        """True while rows go to the file (False: in memory)."""
        return self._db is not None

    # ---- the fallback --------------------------------------------------------------------
    def _fall_back(self, exc: Exception) -> None:
        """The file failed: take along what can still be read, then go on in memory."""
        log.error("notification spool %s failed (%s): keeping notices in memory from now on,"
                  " at most %d per target", self.path, exc, self.max_queued)
        db, self._db = self._db, None
        if db is None:
            return
        try:
            self._mem = [self._row(r) for r in db.execute(
                "SELECT seq, target, notice, queued_at, state, batch, attempts, error,"
                " done_at, channel FROM spool WHERE state IN (?, ?) ORDER BY seq", _UNDONE)]
            self._mem_open = {c: _decode_alerts(a) for c, a in
                              db.execute("SELECT container, alerts FROM open_alerts")}
            db.close()
        except sqlite3.Error:
            pass  # nothing more can be saved from it; memory starts empty
        self._next_seq = max((r.seq for r in self._mem), default=0) + 1

    @staticmethod
    def _row(r: Any) -> Row:
        return Row(seq=r[0], target=r[1], notice=Notice.from_dict(json.loads(r[2])),
                   queued_at=r[3], state=r[4], batch=r[5], attempts=r[6], error=r[7],
                   done_at=r[8], channel=r[9])

    def _sql(self, q: str, args: tuple[Any, ...] = ()) -> _Done | None:
        """Run one statement in its own transaction; None when the file failed (or had
        failed before): the caller then does the same in memory."""
        if self._db is None:
            return None
        try:
            with self._db:
                cur = self._db.execute(q, args)
                return _Done(cur.lastrowid or 0, cur.rowcount, cur.fetchall())
        except sqlite3.Error as exc:
            self._fall_back(exc)
            return None

    def _set(self, where: Any, **changes: Any) -> None:
        self._mem = [replace(r, **changes) if where(r) else r for r in self._mem]

    # ---- rows ----------------------------------------------------------------------------
    def add(self, target: str, notice: Notice, queued_at: float) -> tuple[int, int]:
        """Queue ``notice`` for ``target``; returns (its seq, how many old rows were
        dropped to stay within max_queued)."""
        payload = json.dumps(notice.as_dict())
        with self._lock:
            dropped = self._make_room(target, queued_at)
            res = self._sql(
                "INSERT INTO spool (channel, target, notice, queued_at, state)"
                " VALUES (?,?,?,?,?)", (self.channel, target, payload, queued_at, QUEUED))
            if res is not None:
                return res.lastrowid, dropped
            row = Row(self._next_seq, target, notice, queued_at, channel=self.channel)
            self._next_seq += 1
            self._mem.append(row)
            return row.seq, dropped

    def _make_room(self, target: str, now: float) -> int:
        over = self._depth(target) - self.max_queued + 1
        if over <= 0:
            return 0
        victims = [r.seq for r in self._undone(target, over) if r.state == QUEUED]
        self._mark(victims, DROPPED, now, "spool full: max_queued reached")
        return len(victims)

    def _undone(self, target: str, limit: int = -1) -> list[Row]:
        # Every row being sent, and the oldest ``limit`` queued ones (-1: all), by seq.
        cols = ("SELECT seq, target, notice, queued_at, state, batch, attempts, error, done_at,"
                " channel FROM spool WHERE channel=? AND target=? AND state=?")
        sending = self._sql(cols, (self.channel, target, SENDING))
        queued = self._sql(cols + " ORDER BY seq LIMIT ?", (self.channel, target, QUEUED, limit))
        if sending is not None and queued is not None:
            return sorted((self._row(r) for r in sending.rows + queued.rows),
                          key=lambda r: r.seq)
        mine = [r for r in self._mem if r.channel == self.channel and r.target == target]
        waiting = [r for r in mine if r.state == QUEUED]
        return sorted([r for r in mine if r.state == SENDING]
                      + (waiting if limit < 0 else waiting[:limit]), key=lambda r: r.seq)

    def undone(self, target: str, limit: int = -1) -> list[Row]:
        """Rows of ``target`` not yet delivered or given up, oldest first: all that are
        being sent, and at most ``limit`` of those queued (-1: all)."""
        with self._lock:
            return self._undone(target, limit)

    def _depth(self, target: str) -> int:
        res = self._sql("SELECT COUNT(*) FROM spool WHERE channel=? AND target=? AND state"
                        " IN (?, ?)", (self.channel, target, *_UNDONE))
        if res is not None:
            return int(res.rows[0][0])
        return sum(1 for r in self._mem if r.channel == self.channel and r.target == target
                   and r.state in _UNDONE)

    def depth(self, target: str) -> int:
        """How many notices of ``target`` wait (queued or being sent)."""
        with self._lock:
            return self._depth(target)

    def form(self, seqs: list[int], batch: str) -> None:
        """These rows make message ``batch``; stored before the first send attempt."""
        self._update(seqs, state=SENDING, batch=batch)

    def attempt_failed(self, seqs: list[int], error: str) -> None:
        """Count one failed delivery attempt of these rows."""
        with self._lock:
            marks = ",".join("?" * len(seqs))
            res = self._sql(f"UPDATE spool SET attempts = attempts + 1, error=? WHERE seq IN"
                            f" ({marks})", (error, *seqs))
            if res is None:
                chosen = set(seqs)
                self._mem = [replace(r, attempts=r.attempts + 1, error=error)
                             if r.seq in chosen else r for r in self._mem]

    def finish(self, seqs: list[int], state: str, at: float, error: str | None = None) -> None:
        """Rows are done: delivered, suppressed (a repeat) or dropped (with the reason)."""
        with self._lock:
            self._mark(seqs, state, at, error)

    def _mark(self, seqs: list[int], state: str, at: float, error: str | None) -> None:
        if not seqs:
            return
        marks = ",".join("?" * len(seqs))
        res = self._sql(f"UPDATE spool SET state=?, done_at=?, error=COALESCE(?, error)"
                        f" WHERE seq IN ({marks})", (state, at, error, *seqs))
        if res is None:
            chosen = set(seqs)
            self._mem = [replace(r, state=state, done_at=at,
                                 error=error if error is not None else r.error)
                         if r.seq in chosen else r for r in self._mem]

    def _update(self, seqs: list[int], **changes: Any) -> None:
        if not seqs:
            return
        with self._lock:
            cols = ", ".join(f"{k}=?" for k in changes)
            marks = ",".join("?" * len(seqs))
            res = self._sql(f"UPDATE spool SET {cols} WHERE seq IN ({marks})",
                            (*changes.values(), *seqs))
            if res is None:
                chosen = set(seqs)
                self._set(lambda r: r.seq in chosen, **changes)

    def prune(self, now: float, keep_s: float) -> int:
        """Delete rows done more than ``keep_s`` ago, and other channels' rows (dead test
        runs) queued that long ago; returns how many."""
        with self._lock:
            res = self._sql("DELETE FROM spool WHERE (state NOT IN (?, ?) AND done_at < ?)"
                            " OR (channel != ? AND queued_at < ?)",
                            (*_UNDONE, now - keep_s, self.channel, now - keep_s))
            if res is not None:
                return res.rowcount
            before = len(self._mem)
            self._mem = [r for r in self._mem if r.state in _UNDONE
                         or r.done_at is None or r.done_at >= now - keep_s]
            return before - len(self._mem)

    # ---- open alerts (for resolved notices across restarts) -----------------------------
    def load_open(self) -> dict[str, tuple[Alert, ...]]:
        """The alerts open per container, as last saved."""
        with self._lock:
            res = self._sql("SELECT container, alerts FROM open_alerts")
            if res is None:
                return dict(self._mem_open)
            return {c: _decode_alerts(a) for c, a in res.rows}

    def save_open(self, container: str, alerts: tuple[Alert, ...]) -> None:
        """Remember what is open about ``container`` (nothing: forget it)."""
        with self._lock:
            if alerts:
                res = self._sql("INSERT INTO open_alerts (container, alerts) VALUES (?, ?)"
                                " ON CONFLICT(container) DO UPDATE SET alerts=excluded.alerts",
                                (container, _encode_alerts(alerts)))
            else:
                res = self._sql("DELETE FROM open_alerts WHERE container=?", (container,))
            if res is None:
                if alerts:
                    self._mem_open[container] = alerts
                else:
                    self._mem_open.pop(container, None)

    def close(self) -> None:
        """Checkpoint and close the file."""
        with self._lock:
            db, self._db = self._db, None
            if db is None:
                return
            try:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # another handle is reading: the WAL is folded in next time
            db.close()
