"""Pending decisions and pauses, kept in the ledger's SQLite file so they outlive healthd.

Owns: the ``pending`` and ``maintenance`` tables of the state file (``<state>.db``, the
ledger's own, opened with the ledger's conventions: WAL, ``synchronous=NORMAL``, a busy
timeout), so a pending decision or a pause written before a SIGKILL is there on the next
start. Rows are written at once (an operator's action is rare and must not be lost) and
deleted once settled: what happened to them is in the ledger's history.
Must never: decide or raise from a write. When the file cannot be opened or written, the
daemon carries on with what it holds in memory (``act.control``) and this logs once.

Why its own connection rather than the ledger's: the ledger's connection and lock belong
to the decision path; these writes come from HTTP threads, and SQLite serialises the two
writers on the file with the busy timeout.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from typing import Any

from healthd.core.control import Maintenance, Pending
from healthd.core.model import Action
from healthd.store import statefile

log = logging.getLogger("healthd")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    target_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    explain TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    rejected_by TEXT NOT NULL DEFAULT ''  -- set: rejected, holding until expires
);
CREATE TABLE IF NOT EXISTS maintenance (
    target TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    who TEXT NOT NULL,
    since REAL NOT NULL,
    until REAL
);
"""
_PENDING = ("id", "action", "target", "target_id", "rule", "explain", "created", "expires",
            "rejected_by")
_PAUSE = ("target", "reason", "who", "since", "until")


class ControlStore:
    """Thread-safe; every method works (in memory) when the file does not."""

    def __init__(self, path: str | None, busy_timeout_s: float = 1.0) -> None:
        """path: the ledger's state file; None keeps nothing on disk (tests)."""
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._said = False
        if path is None:
            return
        try:
            self._db = statefile.connect_beside(path, _SCHEMA, busy_timeout_s)
        except (sqlite3.Error, OSError) as exc:
            self._failed(f"cannot open {path}: {exc}")

    def _failed(self, why: str) -> None:
        if not self._said:
            self._said = True
            log.error("pending approvals and pauses are NOT persisted (%s): they are kept in"
                      " memory and lost if healthd stops", why)

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            if self._db is None:
                return
            try:
                with self._db:
                    self._db.execute(sql, args)
            except sqlite3.Error as exc:
                self._failed(f"cannot write {self.path}: {exc}")

    def _read(self, sql: str) -> list[Any]:
        with self._lock:
            if self._db is None:
                return []
            try:
                return self._db.execute(sql).fetchall()
            except sqlite3.Error as exc:
                self._failed(f"cannot read {self.path}: {exc}")
                return []

    # ---- pending decisions ---------------------------------------------------------------
    def add_pending(self, p: Pending) -> None:
        """Keep ``p`` (committed before this returns)."""
        self._write(f"INSERT OR REPLACE INTO pending ({', '.join(_PENDING)}) VALUES"
                    f" ({', '.join('?' * len(_PENDING))})",
                    (p.id, p.action.value, p.target, p.target_id, p.rule, p.explain,
                     p.created, p.expires, p.rejected_by))

    def drop_pending(self, pid: str) -> None:
        """``pid`` was approved, rejected, expired or is no longer needed."""
        self._write("DELETE FROM pending WHERE id = ?", (pid,))

    def pending(self) -> list[Pending]:
        """What waits (and what was rejected and still holds), oldest first; a row healthd
        would not have written is skipped."""
        out = []
        for r in self._read(f"SELECT {', '.join(_PENDING)} FROM pending ORDER BY created"):
            try:
                out.append(Pending(str(r[0]), Action(r[1]), str(r[2]), str(r[3]), str(r[4]),
                                   str(r[5]), float(r[6]), float(r[7]), str(r[8] or "")))
            except (ValueError, TypeError) as exc:
                log.warning("state file %s: pending row %r skipped: %s", self.path, r[0], exc)
        return out

    # ---- pauses ----------------------------------------------------------------------------
    def pause(self, m: Maintenance) -> None:
        """Keep ``m`` (replacing a pause of the same target)."""
        self._write(f"INSERT OR REPLACE INTO maintenance ({', '.join(_PAUSE)}) VALUES"
                    f" ({', '.join('?' * len(_PAUSE))})",
                    (m.target, m.reason, m.who, m.since, m.until))

    def resume(self, target: str) -> None:
        """Forget the pause of ``target``."""
        self._write("DELETE FROM maintenance WHERE target = ?", (target,))

    def pauses(self) -> list[Maintenance]:
        """Every stored pause (expired ones too: the caller ends them, with a notice)."""
        out = []
        for r in self._read(f"SELECT {', '.join(_PAUSE)} FROM maintenance ORDER BY since"):
            try:
                out.append(Maintenance(str(r[0]), str(r[1]), str(r[2]), float(r[3]),
                                       None if r[4] is None else float(r[4])))
            except (ValueError, TypeError) as exc:
                log.warning("state file %s: pause of %r skipped: %s", self.path, r[0], exc)
        return out

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None
