"""Property tests of healthd.store.ledger reading rows it did not write: junk values of every
SQLite type (text that is not UTF-8 too) written with sqlite3 into the ``actions`` table of
a real state file, under the ledger's own schema and under an untyped table such as another
tool (or a newer healthd) might leave; and state files that are not SQLite at all.

What the resilient ledger promises there: the daemon's reads (``recent`` for the guards,
``last_action_for`` for /status) and its writes never raise; ``history`` and read-only
handles give values of their declared types or a LedgerError naming the file; a file that
is not a database is set aside whole, never lost.
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthd.core.model import Action, ActionRecord, Decision, Outcome
from healthd.store.ledger import HistoryRow, Ledger, LedgerError
from healthd.store.memory import COLUMNS
from tests.unit.fuzzing import floats, ints, texts

NOT_NULL = ("at", "container_id", "container", "action", "rule", "evidence", "explanation",
            "outcome", "retryable")
UNTYPED = f"CREATE TABLE actions (id INTEGER PRIMARY KEY, {', '.join(COLUMNS[1:])})"
D = Decision(Action.RESTART, "cid", "api", "crashed.critical", evidence=("exited with code 3",),
             at=1000.0)
VALID = {"at": 1000.0, "container_id": "cid", "container": "api", "action": "restart",
         "rule": "crashed.critical", "failure": "crashed", "severity": "critical",
         "evidence": "[]", "suppressed_by": None, "explanation": "restart api",
         "outcome": "succeeded", "error": None, "completed_at": 1001.0, "retryable": 1}
MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class NotUtf8:
    """Text whose bytes are not UTF-8, stored with CAST(? AS TEXT)."""

    raw: bytes


junk = st.one_of(
    st.none(), ints().filter(lambda n: -(2**63) <= n < 2**63), floats(), st.binary(max_size=8),
    texts(*(a.value for a in Action), *(o.value for o in Outcome), "\udc80"),
    st.binary(min_size=1, max_size=6).filter(lambda b: not _utf8(b)).map(NotUtf8),
)
rows = st.dictionaries(st.sampled_from(COLUMNS[1:]), junk, min_size=1, max_size=3)


def _utf8(b: bytes) -> bool:
    try:
        b.decode()
    except UnicodeDecodeError:
        return False
    return True


def insert(db: sqlite3.Connection, row: dict[str, Any], typed: bool) -> None:
    values = {**VALID, **row}
    if typed:  # the ledger's schema refuses NULL there: put text in instead
        values.update({c: "" for c in NOT_NULL if values[c] is None})
    marks = ", ".join("CAST(? AS TEXT)" if isinstance(v, NotUtf8) else "?"
                      for v in values.values())
    params = [v.raw if isinstance(v, NotUtf8) else v for v in values.values()]
    try:
        db.execute(f"INSERT INTO actions ({', '.join(values)}) VALUES ({marks})", params)
    except (UnicodeEncodeError, sqlite3.IntegrityError):
        pass  # a lone surrogate cannot be bound, a NaN is NULL to SQLite: nobody writes these


def check_record(r: ActionRecord) -> None:
    assert isinstance(r.container, str) and isinstance(r.rule, str)
    assert isinstance(r.action, Action) and isinstance(r.outcome, Outcome)
    assert isinstance(r.at, float) and math.isfinite(r.at)
    assert type(r.id) is int and type(r.retryable) is bool


def check_history(r: HistoryRow | None) -> None:
    if r is None:
        return
    assert type(r.id) is int and isinstance(r.at, float) and math.isfinite(r.at)
    for v in (r.container, r.action, r.rule, r.outcome, r.explanation):
        assert isinstance(v, str), r
    assert r.error is None or isinstance(r.error, str)
    assert r.completed_at is None or (isinstance(r.completed_at, float)
                                      and math.isfinite(r.completed_at))


def read_all(led: Ledger, since: float, limit: int, container: str | None) -> None:
    """Every read; on the daemon's (writable) ledger, only ``history`` may raise."""
    reads = [lambda: [check_record(r) for r in led.recent(since)],
             lambda: check_history(led.last_action_for(container or "api")),
             lambda: [check_history(r) for r in led.history(limit, container)],
             lambda: _check_oldest(led.oldest())]
    for i, read in enumerate(reads):
        try:
            read()
        except LedgerError as exc:
            assert led.readonly or i == 2, exc
            assert led.path in str(exc)


def _check_oldest(t: float | None) -> None:
    assert t is None or (isinstance(t, float) and math.isfinite(t))


@given(st.lists(rows, min_size=1, max_size=4), st.booleans(),
       st.one_of(st.just(0.0), st.floats(allow_nan=False)), st.integers(1, 2**70),
       st.one_of(st.none(), texts("api", "\udc80")))
def test_junk_rows_give_values_or_a_ledger_error(junk_rows: list[dict[str, Any]], typed: bool,
                                                 since: float, limit: int,
                                                 container: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.db")
        if not typed:
            with sqlite3.connect(path) as db:
                db.execute(UNTYPED)
            db.close()
        led = Ledger(path)
        led.record(D, Outcome.SUCCEEDED)
        db = sqlite3.connect(path)
        for row in junk_rows:
            insert(db, row, typed)
        db.commit()
        db.close()
        read_all(led, since, limit, container)
        led.record(D, Outcome.SUCCEEDED)  # and writes go on
        assert led.health().pending == 0
        led.close()
        for again in (Ledger(path), Ledger(path, readonly=True)):  # the next run; the CLI
            read_all(again, since, limit, container)
            again.close()


@given(st.one_of(st.binary(max_size=256), st.binary(max_size=256).map(MAGIC.__add__)),
       st.booleans())
def test_a_state_file_that_is_not_sqlite_is_set_aside_or_a_ledger_error(
        raw: bytes, readonly: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.db")
        with open(path, "wb") as fh:
            fh.write(raw)
        try:
            led = Ledger(path, readonly=readonly)
        except LedgerError as exc:
            assert readonly and path in str(exc)
            return
        read_all(led, 0.0, 50, None)
        if not readonly:
            aside = led.health().set_aside
            if aside is not None:  # the bad file is kept whole beside a fresh one
                with open(aside, "rb") as fh:
                    assert fh.read() == raw
            led.record(D, Outcome.SUCCEEDED)
            assert [r.at for r in led.history()] == [D.at] and led.health().up
        led.close()


def copy_row(path: str, column: str, value: object, sql: str = "?") -> int:
    """Row 1, copied by another writer with ``column`` set to ``value``; the copy's id."""
    cols = ", ".join(COLUMNS[1:])
    with sqlite3.connect(path) as db:
        rid = db.execute(f"INSERT INTO actions ({cols}) SELECT {cols} FROM actions"
                         " WHERE id = 1").lastrowid
        db.execute(f"UPDATE actions SET {column} = {sql} WHERE id = ?", (value, rid))
    db.close()
    assert rid is not None
    return rid


# --- inputs the properties found, kept as plain regression tests ----------------------------


@pytest.mark.parametrize(
    ("column", "value", "guards_see_it", "history_shows_it"),
    [("action", "", False, True), ("action", "frobnicate", False, True),
     ("at", "", False, False), ("outcome", b"\x00", False, False),
     ("container", b"api", False, False), ("completed_at", "soon", False, False),
     ("error", 0, True, True)],
    ids=["action-empty", "action-unknown", "at-text", "outcome-blob", "container-blob",
         "completed-text", "error-number-stored-as-text"],
)
def test_a_junk_row_is_left_out_of_recent_and_named_by_history(
        tmp_path: Path, column: str, value: object, guards_see_it: bool,
        history_shows_it: bool) -> None:
    path = str(tmp_path / "state.db")
    led = Ledger(path)
    led.record(D, Outcome.SUCCEEDED)
    junk = copy_row(path, column, value)
    assert [r.id for r in led.recent(0)] == ([1, junk] if guards_see_it else [1])
    last = led.last_action_for("api")  # /status: never raises on the daemon's ledger
    assert last is not None and last.id in (1, junk)
    for reader in (led, Ledger(path, readonly=True)):
        if history_shows_it:
            assert [r.id for r in reader.history()] == [junk, 1]
        else:
            with pytest.raises(LedgerError, match=rf"row {junk}: {column} "):
                reader.history()
        reader.close()


def test_a_junk_row_read_only_is_a_ledger_error_from_last_action_for(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    led = Ledger(path)
    led.record(D, Outcome.SUCCEEDED)
    led.close()
    junk = copy_row(path, "at", "yesterday")
    ro = Ledger(path, readonly=True)
    with pytest.raises(LedgerError, match=rf"row {junk}: at 'yesterday'"):
        ro.last_action_for("api")
    ro.close()


def test_oldest_reads_only_times_healthd_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    led = Ledger(path)
    led.record(D, Outcome.SUCCEEDED)
    led.close()
    copy_row(path, "at", "yesterday")
    copy_row(path, "at", float("-inf"))
    ro = Ledger(path, readonly=True)
    assert ro.oldest() == 1000.0
    ro.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE actions SET at = 'long ago'")
    db.close()
    ro = Ledger(path, readonly=True)
    assert ro.oldest() is None
    ro.close()


def test_text_that_is_not_utf8_reads_with_replacement_characters(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    first = Ledger(path)
    first.record(D, Outcome.SUCCEEDED)
    first.close()
    junk = copy_row(path, "rule", b"\xff", sql="CAST(? AS TEXT)")
    led = Ledger(path)  # the next run: its guards read the file's rows, all of them
    assert [(r.id, r.rule) for r in led.recent(0)] == [(1, D.rule), (junk, "\ufffd")]
    for reader in (led, Ledger(path, readonly=True)):
        assert [r.rule for r in reader.history()] == ["\ufffd", D.rule]
        reader.close()


def test_a_history_limit_beyond_64_bits_means_all_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    led = Ledger(path)
    led.record(D, Outcome.SUCCEEDED)
    for reader in (led, Ledger(path, readonly=True)):
        assert len(reader.history(limit=2**63)) == 1
        reader.close()


def test_text_sqlite_cannot_take_is_written_and_looked_up_escaped(tmp_path: Path) -> None:
    # A lone surrogate: what Python makes of bytes that were not UTF-8 (surrogateescape,
    # or a JSON "\udc80" escape in an engine's answer).
    path = str(tmp_path / "state.db")
    led = Ledger(path)
    odd = Decision(Action.RESTART, "cid", "api\udc80", "crashed.critical",
                   evidence=("exited \udcff",), at=1000.0, suppressed_by="cooldown\udc80")
    row = led.record(odd, Outcome.PENDING)  # writes never raise
    led.complete(row, Outcome.FAILED, 1001.0, "error \udcff")
    led.set_meta("cursor\udc80", "42\udc80")
    led.record(D, Outcome.SUCCEEDED)  # and the backlog is not stuck behind the odd row
    assert led.health().pending == 0 and led.health().up
    assert [r.container for r in led.recent(0)] == ["api\udc80", "api"]  # guards: as named
    for reader in (led, Ledger(path, readonly=True)):
        (got,) = reader.history(container="api\udc80")
        last = reader.last_action_for("api\udc80")
        assert last is not None and last.id == got.id
        assert reader.get_meta("cursor\udc80") == "42\\udc80"
        reader.close()
    # The file holds the escapes (this run's reads come from memory, as named).
    assert (got.container, got.error) == ("api\\udc80", "error \\udcff")
