"""healthd.core.control and its stages in the decision table: approval modes, pending
decisions, maintenance; values in, values out."""

from __future__ import annotations

import dataclasses

import pytest

from healthd.core import config, control, decide, notices
from healthd.core.control import ApprovalMode, Maintenance, Pending
from healthd.core.model import Action, Classification, ContainerState, Failure, Health, Outcome
from healthd.core.notifyconfig import EventKind
from healthd.core.settings import Config

NOW = 1_700_010_000.0
CRASHED = Classification(Failure.CRASHED, Health.CRITICAL, ("exited with code 1",))
SHOP_API = (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "api"))


def approving(**table: str) -> Config:
    return config.build({"approval": table}, environ={})


def crashed(name: str = "api", labels: tuple[tuple[str, str], ...] = ()) -> ContainerState:
    return ContainerState(id=f"id-{name}", name=name, status="exited", exit_code=1,
                          finished_at=NOW - 5, started_at=NOW - 3600, labels=labels)


def decide_(c: ContainerState, cfg: Config | None = None, **kw: object):  # type: ignore[no-untyped-def]
    ctx = decide.Context(now=NOW, config=cfg or Config(), new_pending_id="p1", **kw)  # type: ignore[arg-type]
    d = decide.decide(c, CRASHED, ctx)
    assert d is not None
    return d


# ---- config -------------------------------------------------------------------------------

def test_approval_table_parses_modes_per_action_kind_and_expiry() -> None:
    a = approving(default="auto", restart="approve", scale_up="off", expire_s=600).approval
    assert a.mode_for(Action.RESTART) is ApprovalMode.APPROVE
    assert a.mode_for(Action.SCALE_UP) is ApprovalMode.OFF
    assert a.mode_for(Action.RECREATE) is ApprovalMode.AUTO
    assert a.expire_s == 600.0


def test_approval_defaults_to_auto_for_everything() -> None:
    a = Config().approval
    assert all(a.mode_for(k) is ApprovalMode.AUTO for k in control.GATED)


@pytest.mark.parametrize(("table", "key", "says"), [
    ({"restart": "maybe"}, "approval.restart", "not one of auto, approve, off"),
    ({"rollback": "approve"}, "approval.rollback", "unknown key"),
    ({"expire_s": 0}, "approval.expire_s", "expected seconds > 0"),
    ({"expire_s": "1h"}, "approval.expire_s", "expected seconds > 0"),
    ({"default": True}, "approval.default", "not one of"),
], ids=["bad-mode", "ungated-kind", "zero-expiry", "text-expiry", "bool-default"])
def test_a_bad_approval_key_is_named_with_what_is_allowed(
        table: dict[str, object], key: str, says: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.build({"approval": table}, environ={})
    assert any(p.startswith(key) and says in p for p in err.value.problems), err.value.problems


def test_approval_must_be_a_table() -> None:
    with pytest.raises(config.ConfigError, match="approval: expected a table"):
        config.build({"approval": "approve"}, environ={})


def test_the_label_wins_over_the_config_and_a_bad_label_is_ignored() -> None:
    a = approving(restart="approve").approval
    assert control.approval_mode(a, Action.RESTART, (("healthd.approval", "auto"),)) == (
        ApprovalMode.AUTO, "label healthd.approval=auto")
    assert control.approval_mode(a, Action.RESTART, (("healthd.approval", "sure"),)) == (
        ApprovalMode.APPROVE, "approval.restart = approve")
    assert control.approval_mode(a, Action.ALERT, (("healthd.approval", "off"),))[0] is (
        ApprovalMode.AUTO)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("1d", 86400.0),
    ("1.5m", 90.0)])
def test_durations(text: str, seconds: float) -> None:
    assert control.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "5y", "soon"])
def test_bad_durations_say_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="such as 90s, 30m"):
        control.parse_duration(text)


# ---- the decision table's rows -------------------------------------------------------------

def test_approve_mode_holds_the_restart_as_pending_with_its_id() -> None:
    d = decide_(crashed(), approving(restart="approve"))
    assert d.action is Action.RESTART and not d.acts
    assert d.suppressed_by is not None
    assert d.suppressed_by.startswith("awaiting-approval: pending p1, expires in 3600 s")
    assert "healthd approve p1" in d.explain()


def test_an_existing_pending_decision_keeps_its_id_and_counts_down() -> None:
    p = Pending("abcd1234", Action.RESTART, "api", "id-api", "crashed.critical", "x",
                NOW - 100, NOW + 500)
    d = decide_(crashed(), approving(restart="approve"), pending={p.key: p})
    assert d.suppressed_by == ("awaiting-approval: pending abcd1234, expires in 500 s "
                               "(healthd approve abcd1234 / healthd reject abcd1234)")


def test_an_approved_decision_goes_through_and_says_who() -> None:
    p = Pending("abcd1234", Action.RESTART, "api", "id-api", "crashed.critical", "x",
                NOW - 100, NOW + 500)
    d = decide_(crashed(), approving(restart="approve"), pending={p.key: p},
                approved={p.key: "alice"})
    assert d.acts and "approved by alice" in d.explain()


def test_approval_re_checks_the_guards_a_cooldown_still_holds() -> None:
    from healthd.core.model import ActionRecord

    p = Pending("abcd1234", Action.RESTART, "api", "id-api", "crashed.critical", "x",
                NOW - 100, NOW + 500)
    recent = (ActionRecord("api", Action.RESTART, NOW - 5, Outcome.SUCCEEDED),)
    d = decide_(crashed(), approving(restart="approve"), pending={p.key: p},
                approved={p.key: "alice"}, history=recent)
    assert d.suppressed_by is not None and d.suppressed_by.startswith("cooldown:")


def test_a_rejected_decision_is_held_as_rejected_until_it_may_ask_again() -> None:
    p = Pending("abcd1234", Action.RESTART, "api", "id-api", "crashed.critical", "x",
                NOW - 100, NOW + 500, rejected_by="bob")
    d = decide_(crashed(), approving(restart="approve"), pending={p.key: p},
                approved={p.key: "alice"})
    assert d.suppressed_by is not None and d.suppressed_by.startswith("rejected: abcd1234 by bob")


def test_a_bad_approval_label_is_said_in_the_decision() -> None:
    d = decide_(crashed(labels=(("healthd.approval", "sure"),)), approving(restart="approve"))
    assert "label healthd.approval='sure' ignored: expected auto, approve, off" in d.explain()
    assert d.suppressed_by is not None and d.suppressed_by.startswith("awaiting-approval")


def test_off_mode_never_acts_and_says_where_it_comes_from() -> None:
    d = decide_(crashed(labels=(("healthd.approval", "off"),)))
    assert d.suppressed_by == "approval-off: restart is off (label healthd.approval=off)"
    d = decide_(crashed(), approving(default="off"))
    assert d.suppressed_by == "approval-off: restart is off (approval.default = off)"


def test_auto_mode_acts_as_before() -> None:
    assert decide_(crashed(), approving(recreate="approve")).acts
    assert decide_(crashed(labels=(("healthd.approval", "auto"),)),
                   approving(restart="approve")).acts


def test_dry_run_holds_before_approval_asks_anyone() -> None:
    d = decide_(crashed(), approving(restart="approve"), dry_run=True)
    assert d.suppressed_by is not None and d.suppressed_by.startswith("dry-run:")


@pytest.mark.parametrize("target", ["host", "shop", "shop/api", "api"],
                         ids=["host", "stack", "service", "service-alone"])
def test_a_pause_holds_its_target_with_the_maintenance_reason(target: str) -> None:
    m = Maintenance(target, "deploy", "alice", NOW - 60, NOW + 600)
    d = decide_(crashed("shop-api-1", SHOP_API), maintenance=(m,))
    assert d.action is Action.RESTART
    assert d.suppressed_by == ("maintenance: deploy (by alice, until "
                               f"{control.clock_text(NOW + 600)})")


def test_a_pause_of_another_target_or_one_that_ran_out_holds_nothing() -> None:
    other = Maintenance("billing", "deploy", "alice", NOW - 60, None)
    over = Maintenance("shop", "deploy", "alice", NOW - 600, NOW - 1)
    assert decide_(crashed("shop-api-1", SHOP_API), maintenance=(other, over)).acts


def test_a_pause_until_resumed_says_so() -> None:
    m = Maintenance("host", "", "root", NOW - 60, None)
    d = decide_(crashed(), maintenance=(m,))
    assert d.suppressed_by == "maintenance: no reason given (by root, until resumed)"


def test_a_pause_holds_before_approval_is_asked() -> None:
    m = Maintenance("api", "x", "alice", NOW - 60, None)
    d = decide_(crashed(), approving(restart="approve"), maintenance=(m,))
    assert d.suppressed_by is not None and d.suppressed_by.startswith("maintenance:")


def test_a_scale_decision_is_held_by_a_pause_of_its_service() -> None:
    m = Maintenance("shop/web", "x", "alice", NOW - 60, None)
    c = crashed("shop-web-1", (("com.docker.compose.project", "shop"),
                               ("com.docker.compose.service", "web")))
    cls = Classification(Failure.SUSTAINED_PRESSURE, Health.CRITICAL, ("cpu 95 %",))
    ctx = decide.Context(now=NOW, config=Config(), maintenance=(m,))
    d = decide.decide_service(c, cls, "shop/web", 2, ctx)
    assert d.action is Action.SCALE_UP
    assert d.suppressed_by is not None and d.suppressed_by.startswith("maintenance:")


@pytest.mark.parametrize(("target", "held"), [
    ("host", True), ("swarm/web", True), ("web", True), ("shop", False)])
def test_a_swarm_leaders_decision_is_held_by_a_pause_too(target: str, held: bool) -> None:
    from healthd.core.model import Decision

    d = Decision(Action.SCALE_UP, "svc-id", "swarm/web", "sustained_pressure.critical",
                 service="swarm/web")
    out = decide.paused(d, (Maintenance(target, "x", "alice", NOW - 1, None),), NOW)
    assert (out.suppressed_by or "").startswith("maintenance:") is held


# ---- expiry -----------------------------------------------------------------------------

def test_pending_decisions_expire_at_their_time() -> None:
    a = Pending("a", Action.RESTART, "x", "", "r", "", NOW - 10, NOW)
    b = Pending("b", Action.RESTART, "y", "", "r", "", NOW - 10, NOW + 1)
    assert control.split_expired([a, b], NOW) == ([b], [a])


def test_pauses_end_at_their_time_and_one_without_an_end_stays() -> None:
    a = Maintenance("x", "", "", NOW - 10, NOW)
    b = Maintenance("y", "", "", NOW - 10, None)
    assert control.in_force([a, b], NOW) == [b]
    assert control.in_force([a, b], NOW - 1) == [a, b]


def test_find_takes_an_id_or_a_unique_prefix() -> None:
    ps = [Pending("abcd1234", Action.RESTART, "x", "", "r", "", 0, 1),
          Pending("abce9999", Action.RESTART, "y", "", "r", "", 0, 1)]
    assert control.find(ps, "abcd1234") is ps[0]
    assert control.find(ps, "abcd") is ps[0]
    assert control.find(ps, "abc") is None  # too short, and not unique
    assert control.find(ps, "zzzz") is None


# ---- notices -------------------------------------------------------------------------------

def test_a_decision_awaiting_approval_is_notified_as_an_approval() -> None:
    d = decide_(crashed(), approving(restart="approve"))
    n = notices.notice_for(d, Outcome.SKIPPED, (), "n1", NOW)
    assert n is not None and n.kind is EventKind.APPROVAL
    assert "healthd approve p1" in n.summary


def test_a_maintenance_notice_opens_no_alert() -> None:
    n = notices.maintenance_notice("shop", True, "shop paused by alice", "n1", NOW)
    assert n.kind is EventKind.MAINTENANCE and n.rule == "maintenance.pause"
    assert notices.opened({}, n) == {}


def test_pending_and_maintenance_rows_have_the_status_shape() -> None:
    p = Pending("abcd1234", Action.RESTART, "api", "id-api", "crashed.critical", "line",
                1.0, 2.0)
    assert p.as_dict() == {"id": "abcd1234", "action": "restart", "target": "api",
                           "rule": "crashed.critical", "explain": "line", "created": 1.0,
                           "expires": 2.0}
    m = Maintenance("host", "why", "me", 1.0, None)
    assert m.as_dict() == {"target": "host", "reason": "why", "who": "me", "since": 1.0,
                           "until": None}
    assert dataclasses.replace(m, until=3.0).as_dict()["until"] == 3.0


def test_repo_config_toml_documents_every_approval_key() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "config.toml").read_text()
    section = text[text.index("[approval]"):text.index("[notifications]")]
    missing = [k for k in control.APPROVAL_KEYS
               if f"\n{k} = " not in section and f"\n# {k} = " not in section]
    assert missing == [], f"config.toml does not document approval keys: {', '.join(missing)}"
