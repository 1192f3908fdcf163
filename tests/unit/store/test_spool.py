"""store.spool: notices kept until delivered, in order, across a reopen; memory when the
file cannot be used."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from healthd.core.model import Health
from healthd.core.notices import Alert, Notice
from healthd.core.notifyconfig import EventKind
from healthd.store import spool as spool_mod
from healthd.store.spool import DELIVERED, DROPPED, QUEUED, SENDING, Spool


def n(i: int) -> Notice:
    return Notice(f"n{i}", EventKind.ACTION, float(i), Health.CRITICAL, f"c{i}",
                  summary=f"restart c{i}: rule crashed.critical")


Opener = Callable[..., Spool]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Opener]:
    """Open spools (default file: tmp_path/s.db); all are closed after the test."""
    made: list[Spool] = []

    def open_(path: str | None = None, **kw: object) -> Spool:
        s = Spool(path or str(tmp_path / "s.db"), **kw)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield open_
    for s in made:
        s.close()


def test_path_for() -> None:
    assert spool_mod.path_for("/var/lib/healthd/state.db") == "/var/lib/healthd/state.spool.db"
    assert spool_mod.path_for("/x/state") == "/x/state.spool.db"


def test_rows_come_back_in_order_per_target(spool: Opener) -> None:
    s = spool()
    assert s.durable
    for i in range(3):
        s.add("a", n(i), float(i))
    s.add("b", n(9), 9.0)
    rows = s.undone("a")
    assert [r.notice for r in rows] == [n(0), n(1), n(2)]
    assert [r.state for r in rows] == [QUEUED] * 3
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert (s.depth("a"), s.depth("b"), s.depth("c")) == (3, 1, 0)


def test_a_message_formed_survives_a_reopen_with_its_id(
    spool: Opener, tmp_path: Path
) -> None:
    path = str(tmp_path / "s.db")
    s = spool(path)
    seqs = [s.add("a", n(i), float(i))[0] for i in range(3)]
    s.form(seqs[:2], "m1")
    s.attempt_failed(seqs[:2], "HTTP 500")
    s.close()
    again = spool(path)
    rows = again.undone("a")
    assert [(r.state, r.batch, r.attempts) for r in rows] == [
        (SENDING, "m1", 1), (SENDING, "m1", 1), (QUEUED, None, 0)]
    assert rows[0].error == "HTTP 500"
    again.finish(seqs[:2], DELIVERED, 10.0)
    assert [r.notice.id for r in again.undone("a")] == ["n2"]


def test_prune_deletes_done_rows_after_keep(spool: Opener) -> None:
    s = spool()
    seqs = [s.add("a", n(i), float(i))[0] for i in range(3)]
    s.finish(seqs[:1], DELIVERED, 100.0)
    s.finish(seqs[1:2], DROPPED, 500.0, "too old")
    assert s.prune(now=400.0, keep_s=200.0) == 1
    assert s.prune(now=1000.0, keep_s=200.0) == 1
    assert s.depth("a") == 1  # the queued one is never pruned


def test_channels_do_not_see_each_other(
    spool: Opener, tmp_path: Path
) -> None:
    path = str(tmp_path / "s.db")
    daemon, probe = spool(path), spool(path, channel="test-1")
    daemon.add("a", n(1), 1.0)
    probe.add("a", n(2), 2.0)
    assert [r.notice.id for r in daemon.undone("a")] == ["n1"]
    assert [r.notice.id for r in probe.undone("a")] == ["n2"]
    # A dead test run's rows are pruned by the daemon once old enough.
    assert daemon.prune(now=2.0 + 3600.0, keep_s=60.0) == 1
    assert probe.undone("a") == [] and daemon.depth("a") == 1


def test_max_queued_drops_the_oldest_queued_not_the_one_being_sent(spool: Opener) -> None:
    s = spool(max_queued=3)
    seqs = [s.add("a", n(i), float(i))[0] for i in range(3)]
    s.form(seqs[:1], "m1")
    assert s.add("a", n(3), 3.0)[1] == 1
    assert [r.notice.id for r in s.undone("a")] == ["n0", "n2", "n3"]
    assert s.add("b", n(4), 4.0)[1] == 0  # per target


def test_open_alerts_persist(
    spool: Opener, tmp_path: Path
) -> None:
    path = str(tmp_path / "s.db")
    s = spool(path)
    alert = Alert(EventKind.BREAKER, "crashed.critical.budget_exhausted", Health.CRITICAL, 5.0,
                  "shop/api", "shop")
    s.save_open("api", (alert,))
    s.save_open("db", (alert,))
    s.save_open("db", ())
    s.close()
    assert spool(path).load_open() == {"api": (alert,)}


def test_a_spool_that_cannot_be_opened_keeps_notices_in_memory(
    spool: Opener, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a directory")
    s = spool(str(tmp_path / "file" / "s.db"), max_queued=2)
    assert not s.durable
    seqs = [s.add("a", n(i), float(i))[0] for i in range(3)]  # the first one is dropped
    assert [r.notice.id for r in s.undone("a")] == ["n1", "n2"]
    s.form(seqs[1:2], "m1")
    s.attempt_failed(seqs[1:2], "down")
    s.finish(seqs[1:2], DELIVERED, 9.0)
    assert [(r.notice.id, r.state) for r in s.undone("a")] == [("n2", QUEUED)]
    s.save_open("api", (Alert(EventKind.ACTION, "r", Health.DEGRADED, 1.0),))
    assert list(s.load_open()) == ["api"]
    assert s.prune(now=1000.0, keep_s=10.0) >= 1
    s.close()


def test_a_spool_that_stops_taking_writes_carries_on_in_memory(spool: Opener) -> None:
    s = spool()
    seqs = [s.add("a", n(i), float(i))[0] for i in range(2)]
    s.form(seqs[:1], "m1")
    s.save_open("api", (Alert(EventKind.ACTION, "r", Health.DEGRADED, 1.0),))
    assert s._db is not None
    s._db.execute("PRAGMA query_only = ON")  # from now on every write fails, as on a full disk
    seq, _ = s.add("a", n(2), 2.0)
    assert not s.durable
    assert seq > max(seqs)
    rows = s.undone("a")
    assert [(r.notice.id, r.state, r.batch) for r in rows] == [
        ("n0", SENDING, "m1"), ("n1", QUEUED, None), ("n2", QUEUED, None)]
    assert list(s.load_open()) == ["api"]


def test_undone_with_a_limit_keeps_every_row_being_sent(spool: Opener) -> None:
    s = spool()
    seqs = [s.add("a", n(i), float(i))[0] for i in range(6)]
    s.form(seqs[4:5], "m1")  # a later group's message is on the wire
    assert [r.notice.id for r in s.undone("a", limit=2)] == ["n0", "n1", "n4"]
    assert len(s.undone("a")) == 6
