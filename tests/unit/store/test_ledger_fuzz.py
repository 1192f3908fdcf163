"""The ledger reading rows it did not write (another tool, a newer healthd, damage SQLite
does not see): guards and /status go on without them, ``history`` names them in a
LedgerError, never another exception.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from healthd.core.model import Action, Decision, Outcome
from healthd.store.ledger import Ledger, LedgerError
from healthd.store.memory import COLUMNS

D = Decision(Action.RESTART, "cid", "api", "crashed.critical", evidence=("exited with code 3",),
             at=1000.0)


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
