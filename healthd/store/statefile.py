"""The state file: the SQLite side of the ledger (schema, opening, checking, SQL statements).

Owns: what is in the file (the ``actions`` and ``meta`` tables, and the migrations that bring
an older file up to date), how it is opened (read-write in WAL, or read-only) and checked (its
header, then ``PRAGMA quick_check``), telling a corrupt file from one that is only unreadable
for now, moving a corrupt one aside, and the SQL statements ``store.ledger`` runs.
Must never: hold state between calls, log, or decide what a failure means: every error goes
back to ``store.ledger``, which keeps writes in memory and never raises from one.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from collections.abc import Mapping

from healthd.core.model import Outcome
from healthd.store.memory import COLUMNS, Completion, Row, storable

SCHEMA = """
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
INSERT = f"INSERT INTO actions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
SELECT = f"SELECT {', '.join(COLUMNS)} FROM actions"
UPDATE = "UPDATE actions SET outcome=?, error=?, completed_at=?, retryable=? WHERE id=?"
ABANDON = "UPDATE actions SET outcome=?, completed_at=?, error=? WHERE outcome=?"
UPSERT_META = ("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key)"
               " DO UPDATE SET value=excluded.value")
PRUNE_OLD = ("DELETE FROM actions WHERE id IN (SELECT id FROM actions WHERE at < ?"
             " AND outcome != ? ORDER BY at LIMIT ?)")
PRUNE_MANY = ("DELETE FROM actions WHERE id IN (SELECT id FROM actions WHERE id <= ?"
              " AND at < ? AND outcome != ? ORDER BY id LIMIT ?)")
RECENT = SELECT + " WHERE at >= ? AND action != ? AND outcome != ?"
LAST_ACTED = SELECT + " WHERE container = ? AND outcome != ? ORDER BY id DESC LIMIT 1"
META = "SELECT value FROM meta WHERE key=?"
# Only times healthd writes: a text or an infinity in another's row is no time.
OLDEST = ("SELECT min(at) FROM actions WHERE typeof(at) IN ('integer',"
          " 'real') AND abs(at) < ?")
_WAL_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is truncated to after a checkpoint
_MAGIC = b"SQLite format 3\x00"  # the first bytes of every SQLite 3 file
# SQLite primary result codes.
_READONLY, _CORRUPT, _CANTOPEN, _NOTADB = 8, 11, 14, 26


class Corrupt(Exception):
    """The file fails SQLite's integrity check."""


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    return code & 0xFF if isinstance(code, int) else None


def is_corrupt(exc: BaseException) -> bool:
    """The file itself is bad (not transiently unreadable): set it aside."""
    if isinstance(exc, Corrupt):
        return True
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return False
    code = _code(exc)
    if code is not None:
        return code in (_CORRUPT, _NOTADB)
    return "not a database" in str(exc) or "malformed" in str(exc)


def needs_reopen(exc: BaseException) -> bool:
    """A connection that hit this does not recover in place (it opened read-only, say)."""
    code = _code(exc)
    if code is not None:
        return code in (_READONLY, _CANTOPEN, _CORRUPT, _NOTADB)
    return any(s in str(exc) for s in ("readonly", "unable to open", "not a database",
                                       "malformed"))


def connect_ro(path: str) -> sqlite3.Connection:
    """A read-only connection to ``path`` (for ``healthd history``); raises when it cannot
    be read."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    db.text_factory = _text
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        db.close()
        raise
    return db


def connect_beside(path: str, schema: str, busy_s: float) -> sqlite3.Connection:
    """A read-write connection to ``path`` for tables other modules own beside the ledger's
    (``store.control``, ``store.verdicts``), with the ledger's conventions (its directory
    made, WAL, ``synchronous=NORMAL``, a busy timeout) and ``schema`` applied. Raises
    ``sqlite3.Error`` or ``OSError``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, timeout=busy_s)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


def connect(path: str, busy_s: float) -> tuple[sqlite3.Connection, bool]:
    """(a read-write connection to ``path``, whether it prunes with incremental vacuum).

    Makes the file (and its directory) when missing, checks it, brings its schema up to date.
    busy_s: how long a write waits on a lock held by another connection. Raises ``Corrupt``,
    ``sqlite3.Error`` or ``OSError``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _check_header(path)
    db = sqlite3.connect(path, check_same_thread=False, timeout=busy_s)
    db.text_factory = _text
    try:
        if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            # Only a file without tables can take this: pruned rows' pages then go
            # back to the file system (``prune`` runs incremental_vacuum).
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        check = [str(r[0]) for r in db.execute("PRAGMA quick_check(3)")]
        if check != ["ok"]:
            raise Corrupt("quick_check: " + "; ".join(check))
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit is in the OS before the restart is sent, so
        # it survives a SIGKILL of healthd; only a power cut can lose the newest
        # rows, and then every container restarts anyway. FULL would put an fsync
        # (tens to hundreds of ms while the engine writes) in each action's path.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
        db.executescript(SCHEMA)
        _migrate(db)
        incremental: bool = db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    except BaseException:
        db.close()
        raise
    return db, incremental


def set_aside(path: str, now: float) -> str:
    """Move a corrupt ``path`` (and its WAL) aside, beside the original; returns where.

    now: epoch seconds, for the new name (``<path>.corrupt-<UTC time>``).
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    dest = f"{path}.corrupt-{stamp}"
    for n in itertools.count(1):
        if not os.path.lexists(dest):
            break
        dest = f"{path}.corrupt-{stamp}-{n}"
    # The WAL first: a fresh file must never pick up the old file's WAL.
    for suffix in ("-wal", "-shm", ""):
        if os.path.lexists(path + suffix):
            os.replace(path + suffix, dest + suffix)
    return dest


def abandon(db: sqlite3.Connection, at: float, reason: str) -> int:
    """Mark every pending row abandoned at ``at`` with ``reason``, in one transaction;
    returns how many."""
    with db:
        return db.execute(ABANDON, (Outcome.ABANDONED.value, at, reason,
                                    Outcome.PENDING.value)).rowcount


def insert(db: sqlite3.Connection, rows: list[Row]) -> list[int | None]:
    """Insert ``rows`` in one transaction; their new ids, in order."""
    with db:
        return [db.execute(INSERT, r.values()).lastrowid for r in rows]


def update(db: sqlite3.Connection, updates: Mapping[int, Completion]) -> None:
    """Write pending rows' outcomes (by row id) in one transaction."""
    with db:
        db.executemany(UPDATE, [(c.outcome, storable(c.error), c.completed_at,
                                 int(c.retryable), rid)
                                for rid, c in updates.items()])


def put_meta(db: sqlite3.Connection, meta: Mapping[str, str]) -> None:
    """Store cursors and markers in one transaction."""
    with db:
        db.executemany(UPSERT_META, [(storable(k), storable(v)) for k, v in meta.items()])


def prune(db: sqlite3.Connection, older_than: float, keep_after: float, keep_rows: int,
          batch: int, incremental: bool) -> int:
    """Delete up to ``batch`` rows, oldest first, in one transaction; returns how many.

    Deleted: rows older than ``older_than`` (epoch s), then rows beyond the newest
    ``keep_rows`` ids that are older than ``keep_after``; never a pending intent.
    incremental: hand the freed pages back to the file system.
    """
    pending = Outcome.PENDING.value
    with db:
        n = db.execute(PRUNE_OLD, (older_than, pending, batch)).rowcount
        top = db.execute("SELECT max(id) FROM actions").fetchone()[0] or 0
        if n < batch and top > keep_rows:
            n += db.execute(PRUNE_MANY, (top - keep_rows, keep_after,
                                         pending, batch - n)).rowcount
    if n and incremental:
        db.execute("PRAGMA incremental_vacuum").fetchall()
    return n


def _text(raw: bytes) -> str:
    """TEXT that is not UTF-8 (another writer's) reads with U+FFFD: with sqlite3's default,
    one such value fails the whole query, and ``recent`` then reads none of the file's rows."""
    return raw.decode("utf-8", "replace")


def _check_header(path: str) -> None:
    """Refuse a file that is not SQLite before SQLite opens it (and deletes its -wal)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_MAGIC))
    except FileNotFoundError:
        return
    if head and head != _MAGIC:
        raise Corrupt("file is not a database")


def _migrate(db: sqlite3.Connection) -> None:
    """Add columns that newer versions record to a state file made by an older one."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(actions)")}
    if "retryable" not in cols:
        db.execute("ALTER TABLE actions ADD COLUMN retryable INTEGER NOT NULL DEFAULT 1")
        db.commit()
