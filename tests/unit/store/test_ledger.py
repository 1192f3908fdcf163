"""The SQLite ledger on a real file: intent before outcome, abandonment, migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from healthd.core.model import Action, Decision, Outcome
from healthd.store.ledger import Ledger

D = Decision(Action.RESTART, "cid", "api", "crashed.critical", evidence=("exited with code 3",),
             at=1000.0)


def test_pending_intent_is_visible_to_guards_before_the_outcome(tmp_path: Path) -> None:
    led = Ledger(str(tmp_path / "s.db"))
    row = led.record(D, Outcome.PENDING)
    assert [r.outcome for r in led.recent(0)] == [Outcome.PENDING]
    led.complete(row, Outcome.FAILED, 1001.0, "boom", retryable=False)
    (rec,) = led.recent(0)
    assert rec.outcome is Outcome.FAILED and rec.retryable is False
    led.close()


def test_pending_rows_of_a_killed_run_become_abandoned_on_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    first = Ledger(path)
    first.record(D, Outcome.PENDING)
    # No close(): as after SIGKILL. WAL keeps the committed intent.
    second = Ledger(path)
    assert second.abandon_pending(2000.0) == 1
    (row,) = second.history()
    assert row.outcome == "abandoned" and row.error and "stopped" in row.error
    assert second.recent(0)[0].outcome is Outcome.ABANDONED
    second.close()


def test_history_is_newest_first_and_readable_read_only(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    led = Ledger(path)
    for i in range(3):
        led.record(D.__class__(**{**D.__dict__, "at": 1000.0 + i}), Outcome.SUCCEEDED)
    led.set_meta("events_cursor_ns", "42")
    led.close()
    ro = Ledger(path, readonly=True)
    assert [r.at for r in ro.history(limit=2)] == [1002.0, 1001.0]
    assert ro.get_meta("events_cursor_ns") == "42"
    assert ro.last_action_for("api") is not None
    ro.close()


def test_state_file_of_an_older_version_gains_the_new_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE actions (id INTEGER PRIMARY KEY, at REAL NOT NULL, container_id"
               " TEXT NOT NULL, container TEXT NOT NULL, action TEXT NOT NULL, rule TEXT NOT"
               " NULL, failure TEXT, severity TEXT, evidence TEXT NOT NULL, suppressed_by TEXT,"
               " explanation TEXT NOT NULL, outcome TEXT NOT NULL, error TEXT,"
               " completed_at REAL)")
    db.commit()
    db.close()
    led = Ledger(str(path))
    led.record(D, Outcome.SUCCEEDED)
    assert led.recent(0)[0].retryable is True
    led.close()


def test_recent_for_one_container_reads_its_rows_and_only_the_last_minute_of_the_others(
        tmp_path: Path) -> None:
    led = Ledger(str(tmp_path / "s.db"))
    for i in range(3000):  # an hour of someone else's crash loop
        led.record(D.__class__(**{**D.__dict__, "target_name": "noisy", "at": 1000.0 + i}),
                   Outcome.SUCCEEDED)
    led.record(D.__class__(**{**D.__dict__, "at": 1500.0}), Outcome.SUCCEEDED)  # api's own
    got = led.recent(900.0, container="api", everyone_since=3940.0)
    assert [(r.container, r.at) for r in got] == (
        [("api", 1500.0)] + [("noisy", 3940.0 + i) for i in range(60)])
    assert [r.container for r in led.recent(900.0, container="api")] == ["api"]
    assert len(led.recent(900.0)) == 3001  # without a container: the whole host, as before
    led.close()
    again = Ledger(str(tmp_path / "s.db"))  # the same from the file, in the next run
    assert again.recent(900.0, container="api", everyone_since=3940.0) == got
    again.close()
