"""healthd.store.memory: the bounded backlog of writes and the guards' window (values only)."""

from __future__ import annotations

from healthd.core.model import Outcome
from healthd.store.memory import Backlog, Completion, Row, Window


def row(name: str, outcome: Outcome, at: float = 0.0) -> Row:
    return Row(0, at, "cid", name, "restart", "crashed.critical", None, None, "[]", None,
               f"restart {name}", outcome.value, None, None)


def test_temporary_ids_are_negative_and_in_order() -> None:
    b = Backlog()
    assert [b.add(row(n, Outcome.SUCCEEDED)) for n in "abc"] == [-1, -2, -3]
    assert [r.container for r in b.rows.values()] == ["a", "b", "c"]


def test_a_full_backlog_keeps_pending_intents_longest() -> None:
    b = Backlog(limit=2)
    b.add(row("p1", Outcome.PENDING))
    b.add(row("done", Outcome.SUCCEEDED))
    b.add(row("p2", Outcome.PENDING))  # no held-back row: the oldest finished one goes
    assert [r.container for r in b.rows.values()] == ["p1", "p2"]
    b.add(row("p3", Outcome.PENDING))  # only intents left: the oldest goes
    assert [r.container for r in b.rows.values()] == ["p2", "p3"]
    assert b.dropped == 2


def test_rows_the_file_lost_go_back_to_the_front_under_their_ids() -> None:
    b = Backlog()
    b.add(row("new", Outcome.SUCCEEDED))
    old = [row("one", Outcome.SUCCEEDED), row("two", Outcome.PENDING)]
    old[0].id, old[1].id = 1, 2
    b.requeue_first(old)
    assert [(i, r.container) for i, r in b.rows.items()] == [(1, "one"), (2, "two"),
                                                            (-1, "new")]


def test_window_maps_a_handed_out_id_to_the_written_one_until_completed() -> None:
    w = Window()
    r = row("api", Outcome.PENDING, at=10.0)
    r.id = -1
    w.add(r)
    r.id = 7
    w.written(r, -1)
    assert w.resolve(-1) == 7 and w.resolve(-1) == -1  # one completion per intent
    assert [x.id for x in w.records(0.0)] == [7]


def test_window_prefers_its_own_rows_over_the_files_copy() -> None:
    w = Window()
    mine = row("api", Outcome.SUCCEEDED, at=10.0)
    mine.id = 3
    w.add(mine)
    stale = row("api", Outcome.PENDING, at=10.0)
    stale.id = 3
    other = row("db", Outcome.PENDING, at=20.0)
    other.id = 4
    w.merge([stale, other], 0.0, {4: Completion("failed", "boom", 21.0, False)})
    assert [(x.id, x.outcome) for x in w.records(0.0)] == [(3, Outcome.SUCCEEDED),
                                                         (4, Outcome.FAILED)]
    assert not w.needs_load(5.0) and w.needs_load(-1.0)
    assert w.records(15.0)[0].id == 4 and 3 not in w.rows


def test_window_keeps_no_held_back_decisions_added_or_loaded() -> None:
    w = Window()
    held = row("api", Outcome.SKIPPED, at=10.0)
    held.id = -1
    sent = row("api", Outcome.SUCCEEDED, at=11.0)
    sent.id = -2
    w.add(held)
    w.add(sent)
    from_file = row("db", Outcome.SKIPPED, at=12.0)
    from_file.id = 9
    w.merge([from_file], 0.0, {})
    assert [(x.container, x.outcome) for x in w.records(0.0)] == [("api", Outcome.SUCCEEDED)]
    assert list(w.rows) == [-2]


def test_window_view_follows_an_outcome_that_came_in_place() -> None:
    w = Window()
    r = row("api", Outcome.PENDING, at=10.0)
    r.id = 5
    w.add(r)
    assert [x.outcome for x in w.records(0.0)] == [Outcome.PENDING]
    r.complete(Completion(Outcome.SUCCEEDED.value, None, 11.0, True))
    w.changed()
    assert [x.outcome for x in w.records(0.0)] == [Outcome.SUCCEEDED]
    assert w.records(10.5) == []  # older rows are let go
