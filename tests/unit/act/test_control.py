"""act.control and store.control: pending decisions and pauses kept in the state file, their
expiry, and the POST routes' answers (called in process, on a real SQLite file)."""

from __future__ import annotations

import json
import queue
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthd.act.control import Control
from healthd.core import config, decide
from healthd.core.control import Pending
from healthd.core.model import Action, Classification, ContainerState, Failure, Health
from healthd.store.control import ControlStore
from healthd.store.ledger import Ledger

NOW = 1_700_010_000.0
CRASHED = Classification(Failure.CRASHED, Health.CRITICAL, ("exited with code 1",))
CFG = config.build({"approval": {"restart": "approve", "expire_s": 600}}, environ={})


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def made(tmp_path: Path) -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for x in reversed(opened):
        x.close()


def open_control(tmp_path: Path, made: list[Any], clock: Clock) -> Control:
    path = str(tmp_path / "state.db")
    ledger = Ledger(path, clock=clock)
    store = ControlStore(path)
    made += [ledger, store]
    ids = iter(f"id{i:06d}" for i in range(100))
    return Control(CFG, store, ledger, queue.Queue(), clock, make_id=lambda: next(ids))


def decide_crashed(c: Control, clock: Clock, name: str = "api") -> None:
    state = ContainerState(id=f"id-{name}", name=name, status="exited", exit_code=1,
                           finished_at=clock.t - 5)
    d = decide.decide(state, CRASHED, decide.Context(now=clock.t, config=CFG, **c.context()))
    assert d is not None
    c.on_decision(d)


def answer(resp: tuple[int, str, bytes]) -> tuple[int, dict[str, Any]]:
    code, ctype, body = resp
    assert ctype == "application/json"
    return code, json.loads(body)


def test_a_pending_decision_and_a_pause_are_there_after_a_reopen(
        tmp_path: Path, made: list[Any]) -> None:
    clock = Clock()
    c = open_control(tmp_path, made, clock)
    decide_crashed(c, clock)
    assert answer(c.pause(b'{"target": "shop", "reason": "deploy", "who": "alice"}'))[0] == 200
    before = c.snapshot()
    assert [p["id"] for p in before["pending"]] == ["id000000"]
    again = open_control(tmp_path, made, clock)
    assert again.snapshot() == before
    decide_crashed(again, clock)  # the same restart: no second pending decision
    assert [p["id"] for p in again.snapshot()["pending"]] == ["id000000"]


def test_pending_decisions_and_pauses_expire_and_say_so_in_the_history(
        tmp_path: Path, made: list[Any]) -> None:
    clock = Clock()
    c = open_control(tmp_path, made, clock)
    decide_crashed(c, clock)
    c.pause(b'{"target": "host", "for_s": 60, "who": "alice"}')
    clock.t += 61
    c.tick()
    assert c.snapshot()["maintenance"] == []
    assert [p["id"] for p in c.snapshot()["pending"]] == ["id000000"]
    clock.t += 540
    c.tick()
    assert c.snapshot() == {"pending": [], "maintenance": []}
    c.ledger.flush()
    said = [r.explanation for r in c.ledger.history(10)]
    assert any("expired: id000000 nobody approved it within 600 s" in s for s in said), said
    assert any("pause of host ran out" in s for s in said), said
    reopened = open_control(tmp_path, made, clock)
    assert reopened.snapshot() == {"pending": [], "maintenance": []}


def test_a_rejection_holds_the_decision_and_is_recorded(
        tmp_path: Path, made: list[Any]) -> None:
    clock = Clock()
    c = open_control(tmp_path, made, clock)
    decide_crashed(c, clock)
    code, body = answer(c.reject("id000000", b'{"who": "bob"}'))
    assert (code, body) == (200, {"ok": True, "id": "id000000", "outcome": "rejected"})
    assert c.snapshot()["pending"] == []
    state = ContainerState(id="id-api", name="api", status="exited", exit_code=1)
    d = decide.decide(state, CRASHED, decide.Context(now=clock.t, config=CFG, **c.context()))
    assert d is not None and d.suppressed_by is not None
    assert d.suppressed_by.startswith("rejected: id000000 by bob")
    assert answer(c.reject("id000000", b""))[0] == 404
    assert answer(c.approve("id000000", b""))[0] == 404
    reopened = open_control(tmp_path, made, clock)
    assert reopened.context()["pending"][("api", Action.RESTART)].rejected_by == "bob"


@pytest.mark.parametrize(("body", "field"), [
    (b"[1]", "body"), (b"not json", "body"), (b'{"target": 3}', "target"),
    (b'{"for_s": 0}', "for_s"), (b'{"for_s": true}', "for_s"), (b'{"reason": ["x"]}', "reason"),
    (b'{"target": ""}', "target"), (b'{"until": 5}', "until"),
], ids=["array", "not-json", "target-number", "zero", "bool", "reason-list", "empty-target",
        "unknown"])
def test_a_bad_pause_body_gets_400_naming_the_field(
        tmp_path: Path, made: list[Any], body: bytes, field: str) -> None:
    c = open_control(tmp_path, made, Clock())
    code, got = answer(c.pause(body))
    assert (code, got["ok"], got["field"]) == (400, False, field)
    assert got["error"].startswith(field)
    assert c.snapshot()["maintenance"] == []


def test_resume_of_what_is_not_paused_is_a_404(tmp_path: Path, made: list[Any]) -> None:
    c = open_control(tmp_path, made, Clock())
    assert answer(c.resume(b'{"target": "shop"}'))[0] == 404
    assert answer(c.pause(b"{}"))[1]["maintenance"]["target"] == "host"
    assert answer(c.resume(b""))[1]["target"] == "host"


def test_the_state_file_holds_the_tables_beside_the_ledgers(
        tmp_path: Path, made: list[Any]) -> None:
    open_control(tmp_path, made, Clock()).pause(b'{"target": "x"}')
    db = sqlite3.connect(tmp_path / "state.db")
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"actions", "pending", "maintenance"} <= tables
    finally:
        db.close()


def test_without_a_file_it_keeps_everything_in_memory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a file, not a directory")
    store = ControlStore(str(tmp_path / "f" / "state.db"))
    store.add_pending(Pending("a", Action.RESTART, "x", "", "r", "", 0.0, 1.0))
    assert store.pending() == [] and store.pauses() == []
    store.close()


def test_an_unreadable_row_is_skipped_not_fatal(tmp_path: Path, made: list[Any]) -> None:
    path = tmp_path / "state.db"
    store = ControlStore(str(path))
    made.append(store)
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO pending VALUES ('x', 'explode', 't', '', 'r', 'e', 1, 2, '')")
    db.close()
    assert store.pending() == []
