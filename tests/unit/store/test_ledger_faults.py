"""The ledger when its state file fails: locked, unopenable, corrupt. No mocks, real files.

As root, permission bits do not stop writes, so "cannot write" is a second connection
holding SQLite's write lock (``BEGIN EXCLUSIVE``), and "cannot open" is a state path whose
directory is a regular file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from healthd.core.model import Action, Decision, Outcome
from healthd.store.ledger import Ledger, LedgerError

T0 = 1_796_292_900.0  # 2026-12-03 10:15:00 UTC
D = Decision(Action.RESTART, "cid", "api", "crashed.critical", evidence=("exited with code 3",),
             at=T0)


def at(t: float, name: str = "api", action: Action = Action.RESTART) -> Decision:
    return dataclasses.replace(D, at=t, target_name=name, action=action)


def ledger(path: Path, **kw: object) -> Ledger:
    return Ledger(str(path), clock=lambda: T0, busy_timeout_s=0.01, **kw)  # type: ignore[arg-type]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another connection holds the write lock: every write of the ledger fails."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def file_rows(path: Path) -> list[tuple[int, str, float, str]]:
    db = sqlite3.connect(path)
    try:
        return [(r[0], r[1], r[2], r[3]) for r in
                db.execute("SELECT id, container, at, outcome FROM actions ORDER BY id")]
    finally:
        db.close()


def test_writes_never_raise_and_guards_see_what_waits(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    led = ledger(path)
    with locked(path):
        row = led.record(D, Outcome.PENDING)
        led.set_meta("events_cursor_ns", "42")
        h = led.health()
        assert not h.up and h.pending == 2 and "locked" in (h.error or "")
        (rec,) = led.recent(0)
        assert rec.outcome is Outcome.PENDING
        led.complete(row, Outcome.FAILED, T0 + 1, "boom", retryable=False)
        (rec,) = led.recent(0)
        assert rec.outcome is Outcome.FAILED and rec.retryable is False
        assert led.get_meta("events_cursor_ns") == "42"
        assert led.last_action_for("api") is not None
        assert led.flush() is False
    assert file_rows(path) == []
    assert led.flush() is True
    assert file_rows(path) == [(1, "api", T0, "failed")]
    assert led.health().up and led.health().pending == 0
    led.close()
    assert Ledger(str(path), readonly=True).get_meta("events_cursor_ns") == "42"


def test_an_id_stays_valid_for_complete_after_its_row_is_written(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    led = ledger(path)
    led.record(at(T0 - 10, "db"), Outcome.SUCCEEDED)
    with locked(path):
        row = led.record(D, Outcome.PENDING)
        assert row < 0  # not written: a temporary id
    assert led.flush()
    led.complete(row, Outcome.SUCCEEDED, T0 + 1)
    assert file_rows(path) == [(1, "db", T0 - 10, "succeeded"), (2, "api", T0, "succeeded")]
    assert [r.id for r in led.recent(0)] == [1, 2]
    led.close()


def test_a_completion_of_a_written_row_waits_too(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    led = ledger(path)
    row = led.record(D, Outcome.PENDING)
    assert row == 1
    with locked(path):
        led.complete(row, Outcome.SUCCEEDED, T0 + 1)
        assert led.recent(0)[0].outcome is Outcome.SUCCEEDED
        assert led.last_action_for("api").outcome == "succeeded"  # type: ignore[union-attr]
    assert file_rows(path) == [(1, "api", T0, "pending")]
    led.flush()
    assert file_rows(path) == [(1, "api", T0, "succeeded")]
    led.close()


def test_rows_are_written_in_the_order_they_were_made_once_the_file_is_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    led = ledger(path)
    with locked(path):
        ids = [led.record(at(T0 + i, f"c{i}"), Outcome.PENDING) for i in range(5)]
        for i in (3, 0, 4):
            led.complete(ids[i], Outcome.SUCCEEDED, T0 + 10)
    led.record(at(T0 + 5, "c5"), Outcome.SUCCEEDED)  # the retry on a later write
    for i in (1, 2):
        led.complete(ids[i], Outcome.FAILED, T0 + 11)
    assert file_rows(path) == [
        (1, "c0", T0, "succeeded"), (2, "c1", T0 + 1, "failed"), (3, "c2", T0 + 2, "failed"),
        (4, "c3", T0 + 3, "succeeded"), (5, "c4", T0 + 4, "succeeded"),
        (6, "c5", T0 + 5, "succeeded")]
    assert [r.container for r in led.recent(0)] == [f"c{i}" for i in range(6)]
    led.close()


def test_a_full_backlog_drops_held_back_rows_first_and_counts_drops(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    led = ledger(path, backlog_limit=4)
    with locked(path):
        led.record(at(T0, "s0"), Outcome.SKIPPED)
        led.record(at(T0 + 1, "a1"), Outcome.SUCCEEDED)
        led.record(at(T0 + 2, "s2"), Outcome.SKIPPED)
        led.record(at(T0 + 3, "a3"), Outcome.SUCCEEDED)
        led.record(at(T0 + 4, "a4"), Outcome.SUCCEEDED)  # drops s0
        led.record(at(T0 + 5, "a5"), Outcome.SUCCEEDED)  # drops s2
        led.record(at(T0 + 6, "a6"), Outcome.SUCCEEDED)  # then the oldest: a1
        assert (led.health().pending, led.health().dropped) == (4, 3)
        # What guards need stays in memory even when it cannot be kept for the file.
        assert "a1" in [r.container for r in led.recent(0)]
    led.flush()
    assert [r[1] for r in file_rows(path)] == ["a3", "a4", "a5", "a6"]
    assert led.health().dropped == 3
    led.close()


def test_unopenable_state_file_runs_in_memory_and_opens_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    path = blocker / "s.db"
    with caplog.at_level(logging.WARNING, "healthd.ledger"):
        led = ledger(path)
        h = led.health()
        assert not h.up and "cannot open" in (h.error or "") and h.path == str(path)
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert led.abandon_pending(T0) == 0
        assert led.get_meta("events_cursor_ns") is None
        row = led.record(D, Outcome.PENDING)
        led.complete(row, Outcome.SUCCEEDED, T0 + 1)
        assert led.recent(0)[0].outcome is Outcome.SUCCEEDED
        assert led.prune(T0, T0) == 0
        assert led.flush() is False
        assert len(caplog.records) == 1  # said once, not on every retry
        blocker.unlink()
        blocker.mkdir()
        assert led.flush() is True
        assert "takes writes again" in caplog.records[-1].message
    assert file_rows(path) == [(1, "api", T0, "succeeded")]
    led.close()


def test_abandonment_deferred_by_a_locked_file_comes_before_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = ledger(path)
    first.record(at(T0 - 60), Outcome.PENDING)  # then SIGKILL: no close
    with locked(path):
        second = ledger(path)
        assert second.abandon_pending(T0) == 0
        second.record(D, Outcome.PENDING)
    second.flush()
    assert file_rows(path) == [(1, "api", T0 - 60, "abandoned"), (2, "api", T0, "pending")]
    assert [r.outcome for r in second.recent(0)] == [Outcome.ABANDONED, Outcome.PENDING]
    second.close()
    first.close()


def test_close_with_writes_that_cannot_be_made_logs_and_does_not_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "s.db"
    led = ledger(path)
    with locked(path):
        led.record(D, Outcome.SUCCEEDED)
        with caplog.at_level(logging.ERROR, "healthd.ledger"):
            led.close()
    assert "1 write(s)" in caplog.text and "lost" in caplog.text


# ---- corrupt files ---------------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_set_aside_and_a_fresh_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(os.urandom(4096))
    (tmp_path / "state.db-wal").write_bytes(os.urandom(512))
    with caplog.at_level(logging.ERROR, "healthd.ledger"):
        led = ledger(path)
    aside = tmp_path / "state.db.corrupt-20261203T101500Z"
    h = led.health()
    assert h.up and h.set_aside == str(aside)
    assert aside.stat().st_size == 4096 and (tmp_path / "state.db.corrupt-20261203T101500Z-wal"
                                            ).exists()
    assert "corrupt" in caplog.text and str(aside) in caplog.text
    assert led.get_meta("events_cursor_ns") is None  # a first run: deaths before now are old
    led.record(D, Outcome.SUCCEEDED)
    led.close()
    assert file_rows(path) == [(1, "api", T0, "succeeded")]


def test_a_second_set_aside_in_the_same_second_does_not_overwrite_the_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    for _ in range(2):
        path.write_bytes(os.urandom(4096))
        ledger(path).close()
    assert len(list(tmp_path.glob("state.db.corrupt-*"))) == 2


def test_a_file_failing_its_integrity_check_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    led = ledger(path)
    for i in range(400):
        led.record(at(T0 + i, f"c{i}"), Outcome.SUCCEEDED)
    led.close()
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as fh:  # garble the pages after the schema page
        fh.seek(2 * page)
        fh.write(b"\xff" * page * 3)
    again = ledger(path)
    assert again.health().set_aside is not None
    assert again.recent(0) == []
    again.close()


def test_a_read_only_handle_on_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(LedgerError, match="is not a healthd state file"):
        Ledger(str(path), readonly=True)
    assert path.stat().st_size == 4096  # a reader never moves it


def test_a_file_found_corrupt_mid_run_is_replaced_keeping_what_memory_holds(
    tmp_path: Path,
) -> None:
    """A connection SQLite opened read-only (an immutable file) must be re-opened to write;
    by then the file is garbage: set aside, and the rows memory holds go to the new file
    under their ids, so a pending row's id still completes it."""
    path = tmp_path / "state.db"
    first = ledger(path)
    first.record(at(T0 - 2, "a"), Outcome.SUCCEEDED)
    first.record(at(T0 - 1, "b"), Outcome.SUCCEEDED)
    first.close()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        led = ledger(path)
        assert len(led.recent(0)) == 2  # the guard window, in memory
        row = led.record(D, Outcome.PENDING)
        assert not led.health().up and "readonly" in (led.health().error or "")
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    path.write_bytes(os.urandom(4096))
    assert led.flush()
    led.complete(row, Outcome.SUCCEEDED, T0 + 1)
    assert led.health().set_aside is not None
    assert file_rows(path) == [(1, "a", T0 - 2, "succeeded"), (2, "b", T0 - 1, "succeeded"),
                               (3, "api", T0, "succeeded")]
    led.close()
