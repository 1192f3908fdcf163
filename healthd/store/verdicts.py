"""Verdicts on healthd's own actions, kept in the ledger's SQLite file (``verdicts`` table).

Owns: one row per verified action, written when its window opens (``pending``) and again
when the verdict is given, so a window that was running when healthd stopped (a SIGKILL
included) is found on the next start and resumed, never guessed and never acted on again.
An action is named by what its ``actions`` row holds (container id, action, decision time):
the ledger's own row ids may still be temporary while its file is full.
Must never: decide or raise from a write. A write the file refuses (a full disk) is kept
in memory and tried again at every ``flush``, so no verdict is lost while healthd runs.

Why its own connection rather than the ledger's: as for ``store.control``, the ledger's
connection and lock belong to the decision path; SQLite serialises the writers.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from healthd.core.incident import Taken
from healthd.store import statefile

log = logging.getLogger("healthd")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    container_id TEXT NOT NULL,
    action TEXT NOT NULL,
    decided_at REAL NOT NULL,     -- the actions row's ``at``
    container TEXT NOT NULL,
    failure TEXT NOT NULL,        -- the classification the action answered
    acted_at REAL NOT NULL,       -- when the action was done: the window starts here
    window_s REAL NOT NULL,
    kind TEXT NOT NULL,           -- pending, fixed, recurred, not_fixed, superseded
    evidence TEXT NOT NULL,
    judged_at REAL,
    after_s REAL,
    service TEXT,                 -- the fix-rate key: "project/service", else the name
    watched_id TEXT,              -- the container watched (a recreate's new one)
    PRIMARY KEY (container_id, action, decided_at)
);
CREATE INDEX IF NOT EXISTS verdicts_kind ON verdicts (kind);
"""
_COLUMNS = ("container_id", "action", "decided_at", "container", "failure", "acted_at",
            "window_s", "kind", "evidence", "judged_at", "after_s", "service", "watched_id")
# Columns added after the table first shipped: a state file from then gets them at start.
_ADDED = ("service", "watched_id")
_UPSERT = (f"INSERT OR REPLACE INTO verdicts ({', '.join(_COLUMNS)}) VALUES "
           f"({', '.join('?' * len(_COLUMNS))})")
_TEXT = ("container_id", "action", "container", "failure", "kind", "evidence")
_TIMES = ("decided_at", "acted_at", "window_s")


@dataclass(frozen=True)
class Record:
    """One verified action and where its verdict stands."""

    container_id: str
    action: str
    decided_at: float
    container: str
    failure: str
    acted_at: float
    window_s: float
    kind: str = "pending"
    evidence: str = ""
    judged_at: float | None = None
    after_s: float | None = None
    service: str | None = None  # the fix-rate key; None: the container's name
    watched_id: str | None = None  # the container watched; None: ``container_id``

    @property
    def watched(self) -> str:
        """The container whose observations judge it (a recreate's is the new one)."""
        return self.watched_id or self.container_id

    @property
    def fix_key(self) -> str:
        """What fix rates are counted per: its service, else its container's name."""
        return self.service or self.container

    @property
    def key(self) -> tuple[str, str, float]:
        """The action it is about: (container id, action, decision time)."""
        return (self.container_id, self.action, self.decided_at)

    def values(self) -> tuple[Any, ...]:
        """Column values in table order."""
        return tuple(getattr(self, c) for c in _COLUMNS)

    def taken(self) -> Taken:
        """As a step of an incident (``core.incident``)."""
        return Taken(self.container, self.failure, self.action, self.decided_at, self.kind,
                     self.evidence, self.judged_at)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``healthd history --json``'s ``verdict``)."""
        return {"kind": self.kind, "evidence": self.evidence, "at": self.judged_at,
                "after_s": self.after_s, "window_s": self.window_s}


def _record(values: tuple[Any, ...]) -> Record | None:
    """A row as written by healthd, or None (another tool's or a damaged row is skipped)."""
    v = dict(zip(_COLUMNS, values, strict=True))
    if any(not isinstance(v[c], str) for c in _TEXT):
        return None
    for c in ("service", "watched_id"):
        if v[c] is not None and not isinstance(v[c], str):
            v[c] = None
    for c in (*_TIMES, "judged_at", "after_s"):
        x = v[c]
        if x is None and c not in _TIMES:
            continue
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            return None
        v[c] = float(x)
    return Record(**v)


def _add_columns(db: sqlite3.Connection) -> None:
    """Bring a ``verdicts`` table from before ``_ADDED`` up to date (SQLite's ADD COLUMN
    keeps the rows; old rows read None there)."""
    have = {str(r[1]) for r in db.execute("PRAGMA table_info(verdicts)")}
    with db:
        for c in _ADDED:
            if c not in have:
                db.execute(f"ALTER TABLE verdicts ADD COLUMN {c} TEXT")


class VerdictStore:
    """Thread-safe; works in memory when the file does not (and says so once)."""

    def __init__(self, path: str | None, busy_timeout_s: float = 1.0,
                 readonly: bool = False) -> None:
        """path: the ledger's state file; None keeps nothing on disk (tests)."""
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._unsaved: dict[tuple[str, str, float], Record] = {}
        self._said = False
        if path is None:
            return
        try:
            self._db = (statefile.connect_ro(path) if readonly
                        else statefile.connect_beside(path, _SCHEMA, busy_timeout_s))
            if not readonly:
                _add_columns(self._db)
        except (sqlite3.Error, OSError) as exc:
            self._failed(f"cannot open {path}: {exc}")

    def _failed(self, why: str) -> None:
        if not self._said:
            self._said = True
            log.error("verdicts are not persisted for now (%s): kept in memory and written"
                      " once the state file takes them", why)

    def put(self, r: Record) -> None:
        """Keep ``r`` (replacing the earlier state of its action); written now if the file
        takes it, else at a later ``flush``."""
        with self._lock:
            self._unsaved[r.key] = r
            self._flush()

    def flush(self) -> int:
        """Write what waits; returns how many records still wait."""
        with self._lock:
            self._flush()
            return len(self._unsaved)

    def _flush(self) -> None:
        if self._db is None or not self._unsaved:
            return
        try:
            with self._db:
                self._db.executemany(_UPSERT, [r.values() for r in self._unsaved.values()])
        except sqlite3.Error as exc:
            self._failed(f"cannot write {self.path}: {exc}")
            return
        if self._said:
            self._said = False
            log.warning("verdicts are persisted again (state file %s)", self.path)
        self._unsaved.clear()

    def _select(self, where: str, args: tuple[Any, ...],
                keep: Callable[[Record], bool] = lambda r: True) -> list[Record]:
        """Rows matching ``where``, and the unsaved records ``keep`` says match it too."""
        rows: list[Any] = []
        with self._lock:
            if self._db is not None:
                try:
                    rows = self._db.execute(
                        f"SELECT {', '.join(_COLUMNS)} FROM verdicts {where}", args).fetchall()
                except sqlite3.Error as exc:
                    # A state file from before verdicts (read-only: no table yet) has none.
                    if "no such table" not in str(exc):
                        self._failed(f"cannot read {self.path}: {exc}")
            found = {r.key: r for r in (_record(tuple(v)) for v in rows) if r is not None}
            for k, r in self._unsaved.items():
                if keep(r):
                    found[k] = r  # memory is never older than the file
                else:
                    found.pop(k, None)
        return list(found.values())

    def open_windows(self) -> list[Record]:
        """Actions whose verdict is still pending, oldest first (resumed at start)."""
        pending = self._select("WHERE kind = ?", ("pending",), lambda r: r.kind == "pending")
        return sorted(pending, key=lambda r: r.acted_at)

    def for_container(self, container: str | None) -> dict[tuple[str, str, float], Record]:
        """Every verdict (of one container, by name, or all), by (container, action,
        decision time): what ``healthd history`` joins its rows on."""
        where, args = ("WHERE container = ?", (container,)) if container else ("", ())
        rows = self._select(where, args, lambda r: not container or r.container == container)
        return {(r.container, r.action, r.decided_at): r for r in rows}

    def of_target(self, container: str) -> list[Record]:
        """Every verdict on actions taken on ``container`` (by name), oldest first: the
        steps its ladder has taken."""
        return sorted(self._select("WHERE container = ?", (container,),
                                   lambda r: r.container == container),
                      key=lambda r: r.decided_at)

    def judged_since(self, since: float) -> list[Record]:
        """Every final verdict given after ``since`` (epoch seconds): what fix rates count."""
        return [r for r in self._select("WHERE judged_at > ?", (since,),
                                        lambda r: r.judged_at is not None
                                        and r.judged_at > since)
                if r.kind != "pending"]

    def every(self) -> list[Record]:
        """Every verdict kept, oldest first (``history --incidents``, ``--outcomes``)."""
        return sorted(self._select("", ()), key=lambda r: r.decided_at)

    def prune(self, before: float) -> int:
        """Forget final verdicts given before ``before`` (epoch seconds); pending ones (a
        window, a hold) stay whatever their age. Returns how many rows went."""
        with self._lock:
            for k in [k for k, r in self._unsaved.items()
                      if r.kind != "pending" and (r.judged_at or 0.0) < before]:
                del self._unsaved[k]
            if self._db is None:
                return 0
            try:
                with self._db:
                    cur = self._db.execute("DELETE FROM verdicts WHERE kind != 'pending' AND "
                                           "judged_at < ?", (before,))
            except sqlite3.Error as exc:
                self._failed(f"cannot prune {self.path}: {exc}")
                return 0
            return int(cur.rowcount)

    def close(self) -> None:
        """Write what waits (if the file takes it) and close."""
        with self._lock:
            self._flush()
            if self._db is not None:
                self._db.close()
                self._db = None
