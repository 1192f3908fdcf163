"""The action ledger: every decision and action, in SQLite (WAL).

Owns: the only sqlite3 connection. An action's intent is committed before it is sent and
its outcome after, so a healthd killed mid-action knows on restart what it may have done
(pending rows become ``abandoned`` and still count for cooldowns and budgets).
Must never: decide anything.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from healthd.core.model import Action, ActionRecord, Decision, Outcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    container_id TEXT NOT NULL,
    container TEXT NOT NULL,
    action TEXT NOT NULL,
    rule TEXT NOT NULL,
    failure TEXT,
    severity TEXT,
    evidence TEXT NOT NULL,
    suppressed_by TEXT,
    explanation TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    completed_at REAL,
    retryable INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS actions_at ON actions (at);
CREATE INDEX IF NOT EXISTS actions_container ON actions (container, at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class LedgerError(RuntimeError):
    """The state file cannot be opened or written."""


@dataclass(frozen=True)
class HistoryRow:
    """One ledger row for ``healthd history``."""

    id: int
    at: float
    container: str
    action: str
    rule: str
    outcome: str
    explanation: str
    error: str | None
    completed_at: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


class Ledger:
    """Thread-safe append-mostly store of decisions and actions."""

    def __init__(self, path: str, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                           check_same_thread=False)
            else:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                self._db = sqlite3.connect(path, check_same_thread=False, timeout=10)
                self._db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a commit is in the OS before the restart is sent, so
                # it survives a SIGKILL of healthd; only a power cut can lose the newest
                # rows, and then every container restarts anyway. FULL would put an fsync
                # (tens to hundreds of ms while the engine writes) in each action's path.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open state file {path}: {exc}") from exc

    def _migrate(self) -> None:
        """Add columns that newer versions record to a state file made by an older one."""
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(actions)")}
        if "retryable" not in cols:
            self._db.execute(
                "ALTER TABLE actions ADD COLUMN retryable INTEGER NOT NULL DEFAULT 1")
            self._db.commit()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._db:
                    yield self._db
            except sqlite3.Error as exc:
                raise LedgerError(f"state file {self.path}: {exc}") from exc

    def record(self, d: Decision, outcome: Outcome, error: str | None = None) -> int:
        """Store a decision with its (first) outcome; returns the row id."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO actions (at, container_id, container, action, rule, failure,"
                " severity, evidence, suppressed_by, explanation, outcome, error, completed_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (d.at, d.target_id, d.target_name, d.action.value, d.rule,
                 d.failure.value if d.failure else None, d.severity.value,
                 json.dumps(list(d.evidence)), d.suppressed_by, d.explain(), outcome.value,
                 error, None if outcome is Outcome.PENDING else d.at),
            )
            return int(cur.lastrowid or 0)

    def complete(self, row_id: int, outcome: Outcome, at: float, error: str | None = None,
                 retryable: bool = True) -> None:
        """Record how a pending action ended."""
        with self._tx() as db:
            db.execute(
                "UPDATE actions SET outcome=?, error=?, completed_at=?, retryable=? WHERE id=?",
                (outcome.value, error, at, int(retryable), row_id),
            )

    def abandon_pending(self, at: float) -> int:
        """Mark actions left pending by a previous run as abandoned; returns how many."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE actions SET outcome=?, completed_at=?, error=? WHERE outcome=?",
                (Outcome.ABANDONED.value, at, "healthd stopped before the outcome was known",
                 Outcome.PENDING.value),
            )
            return cur.rowcount

    def recent(self, since: float) -> list[ActionRecord]:
        """Actions at or after ``since`` that guards must see, oldest first."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, container, action, at, outcome, rule, retryable FROM actions"
                " WHERE at >= ? AND action != ? ORDER BY at",
                (since, Action.NONE.value),
            ).fetchall()
        return [
            ActionRecord(container=r[1], action=Action(r[2]), at=r[3], outcome=Outcome(r[4]),
                         rule=r[5], id=r[0], retryable=bool(r[6]))
            for r in rows
        ]

    def history(self, limit: int = 50, container: str | None = None) -> list[HistoryRow]:
        """Newest rows first."""
        q = ("SELECT id, at, container, action, rule, outcome, explanation, error, completed_at"
             " FROM actions")
        args: tuple[Any, ...] = ()
        if container:
            q += " WHERE container = ?"
            args = (container,)
        q += " ORDER BY id DESC LIMIT ?"
        with self._tx() as db:
            rows = db.execute(q, (*args, limit)).fetchall()
        return [HistoryRow(*r) for r in rows]

    def last_action_for(self, container: str) -> HistoryRow | None:
        """The newest row about ``container`` that was acted on (not held back)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id, at, container, action, rule, outcome, explanation, error,"
                " completed_at FROM actions WHERE container = ? AND outcome != ?"
                " ORDER BY id DESC LIMIT 1", (container, Outcome.SKIPPED.value)).fetchone()
        return HistoryRow(*row) if row else None

    def get_meta(self, key: str) -> str | None:
        """A stored cursor or marker."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a cursor or marker."""
        with self._tx() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key)"
                       " DO UPDATE SET value=excluded.value", (key, value))

    def close(self) -> None:
        """Checkpoint and close."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # read-only handles cannot checkpoint; closing is still right
            self._db.close()
