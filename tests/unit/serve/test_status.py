"""healthd.status: /status snapshots and ledger rows in, the text of ``healthd status`` out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from healthd.core.model import Action, Decision, Failure, Health
from healthd.serve import status

NOW = 1_700_000_000.0

HELD = Decision(
    action=Action.RESTART, target_id="abc123", target_name="api", rule="unhealthy.critical",
    failure=Failure.UNHEALTHY, severity=Health.CRITICAL,
    evidence=("healthcheck failing 3 times in a row",),
    suppressed_by="grace: started 5 s ago, 25 s left",
)


def snap(**kw: Any) -> dict[str, Any]:
    rows = [
        {
            "id": "abc123def456", "name": "api", "status": "running", "health": "critical",
            "reasons": ["unhealthy: healthcheck failing 3 times in a row"],
            "decision": HELD.explain(),
            "last_action": "restart api: rule unhealthy.critical",
            "last_action_outcome": "succeeded", "last_action_at": NOW - 120,
            "forecasts": [{"resource": "memory", "eta_s": 412.0, "alarm": True},
                          {"resource": "pids", "eta_s": None, "alarm": False}],
        },
        {
            "id": "fff000111222", "name": "db", "status": "running", "health": "healthy",
            "reasons": [], "decision": None, "last_action": None, "last_action_outcome": None,
            "last_action_at": None,
            "forecasts": [{"resource": "host_disk", "eta_s": 7200.0, "alarm": False}],
        },
    ]
    base: dict[str, Any] = {"now": NOW, "dry_run": False, "engine_connected": True,
                            "stats_path": "cgroup", "containers": rows, "host": []}
    base.update(kw)
    return base


def lines_of(text: str) -> list[str]:
    return text.splitlines()


def row_for(text: str, name: str) -> str:
    return next(line for line in lines_of(text) if line.startswith(name + " "))


# --- render_status ------------------------------------------------------------------------


def test_status_header_line() -> None:
    first = lines_of(status.render_status(snap()))[0]
    assert first == "healthd: engine connected, stats via cgroup, 2 containers"


def test_status_header_flags_dry_run_and_disconnected_engine() -> None:
    first = lines_of(status.render_status(snap(dry_run=True, engine_connected=False)))[0]
    assert first.startswith("healthd (dry-run): engine DISCONNECTED")


def test_status_table_has_a_header_and_one_row_per_container() -> None:
    text = status.render_status(snap())
    lines = lines_of(text)
    assert lines[1].split() == ["CONTAINER", "SERVICE", "HEALTH", "REASON", "SIGNALS",
                                "FORECAST", "LAST", "ACTION", "WHEN"]
    assert [line.split()[0] for line in lines[2:]] == ["api", "db"]


def test_status_row_shows_reason_hold_forecast_and_last_action() -> None:
    api = row_for(status.render_status(snap()), "api")
    assert "critical" in api
    assert ("unhealthy: healthcheck failing 3 times in a row "
            "(held: grace: started 5 s ago, 25 s left)") in api
    assert "memory full in ~7 min!" in api  # '!' marks an alarmed forecast
    assert "pids" not in api  # no ETA, no forecast text
    assert "restart api: rule unhealthy.critical (succeeded)" in api
    assert api.endswith("2 min ago")


def test_status_row_of_a_quiet_container_uses_dashes() -> None:
    db = row_for(status.render_status(snap()), "db")
    assert db.split()[:4] == ["db", "-", "healthy", "-"]
    assert "host disk full in ~2.0 h" in db and "~2.0 h!" not in db
    assert db.endswith("-")


def test_status_columns_line_up() -> None:
    header, *rows = lines_of(status.render_status(snap()))[1:]
    col = header.index("HEALTH")
    assert [row[col:].split()[0] for row in rows] == ["critical", "healthy"]
    col = header.index("LAST ACTION")
    assert rows[0][col:].startswith("restart api")
    assert rows[1][col:].startswith("-")


def test_status_lists_host_forecasts_with_an_eta() -> None:
    host = [{"resource": "host_memory", "eta_s": 3000.0}, {"resource": "host_disk", "eta_s": None}]
    lines = lines_of(status.render_status(snap(host=host)))
    assert "host host memory full in ~50 min" in lines
    assert "host host disk steady" in lines  # no significant trend: no ETA, said so


@pytest.mark.parametrize(
    ("row", "text"),
    [
        ({"resource": "host_memory", "eta_s": None, "state": "learning", "samples": 12,
          "samples_needed": 121}, "host memory learning (12 of 121 samples)"),
        ({"resource": "host_memory", "eta_s": None, "state": "steady"}, "host memory steady"),
        ({"resource": "memory", "eta_s": 2520.0, "lower_s": 1800.0, "upper_s": 4000.0,
          "state": "trending", "alarm": True}, "memory full in ~42 min (~30 min to ~67 min)!"),
        ({"resource": "memory", "eta_s": 0.0, "lower_s": 0.0, "upper_s": 0.0, "alarm": True},
         "memory full!"),
    ],
    ids=["learning", "steady", "eta-with-interval", "at-the-limit"],
)
def test_forecast_text_says_what_it_knows(row, text) -> None:
    from healthd.core.classify import forecast_text

    assert forecast_text(row) == text


def test_status_with_no_containers() -> None:
    text = status.render_status(snap(containers=[]))
    assert lines_of(text)[0].endswith("0 containers")
    assert lines_of(text)[1].startswith("CONTAINER")


# --- explain ------------------------------------------------------------------------------


def test_explain_by_name_returns_the_decision_line() -> None:
    line = status.explain(snap(), "api")
    assert line == HELD.explain()
    assert line is not None and "[held: grace:" in line


def test_explain_by_id_prefix() -> None:
    assert status.explain(snap(), "abc1") == HELD.explain()


def test_explain_falls_back_to_last_action_then_nothing() -> None:
    s = snap()
    s["containers"][0]["decision"] = None
    assert status.explain(s, "api") == "restart api: rule unhealthy.critical"
    assert status.explain(s, "db") == "db: nothing to do"


def test_explain_unknown_container_is_none() -> None:
    assert status.explain(snap(), "nope") is None


# --- render_history -----------------------------------------------------------------------


def test_history_rows_and_error() -> None:
    rows = [
        {"id": 7, "at": NOW - 30, "container": "api", "action": "restart",
         "outcome": "failed", "explanation": "restart api: rule unhealthy.critical",
         "error": "engine timed out"},
        {"id": 6, "at": NOW - 7200, "container": "db", "action": "alert",
         "outcome": "succeeded", "explanation": "alert db: rule crash_loop.critical",
         "error": None},
    ]
    lines = lines_of(status.render_history(rows, NOW))
    assert lines[0].split() == ["ID", "WHEN", "CONTAINER", "ACTION", "OUTCOME", "VERDICT",
                                "EXPLANATION"]
    assert lines[1].split()[:6] == ["7", "30", "s", "ago", "api", "restart"]
    assert lines[1].endswith("restart api: rule unhealthy.critical - error: engine timed out")
    assert lines[2].startswith("6   2.0 h ago")
    assert lines[2].endswith("alert db: rule crash_loop.critical")


def test_history_shows_each_actions_verdict_and_its_evidence() -> None:
    rows = [{"id": 9, "at": NOW - 700, "container": "api", "action": "restart",
             "outcome": "succeeded", "explanation": "restart api: rule crashed.critical",
             "error": None,
             "verdict": {"kind": "recurred", "evidence": "crashed again 42 s after the restart"
                         " at 12:03:10", "at": NOW - 650, "after_s": 42.0, "window_s": 600.0}},
            {"id": 8, "at": NOW - 800, "container": "db", "action": "alert",
             "outcome": "succeeded", "explanation": "alert db", "error": None,
             "verdict": None}]
    lines = lines_of(status.render_history(rows, NOW))
    assert lines[1].split()[6:8] == ["succeeded", "recurred"]
    assert lines[1].endswith("- verdict: crashed again 42 s after the restart at 12:03:10")
    assert lines[2].endswith("alert db")


def test_history_empty() -> None:
    assert status.render_history([], NOW) == "no recorded decisions"


def test_history_says_how_far_back_the_ledger_reaches() -> None:
    rows = [{"id": 1, "at": NOW - 30, "container": "api", "action": "restart",
             "outcome": "succeeded", "explanation": "restart api", "error": None}]
    since = datetime.fromtimestamp(NOW - 30 * 86400).strftime("%Y-%m-%d %H:%M")
    first = lines_of(status.render_history(rows, NOW, NOW - 30 * 86400, 30.0))[0]
    assert first == f"history since {since} (30 days kept)"


# --- the ledger in status -----------------------------------------------------------------

LEDGER_UP = {"up": True, "since": NOW - 600, "error": None, "pending": 0, "dropped": 0,
             "path": "/var/lib/healthd/state.db", "set_aside": None}


def test_status_says_nothing_of_a_ledger_that_persists() -> None:
    assert status.render_status(snap(ledger=LEDGER_UP)) == status.render_status(snap())


def test_status_shows_history_not_persisted_with_the_error_and_what_waits() -> None:
    down = {**LEDGER_UP, "up": False, "since": NOW - 120,
            "error": "cannot write state.db: database or disk is full", "pending": 17,
            "dropped": 2}
    line = lines_of(status.render_status(snap(ledger=down)))[1]
    assert line == ("history NOT persisted since 2 min ago: cannot write state.db: database"
                    " or disk is full; 17 rows waiting, 2 dropped")


def test_status_shows_a_corrupt_state_file_set_aside() -> None:
    aside = {**LEDGER_UP, "set_aside": "/var/lib/healthd/state.db.corrupt-20261203T101500Z"}
    line = lines_of(status.render_status(snap(ledger=aside)))[1]
    assert line == ("corrupt state file set aside as "
                    "/var/lib/healthd/state.db.corrupt-20261203T101500Z; history started afresh")


# --- ago ----------------------------------------------------------------------------------

AGO = [(None, "-"), (0.0, "-"), (NOW - 12, "12 s ago"), (NOW + 5, "0 s ago"),
       (NOW - 600, "10 min ago"), (NOW - 7200, "2.0 h ago"), (NOW - 3 * 86400, "3 d ago")]


@pytest.mark.parametrize(("then", "text"), AGO,
                         ids=["never", "zero", "seconds", "future", "minutes", "hours", "days"])
def test_ago(then: float | None, text: str) -> None:
    assert status.ago(NOW, then) == text


STACKS = {
    "services": [
        {"service": "shop/db", "stack": "shop", "running": 1, "desired": 1, "failing": False,
         "reason": "", "depends_on": [], "waiting": [],
         "last_action": "restart shop_db_1: rule unhealthy.critical", "last_action_at": NOW - 120},
        {"service": "shop/api", "stack": "shop", "running": 2, "desired": 3, "failing": True,
         "reason": "shop_api_1 unhealthy", "depends_on": ["shop/db"],
         "waiting": ["dependency: shop_api_1 not restarted: depends on shop/db, failing since "
                     "12:03:10"], "last_action": None, "last_action_at": None},
        {"service": "lonely", "stack": None, "running": 1, "desired": 1, "failing": False,
         "reason": "", "depends_on": [], "waiting": [], "last_action": None,
         "last_action_at": None},
    ],
    "problems": ["dependency cycle: loop/a -> loop/b -> loop/a"],
}


def test_status_groups_services_with_replicas_and_what_a_held_one_waits_on() -> None:
    text = status.render_status(snap(stacks=STACKS))
    db = row_for(text, "shop/db")
    assert db.split()[:3] == ["shop/db", "1/1", "ok"] and db.endswith("2 min ago")
    api = row_for(text, "shop/api")
    assert api.split()[:3] == ["shop/api", "2/3", "failing"]
    assert "shop_api_1 not restarted: depends on shop/db, failing since 12:03:10" in api
    assert "lonely" not in text.split("CONTAINER")[0]  # a lone container has no service row
    assert "stack problem: dependency cycle: loop/a -> loop/b -> loop/a" in text


def test_swarm_services_nodes_and_the_leader_are_shown() -> None:
    from healthd.serve.status import swarm_lines

    sw = {"leader": "node1", "is_leader": False, "services": [
        {"service": "web", "mode": "replicated", "running": 3, "desired": 3,
         "update_state": "rollback_completed", "scaled_by": "node1", "scaled_at": "990",
         "tasks": [{"node": "node1"}, {"node": "node2"}, {"node": "node2"}],
         "decision": "scale_up swarm/web: rule sustained_pressure.critical [held: at-max: 3]"}],
        "nodes": [{"node": "node1", "role": "manager", "state": "ready",
                   "availability": "active", "leader": True, "self": False, "peer": "answering"},
                  {"node": "node2", "role": "manager", "state": "ready", "self": True,
                   "availability": "drain", "drained_by": "node1", "leader": False,
                   "peer": "self"}]}
    text = "\n".join(swarm_lines(sw, now=1000.0))
    assert "swarm: leader node1; this node node2 (follows)" in text
    assert "web" in text and "3/3" in text and "rollback_completed" in text
    assert "node1, node2" in text and "10 s ago" in text
    assert "drain (by healthd on node1)" in text
    assert swarm_lines(None, 0.0) == []


# --- incidents and outcomes -------------------------------------------------------------
def test_an_open_incident_is_shown_with_its_chain() -> None:
    inc = {"id": "api@1700000000", "target": "api", "failure": "unhealthy",
           "opened": 1_700_000_000.0, "closed": None, "state": "held",
           "chain": "restart recurred → recreate recurred → alert-and-hold held"}
    text = status.render_status(snap(incidents=[inc]))
    (line,) = [x for x in lines_of(text) if x.startswith("INCIDENT ")]
    assert "api@1700000000: unhealthy on api" in line
    assert line.endswith("held: restart recurred → recreate recurred → alert-and-hold held")


def test_outcomes_print_counts_and_fix_rate() -> None:
    rows = [{"service": "shop/api", "classification": "oom_killed", "action": "restart",
             "fixed": 1, "recurred": 0, "not_fixed": 5, "superseded": 0, "pending": 0,
             "tries": 6, "fix_rate": 1 / 6}]
    text = status.render_outcomes(rows, 604800.0)
    assert text.splitlines()[0] == "what fixed what in the last 7 days"
    assert "17 % of 6" in text and "shop/api" in text
    assert status.render_outcomes([]) == "no judged actions yet"
