"""act.notifier's intake, without threads or receivers: what reaches which target's spool,
what stays open until resolved, and that a notification problem never reaches the caller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthd.act.notifier import Notifier
from healthd.core.model import Action, ContainerState, Decision, Failure, Health, Outcome
from healthd.core.notices import Notice
from healthd.core.notifyconfig import EventKind, NotifyTarget, TargetKind
from healthd.store.spool import Spool

URL = "http://127.0.0.1:9/"
TARGETS = [NotifyTarget("all", TargetKind.WEBHOOK, URL),
           NotifyTarget("breakers", TargetKind.SLACK, URL,
                        events=(EventKind.BREAKER, EventKind.RESOLVED))]


def restart(name: str = "api", rule: str = "crashed.critical") -> Decision:
    return Decision(Action.RESTART, f"id-{name}", name, rule, Failure.CRASHED,
                    Health.CRITICAL, ("exited with code 3",))


def breaker(name: str = "api") -> Decision:
    return Decision(Action.ALERT, f"id-{name}", name, "crashed.critical.budget_exhausted",
                    Failure.CRASHED, Health.CRITICAL)


@pytest.fixture
def notifier(tmp_path: Path) -> Iterator[Notifier]:
    ids = iter(range(1000))
    n = Notifier(TARGETS, Spool(str(tmp_path / "s.spool.db")), instance="edge-7",
                 status_url="http://edge-7/status", clock=lambda: 100.0,
                 make_id=lambda: f"id{next(ids)}")
    yield n  # never started: rows stay in the spool
    n.spool.close()


def kinds(n: Notifier, target: str) -> list[EventKind]:
    return [r.notice.kind for r in n.spool.undone(target)]


def test_each_target_gets_what_its_filter_takes(notifier: Notifier) -> None:
    notifier.submit(restart(), Outcome.PENDING)  # not yet an outcome: nothing
    notifier.submit(restart(), Outcome.SUCCEEDED)
    notifier.submit(breaker(), Outcome.SUCCEEDED)
    assert kinds(notifier, "all") == [EventKind.ACTION, EventKind.BREAKER]
    assert kinds(notifier, "breakers") == [EventKind.BREAKER]
    assert notifier.metrics.registry.get_sample_value(
        "healthd_notification_spool_depth", {"target": "all"}) == 2


def test_healthy_again_resolves_once_and_only_what_was_open(notifier: Notifier) -> None:
    notifier.submit(restart(), Outcome.SUCCEEDED)
    notifier.submit(breaker(), Outcome.SUCCEEDED)
    notifier.healthy(ContainerState(id="id-db", name="db"))  # never notified about
    notifier.healthy(ContainerState(id="id-api", name="api"))
    notifier.healthy(ContainerState(id="id-api", name="api"))  # already resolved
    assert kinds(notifier, "all")[-1] is EventKind.RESOLVED
    assert len(kinds(notifier, "all")) == 3
    resolved: Notice = notifier.spool.undone("breakers")[-1].notice
    assert [a.kind for a in resolved.resolves] == [EventKind.BREAKER]  # not the action
    assert notifier.open_alerts() == {}


def test_open_alerts_outlive_a_restart(notifier: Notifier, tmp_path: Path) -> None:
    notifier.submit(breaker(), Outcome.SUCCEEDED)
    again = Notifier(TARGETS, Spool(str(tmp_path / "s.spool.db")), instance="edge-7",
                     status_url="")
    try:
        assert list(again.open_alerts()) == ["api"]
    finally:
        again.spool.close()


class BrokenSpool(Spool):
    def add(self, target: str, notice: Notice, queued_at: float) -> tuple[int, int]:
        raise RuntimeError("disk on fire")


def test_a_notification_problem_never_reaches_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    n = Notifier(TARGETS, BrokenSpool(None), instance="edge-7", status_url="")
    n.submit(breaker(), Outcome.SUCCEEDED)
    n.healthy(ContainerState(id="id-api", name="api"))
    assert "notification about api lost" in caplog.text
    assert "resolved notice about api lost" in caplog.text
