"""core.notices: which decisions make notices, the filter, grouping along a timeline with
``now`` values, and the resolved notice when a container is healthy again."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from healthd.core import notices
from healthd.core.model import Action, Decision, Failure, Health, Outcome
from healthd.core.notices import Flush, Notice, Pacing, Queued
from healthd.core.notifyconfig import EventKind, NotifyTarget, TargetKind

COMPOSE = (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "api"))
TARGET = NotifyTarget("ops", TargetKind.WEBHOOK, "http://127.0.0.1:9/",
                      group_wait_s=30.0, group_interval_s=300.0, repeat_interval_s=3600.0)


def decision(action: Action = Action.RESTART, rule: str = "crashed.critical",
             name: str = "shop-api-1", severity: Health = Health.CRITICAL,
             held: str | None = None, **kw: Any) -> Decision:
    return Decision(action, f"id-{name}", name, rule, Failure.CRASHED, severity,
                    ("exited with code 3",), suppressed_by=held, at=100.0, **kw)


def notice(kind: EventKind = EventKind.ACTION, container: str = "shop-api-1",
           rule: str = "crashed.critical", severity: Health = Health.CRITICAL,
           at: float = 0.0, nid: str = "n", **kw: Any) -> Notice:
    return Notice(nid, kind, at, severity, container, f"id-{container}", rule=rule, **kw)


# --- which decisions are worth a notice ----------------------------------------------------

KINDS = [
    ("restart-succeeded", decision(), Outcome.SUCCEEDED, EventKind.ACTION),
    ("restart-failed", decision(), Outcome.FAILED, EventKind.ACTION_FAILED),
    ("restart-pending", decision(), Outcome.PENDING, None),
    ("scale-up", decision(Action.SCALE_UP, "sustained_pressure.critical"), Outcome.SUCCEEDED,
     EventKind.ACTION),
    ("budget-exhausted", decision(Action.ALERT, "crashed.critical.budget_exhausted"),
     Outcome.SUCCEEDED, EventKind.BREAKER),
    ("forecast-alert", decision(Action.ALERT, "predicted_exhaustion.cpu.critical"),
     Outcome.SUCCEEDED, EventKind.PREDICTED_EXHAUSTION),
    ("forecast-restart", decision(rule="predicted_exhaustion.memory.degraded"),
     Outcome.SUCCEEDED, EventKind.ACTION),
    ("crash-loop-alert", decision(Action.ALERT, "crash_loop.critical"), Outcome.SUCCEEDED,
     EventKind.ALERT),
    ("held-by-dependency", decision(rule="dependency_failure.critical",
                                    held="dependency: depends on shop/db"),
     Outcome.SKIPPED, EventKind.HELD_BY_DEPENDENCY),
    ("held-by-cooldown", decision(held="cooldown: restarted 3 s ago"), Outcome.SKIPPED, None),
    ("held-alert-repeat", decision(Action.ALERT, "crash_loop.critical",
                                   held="alert-repeat: same alert raised 5 s ago"),
     Outcome.SKIPPED, None),
    ("dry-run", decision(held="dry-run: would restart"), Outcome.SKIPPED, None),
    ("none", decision(Action.NONE, "resource_pressure.degraded"), Outcome.SKIPPED, None),
]


@pytest.mark.parametrize(("d", "outcome", "want"), [k[1:] for k in KINDS],
                         ids=[k[0] for k in KINDS])
def test_kind_of(d: Decision, outcome: Outcome, want: EventKind | None) -> None:
    assert notices.kind_of(d, outcome) is want


def test_notice_for_takes_service_and_stack_from_compose_labels() -> None:
    n = notices.notice_for(decision(), Outcome.FAILED, COMPOSE, "n1", 200.0, "409 conflict")
    assert n is not None
    assert (n.id, n.kind, n.at, n.severity) == ("n1", EventKind.ACTION_FAILED, 200.0,
                                                Health.CRITICAL)
    assert (n.container, n.container_id, n.service, n.stack) == (
        "shop-api-1", "id-shop-api-1", "shop/api", "shop")
    assert (n.rule, n.action, n.outcome, n.error) == (
        "crashed.critical", "restart", "failed", "409 conflict")
    assert n.summary == "restart shop-api-1: rule crashed.critical; exited with code 3"


def test_notice_for_a_service_action_and_for_the_host() -> None:
    n = notices.notice_for(decision(Action.SCALE_UP, service="shop/web"), Outcome.SUCCEEDED,
                           (), "n", 1.0)
    assert n is not None and (n.service, n.stack) == ("shop/web", "shop")
    host = notices.notice_for(decision(Action.ALERT, "predicted_exhaustion.host_disk.degraded",
                                       name="host", severity=Health.DEGRADED),
                              Outcome.SUCCEEDED, (), "n", 1.0)
    assert host is not None and (host.container, host.service, host.stack) == ("host", "", "")


def test_notice_round_trips_through_its_dict() -> None:
    alert = notices.Alert(EventKind.BREAKER, "r", Health.CRITICAL, 5.0, "shop/api", "shop")
    n = notice(EventKind.RESOLVED, resolves=(alert,), error="x", service="shop/api")
    assert Notice.from_dict(n.as_dict()) == n


# --- open alerts and the resolved notice ---------------------------------------------------


def test_a_healthy_container_resolves_what_was_notified_about_it() -> None:
    open_alerts = notices.opened({}, notice(EventKind.ACTION, at=10.0, service="shop/api",
                                            stack="shop"))
    open_alerts = notices.opened(open_alerts, notice(EventKind.BREAKER, rule="crashed.critical"
                                                     ".budget_exhausted", at=20.0))
    n, rest = notices.resolution(open_alerts, "shop-api-1", "cid", "r1", 30.0)
    assert rest == {}
    assert n is not None and n.kind is EventKind.RESOLVED and n.at == 30.0
    assert [(a.kind, a.at) for a in n.resolves] == [(EventKind.ACTION, 10.0),
                                                   (EventKind.BREAKER, 20.0)]
    assert (n.service, n.stack, n.severity) == ("shop/api", "shop", Health.CRITICAL)
    assert n.summary == ("shop-api-1 is healthy again; ends action (crashed.critical), "
                         "breaker (crashed.critical.budget_exhausted)")


def test_nothing_to_resolve_for_a_container_never_notified_about() -> None:
    open_alerts = notices.opened({}, notice(container="other"))
    n, rest = notices.resolution(open_alerts, "shop-api-1", "cid", "r1", 30.0)
    assert n is None and rest == open_alerts


def test_an_alert_opens_once_per_kind_and_rule_first_time_wins() -> None:
    open_alerts = notices.opened({}, notice(at=1.0))
    open_alerts = notices.opened(open_alerts, notice(at=2.0))
    assert [a.at for a in open_alerts["shop-api-1"]] == [1.0]


@pytest.mark.parametrize("kind", [EventKind.RESOLVED, EventKind.TEST])
def test_resolved_and_test_notices_open_nothing(kind: EventKind) -> None:
    assert notices.opened({}, notice(kind)) == {}


# --- a target's filter --------------------------------------------------------------------

FILTERS = [
    ("default-takes-all", {}, notice(), True),
    ("kind-not-in-events", {"events": (EventKind.BREAKER,)}, notice(EventKind.ACTION), False),
    ("kind-in-events", {"events": (EventKind.BREAKER,)}, notice(EventKind.BREAKER), True),
    ("below-min-severity", {"min_severity": Health.CRITICAL},
     notice(severity=Health.DEGRADED), False),
    ("at-min-severity", {"min_severity": Health.CRITICAL}, notice(), True),
    ("container-glob", {"containers": ("shop-*",)}, notice(), True),
    ("container-glob-misses", {"containers": ("db-*",)}, notice(), False),
    ("service-full", {"services": ("shop/api",)}, notice(service="shop/api"), True),
    ("service-short", {"services": ("api",)}, notice(service="shop/api"), True),
    ("service-glob-misses", {"services": ("web*",)}, notice(service="shop/api"), False),
    ("service-filter-no-service", {"services": ("*",)}, notice(), False),
    ("stack", {"stacks": ("sh*",)}, notice(stack="shop"), True),
    ("stack-misses", {"stacks": ("blog",)}, notice(stack="shop"), False),
    ("rule", {"rules": ("predicted_exhaustion.*",)},
     notice(rule="predicted_exhaustion.memory.degraded"), True),
    ("rule-misses", {"rules": ("predicted_exhaustion.*",)}, notice(), False),
    ("test-passes-everything", {"events": (EventKind.BREAKER,), "containers": ("none",),
                                "min_severity": Health.CRITICAL},
     notice(EventKind.TEST, severity=Health.DEGRADED, container=""), True),
]


@pytest.mark.parametrize(("changes", "n", "want"), [f[1:] for f in FILTERS],
                         ids=[f[0] for f in FILTERS])
def test_filter(changes: dict[str, Any], n: Notice, want: bool) -> None:
    t = dataclasses.replace(TARGET, **changes)
    assert (notices.for_target(n, t) is not None) is want


def _resolved(*alerts: notices.Alert) -> Notice:
    return notice(EventKind.RESOLVED, resolves=alerts)


ACTION_ALERT = notices.Alert(EventKind.ACTION, "crashed.critical", Health.DEGRADED, 1.0)
BREAKER_ALERT = notices.Alert(EventKind.BREAKER, "crashed.critical.budget_exhausted",
                              Health.CRITICAL, 2.0)


def test_resolved_keeps_only_the_alerts_the_target_took() -> None:
    t = dataclasses.replace(TARGET, events=(EventKind.BREAKER, EventKind.RESOLVED))
    got = notices.for_target(_resolved(ACTION_ALERT, BREAKER_ALERT), t)
    assert got is not None and got.resolves == (BREAKER_ALERT,)


def test_resolved_is_not_sent_where_nothing_it_ends_was_sent() -> None:
    t = dataclasses.replace(TARGET, min_severity=Health.CRITICAL)
    assert notices.for_target(_resolved(ACTION_ALERT), t) is None


def test_resolved_needs_resolved_in_events() -> None:
    t = dataclasses.replace(TARGET, events=(EventKind.BREAKER,))
    assert notices.for_target(_resolved(BREAKER_ALERT), t) is None


# --- grouping along a timeline ---------------------------------------------------------------


class Timeline:
    """A target's queue and pacing, driven with ``now`` values the way the worker does."""

    def __init__(self, target: NotifyTarget) -> None:
        self.t, self.pacing = target, Pacing()
        self.queue: list[Queued] = []
        self.seq = itertools.count(1)
        self.sent: list[tuple[float, list[str]]] = []  # (when, notice ids) per message
        self.suppressed: list[str] = []

    def add(self, now: float, n: Notice) -> None:
        self.queue.append(Queued(next(self.seq), n, now))

    def run(self, now: float) -> float | None:
        """Flush everything due at ``now``; returns when the next group is due."""
        while True:
            flush, due = notices.next_flush(self.queue, self.pacing, self.t, now)
            if flush is None:
                return due
            self.pacing = notices.after_flush(self.pacing, flush, self.t, now)
            done = {q.seq for q in (*flush.send, *flush.suppressed)}
            self.queue = [q for q in self.queue if q.seq not in done]
            self.suppressed += [q.notice.id for q in flush.suppressed]
            if flush.send:
                self.sent.append((now, [q.notice.id for q in flush.send]))


def test_a_crash_loop_of_twenty_containers_is_one_message() -> None:
    tl = Timeline(TARGET)
    for i in range(20):
        tl.add(float(i), notice(EventKind.BREAKER, container=f"c{i}", nid=f"b{i}"))
        assert tl.run(float(i)) == 30.0  # the group waits for company until t=30
    assert tl.sent == []
    assert tl.run(30.0) is None
    assert tl.sent == [(30.0, [f"b{i}" for i in range(20)])]


def test_then_at_most_once_per_group_interval() -> None:
    tl = Timeline(TARGET)
    tl.add(0.0, notice(nid="a", container="c1"))
    tl.run(30.0)
    tl.add(40.0, notice(nid="b", container="c2"))
    assert tl.run(40.0) == 330.0  # not before 30 + group_interval_s
    tl.add(200.0, notice(nid="c", container="c3"))
    assert tl.run(329.0) == 330.0
    tl.run(330.0)
    assert tl.sent == [(30.0, ["a"]), (330.0, ["b", "c"])]


def test_after_a_quiet_spell_a_group_waits_group_wait_again() -> None:
    tl = Timeline(TARGET)
    tl.add(0.0, notice(nid="a", container="c1"))
    tl.run(30.0)
    tl.add(1000.0, notice(nid="b", container="c2"))
    assert tl.run(1000.0) == 1030.0


def test_groups_are_separate_and_the_earliest_due_goes_first() -> None:
    tl = Timeline(TARGET)
    tl.add(0.0, notice(EventKind.BREAKER, nid="b1", container="c1"))
    tl.add(5.0, notice(EventKind.ACTION, nid="a1", container="c2"))
    tl.add(6.0, notice(EventKind.BREAKER, nid="b2", container="c3"))
    tl.run(40.0)
    assert tl.sent == [(40.0, ["b1", "b2"]), (40.0, ["a1"])]


def test_group_by_container_splits_per_container() -> None:
    tl = Timeline(dataclasses.replace(TARGET, group_by=("container",)))
    tl.add(0.0, notice(EventKind.BREAKER, nid="b1", container="c1"))
    tl.add(1.0, notice(EventKind.ACTION, nid="a1", container="c1"))
    tl.add(2.0, notice(EventKind.ACTION, nid="a2", container="c2"))
    tl.run(40.0)
    assert [ids for _, ids in tl.sent] == [["b1", "a1"], ["a2"]]


def test_a_repeat_is_held_back_until_repeat_interval_then_sent_again() -> None:
    tl = Timeline(TARGET)
    tl.add(0.0, notice(EventKind.BREAKER, nid="b1"))
    tl.run(30.0)
    tl.add(1000.0, notice(EventKind.BREAKER, nid="b2"))  # healthd re-raised the same alert
    tl.run(1030.0)
    tl.add(4000.0, notice(EventKind.BREAKER, nid="b3"))
    tl.run(4030.0)
    assert [ids for _, ids in tl.sent] == [["b1"], ["b3"]]
    assert tl.suppressed == ["b2"]


def test_a_repeat_within_one_message_is_held_back_too() -> None:
    tl = Timeline(TARGET)
    tl.add(0.0, notice(EventKind.ACTION_FAILED, nid="f1"))
    tl.add(1.0, notice(EventKind.ACTION_FAILED, nid="f2"))
    tl.run(30.0)
    assert (tl.sent, tl.suppressed) == ([(30.0, ["f1"])], ["f2"])


@pytest.mark.parametrize("kind", [EventKind.APPROVAL, EventKind.MAINTENANCE])
def test_what_an_operator_did_or_is_asked_is_never_a_repeat(kind: EventKind) -> None:
    tl = Timeline(TARGET)
    tl.add(0.0, notice(kind, nid="asked"))
    tl.run(30.0)
    tl.add(100.0, notice(kind, nid="answered"))  # same container and rule: a rejection
    tl.run(400.0)
    assert [ids for _, ids in tl.sent] == [["asked"], ["answered"]] and tl.suppressed == []


def test_after_a_resolution_the_same_failure_is_news_again() -> None:
    tl = Timeline(TARGET)
    tl.add(0.0, notice(EventKind.ACTION, nid="a1"))
    tl.run(30.0)
    tl.add(35.0, notice(EventKind.RESOLVED, nid="r1"))
    tl.run(65.0)
    tl.add(400.0, notice(EventKind.ACTION, nid="a2"))
    tl.run(430.0)
    assert [ids for _, ids in tl.sent] == [["a1"], ["r1"], ["a2"]] and tl.suppressed == []


def test_repeat_interval_zero_sends_every_notice() -> None:
    tl = Timeline(dataclasses.replace(TARGET, repeat_interval_s=0.0))
    tl.add(0.0, notice(nid="a1"))
    tl.add(1.0, notice(nid="a2"))
    tl.run(30.0)
    assert tl.sent == [(30.0, ["a1", "a2"])]


def test_zero_waits_send_each_notice_at_once_in_order() -> None:
    tl = Timeline(dataclasses.replace(TARGET, group_wait_s=0.0, group_interval_s=0.0,
                                      repeat_interval_s=0.0))
    for i, kind in enumerate([EventKind.ACTION, EventKind.BREAKER, EventKind.ACTION]):
        tl.add(float(i), notice(kind, nid=f"n{i}", container=f"c{i}"))
        tl.run(float(i))
    assert tl.sent == [(0.0, ["n0"]), (1.0, ["n1"]), (2.0, ["n2"])]
    assert tl.pacing == Pacing()  # nothing to remember when nothing is held back


def test_a_test_notice_skips_the_group_wait_and_groups_alone() -> None:
    tl = Timeline(TARGET)
    tl.add(0.0, notice(EventKind.ACTION, nid="a1"))
    tl.add(1.0, notice(EventKind.TEST, nid="t1", container=""))
    tl.run(1.0)
    assert tl.sent == [(1.0, ["t1"])]


def test_a_backlog_goes_out_in_pieces_without_waiting_between_them() -> None:
    tl = Timeline(TARGET)
    total = notices.MAX_PER_MESSAGE + 50
    for i in range(total):
        tl.add(0.0, notice(nid=f"n{i}", container=f"c{i}"))
    tl.run(30.0)
    assert [len(ids) for _, ids in tl.sent] == [notices.MAX_PER_MESSAGE, 50]
    assert [i for _, ids in tl.sent for i in ids] == [f"n{i}" for i in range(total)]


def test_pacing_forgets_what_no_longer_holds_anything_back() -> None:
    p = notices.after_flush(Pacing(), Flush("kind=action", (Queued(1, notice(), 0.0),)),
                            TARGET, 0.0)
    assert dict(p.flushed) == {"kind=action": 0.0} and len(p.sent) == 1
    later = notices.after_flush(p, Flush("kind=breaker", ()), TARGET, 10_000.0)
    assert later == Pacing()


def test_group_key_uses_the_target_labels() -> None:
    t = dataclasses.replace(TARGET, group_by=("kind", "stack", "severity"))
    assert notices.group_key(notice(stack="shop"), t) == "kind=action,stack=shop,severity=critical"


def test_state_file_notices_say_not_persisted_then_resolve_once_it_takes_writes() -> None:
    down = notices.state_file_notice(False, "database or disk is full", None, "/s.db", "n1",
                                     100.0)
    assert down is not None and down.kind is EventKind.STATE_FILE
    assert down.severity is Health.CRITICAL and down.container == notices.SELF
    assert "NOT persisted to /s.db: database or disk is full" in down.summary
    assert notices.state_file_notice(True, None, None, "/s.db", "n2", 101.0) is None
    open_ = notices.opened({}, down)
    end, rest = notices.resolution(open_, notices.SELF, "", "n3", 102.0)
    assert end is not None and end.kind is EventKind.RESOLVED and rest == {}
    aside = notices.state_file_notice(True, None, "/s.db.corrupt-X", "/s.db", "n4", 103.0)
    assert aside is not None and aside.rule == "state_file.set_aside"
    assert "/s.db.corrupt-X" in aside.summary


def test_a_later_rung_of_an_incident_notifies_as_escalated_with_its_incident() -> None:
    d = Decision(action=Action.RECREATE, target_id="c1", target_name="api",
                 rule="unhealthy.critical", failure=Failure.UNHEALTHY,
                 severity=Health.CRITICAL, at=1.0, incident="api@1", rung=2)
    n = notices.notice_for(d, Outcome.SUCCEEDED, (), "n1", 2.0)
    assert n is not None and n.kind is EventKind.ESCALATED and n.incident == "api@1"
    first = notices.notice_for(dataclasses.replace(d, rung=1, action=Action.RESTART),
                               Outcome.SUCCEEDED, (), "n2", 2.0)
    assert first is not None and first.kind is EventKind.ACTION  # it opened the incident
    hold = dataclasses.replace(d, action=Action.ALERT, rule="unhealthy.critical.ladder_hold",
                               rung=3)
    held = notices.notice_for(hold, Outcome.SUCCEEDED, (), "n3", 2.0)
    assert held is not None and held.kind is EventKind.ESCALATED
