"""Bounded history: ``Ledger.prune`` by age and row count, never the guards' window."""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from pathlib import Path

import pytest

from healthd.core import decide, throttle
from healthd.core.model import (
    Action,
    Classification,
    ContainerState,
    Decision,
    Failure,
    Health,
    Outcome,
)
from healthd.core.settings import Config
from healthd.store.ledger import Ledger

DAY = 86400.0
T0 = 1_796_292_900.0
D = Decision(Action.RESTART, "cid", "api", "crashed.critical", evidence=("exited with code 3",),
             at=T0)


def at(t: float, name: str = "api", outcome: Outcome = Outcome.SUCCEEDED,
       led: Ledger | None = None) -> Decision:
    d = dataclasses.replace(D, at=t, target_name=name)
    if led is not None:
        led.record(d, outcome)
    return d


def ats(path: Path) -> list[float]:
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT at FROM actions ORDER BY id")]
    finally:
        db.close()


def test_prune_deletes_rows_past_retention_oldest_first_a_batch_at_a_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    led = Ledger(str(path), retention_s=30 * DAY)
    now = T0 + 100 * DAY
    for day in range(100):
        at(T0 + day * DAY, led=led)
    keep_after = now - 3600
    assert led.prune(now, keep_after, batch=40) == 40
    assert ats(path)[0] == T0 + 40 * DAY
    assert led.prune(now, keep_after, batch=40) == 30  # what is left past 30 days
    assert led.prune(now, keep_after, batch=40) == 0
    assert ats(path)[0] == T0 + 70 * DAY and len(ats(path)) == 30
    led.close()


def test_prune_never_deletes_the_guards_window_nor_a_pending_intent(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    led = Ledger(str(path), retention_s=0.0, retention_rows=0)
    at(T0 - 5000, outcome=Outcome.PENDING, led=led)  # in flight (or abandoned later)
    at(T0 - 4000, led=led)
    at(T0 - 100, led=led)
    at(T0, led=led)
    assert led.prune(T0, keep_after=T0 - 3600) == 1
    assert ats(path) == [T0 - 5000, T0 - 100, T0]
    led.close()


def test_prune_keeps_at_most_retention_rows_outside_the_window(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    led = Ledger(str(path), retention_rows=10)
    for i in range(30):
        at(T0 + i, led=led)
    # The 5 newest are in the guards' window: kept even beyond the row count.
    assert led.prune(T0 + 30, keep_after=T0 + 25) == 20
    assert ats(path) == [T0 + i for i in range(20, 30)]
    led.close()


def test_prune_waits_while_the_file_is_not_writable(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    led = Ledger(str(path), retention_s=0.0, busy_timeout_s=0.01)
    at(T0 - 5000, led=led)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    at(T0, led=led)  # fails: the ledger is down
    assert led.prune(T0, T0 - 3600) == 0
    other.execute("ROLLBACK")
    other.close()
    led.flush()
    assert led.prune(T0, T0 - 3600) == 1
    led.close()


def test_a_new_file_vacuums_incrementally_so_its_size_stays_bounded_under_churn(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    led = Ledger(str(path), retention_s=600.0)
    sizes = []
    now = T0
    for _ in range(60):  # 60 sweeps of 100 rows each, one every 60 s
        for i in range(100):
            led.record(dataclasses.replace(D, at=now + i * 0.6, evidence=("x" * 500,)),
                       Outcome.SKIPPED)
        now += 60
        while led.prune(now, now - 60, batch=200):
            pass
        sizes.append(os.path.getsize(path) + os.path.getsize(f"{path}-wal"))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    db.close()
    assert len(ats(path)) <= 1100
    assert max(sizes[30:]) <= 1.2 * max(sizes[10:20]), sizes
    led.close()


def test_an_old_file_without_incremental_vacuum_is_noted_and_still_pruned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "old.db"
    Ledger(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA auto_vacuum=NONE")
    db.execute("VACUUM")
    db.close()
    with caplog.at_level(logging.INFO, "healthd.ledger"):
        led = Ledger(str(path), retention_s=0.0)
    assert "without incremental vacuum" in caplog.text
    at(T0 - 5000, led=led)
    assert led.prune(T0, T0 - 3600) == 1
    led.close()


def test_a_cooldown_from_before_the_prune_is_still_honoured_under_churn(tmp_path: Path) -> None:
    """Churn of held-back rows, pruned to a tiny retention every sweep, must not take the
    restart that a long cooldown still counts."""
    c = Config()
    cfg = dataclasses.replace(c, guards=dataclasses.replace(
        c.guards, cooldown_s=900.0, budget_window_s=300.0, alert_repeat_s=300.0))
    window = throttle.history_window_s(cfg.guards)
    assert window == 900.0
    led = Ledger(str(tmp_path / "s.db"), retention_s=60.0, retention_rows=50)
    pruned = 0
    for t in range(-3000, 801):
        now = T0 + t
        if t == 0:
            at(now, "api", led=led)  # the restart whose cooldown runs to T0 + 900
        at(now, "noisy", Outcome.SKIPPED, led)
        if t % 5 == 0:  # a sweep
            pruned += led.prune(now, now - window)
    now = T0 + 800
    assert pruned > 2000
    assert len(led.history(limit=10_000)) <= 900 + 50
    crashed = ContainerState(id="cid", name="api", status="exited", exit_code=3,
                             finished_at=now - 1, started_at=T0 + 1)
    cls = Classification(Failure.CRASHED, Health.CRITICAL, ("exited with code 3",))
    ctx = decide.Context(now=now, config=cfg, history=led.recent(now - window))
    d = decide.decide(crashed, cls, ctx)
    assert d is not None and (d.suppressed_by or "").startswith("cooldown"), d.explain()
    led.close()
