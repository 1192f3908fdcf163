"""healthd.store.verdicts on a real SQLite file: a window written as pending is found by
the next process, a verdict replaces it, history joins on the action's own row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from healthd.store.verdicts import Record, VerdictStore


def rec(kind: str = "pending", at: float = 100.0, **kw: object) -> Record:
    base = dict(container_id="c1", action="restart", decided_at=at, container="api",
                failure="crashed", acted_at=at + 1, window_s=600.0, kind=kind,
                evidence="watching")
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def test_a_pending_window_is_found_by_the_next_process(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    s = VerdictStore(path)
    s.put(rec(at=100.0))
    s.put(rec(at=50.0, container_id="c2", container="db"))
    s.close()
    again = VerdictStore(path)
    assert [r.container for r in again.open_windows()] == ["db", "api"]  # oldest first


def test_a_verdict_replaces_its_pending_row_and_closes_the_window(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    s = VerdictStore(path)
    s.put(rec())
    s.put(rec("fixed", evidence="crashed stayed away for 600 s", judged_at=701.0))
    s.close()
    again = VerdictStore(path, readonly=True)
    assert again.open_windows() == []
    got = again.for_container("api")[("api", "restart", 100.0)]
    assert (got.kind, got.judged_at) == ("fixed", 701.0)
    assert got.as_dict()["evidence"] == "crashed stayed away for 600 s"


def test_a_file_from_before_verdicts_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE actions (id INTEGER)").connection.commit()
    assert VerdictStore(str(path), readonly=True).for_container(None) == {}


def test_rows_healthd_would_not_write_are_skipped(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    VerdictStore(path).put(rec())
    db = sqlite3.connect(path)
    db.execute("INSERT INTO verdicts VALUES ('c9','restart','soon','x','crashed',1,1,"
               "'pending','',NULL,NULL,NULL,NULL)")
    db.commit()
    assert [r.container_id for r in VerdictStore(path).open_windows()] == ["c1"]


def test_without_a_file_records_are_kept_in_memory() -> None:
    s = VerdictStore(None)
    s.put(rec())
    assert [r.kind for r in s.open_windows()] == ["pending"]
    assert s.flush() == 1  # nowhere to write it: it waits, never dropped


def test_records_not_yet_written_are_filtered_like_the_file_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    s = VerdictStore(path)
    s.put(rec("pending", 100.0))  # written
    s._db = None  # the file stops taking writes: what follows waits in memory
    s.put(rec("fixed", 100.0, judged_at=200.0))  # the same action, judged now
    s.put(rec("pending", 150.0, container="db", container_id="c2"))
    assert [r.container for r in s.of_target("api")] == ["api"]
    assert [r.container for r in s.open_windows()] == ["db"]  # api's is judged now
    assert [r.kind for r in s.judged_since(150.0)] == ["fixed"]
    assert s.judged_since(250.0) == []


def test_old_final_verdicts_are_pruned_and_pending_ones_kept(tmp_path: Path) -> None:
    s = VerdictStore(str(tmp_path / "state.db"))
    s.put(rec("fixed", 100.0, judged_at=200.0))
    s.put(rec("pending", 150.0))
    s.put(rec("recurred", 300.0, judged_at=400.0))
    assert s.prune(250.0) == 1
    assert sorted(r.kind for r in s.every()) == ["pending", "recurred"]
