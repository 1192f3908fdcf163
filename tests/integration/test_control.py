"""Operators steer a real healthd on a real engine: approval, rejection, pause and resume
through the CLI and HTTP, with the token; a pending decision outlives a SIGKILL.

Containers are named for the outcome the test expects. "healthd left it alone" is checked
after healthd has run several sweeps, never after a fixed sleep.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from healthd.cli import main
from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.engine

TOKEN = "control-test-token-0123456789"
# First run: exit 3 once; after one restart, run on (so "restarted" is observable).
CRASH_ONCE = "if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; sleep 0.3; exit 3"
APPROVE_RESTARTS = {"daemon": {"token": TOKEN}, "approval": {"restart": "approve"}}
WITH_TOKEN = {"daemon": {"token": TOKEN}}


def start(engine: Engine, workdir: Path, made: list[Healthd],
          cfg: dict[str, dict[str, Any]]) -> Healthd:
    h = Healthd(engine, workdir, cfg=cfg, token=TOKEN)
    made.append(h)
    return h.start()


def cli(h: Healthd, *args: str, token: str = TOKEN) -> Result:
    """A healthd command against ``h``, in process, as the operator 'tester'."""
    who = ("--who", "tester") if args[0] != "status" else ()
    return CliRunner().invoke(main, [*args, "--url", h.url, "--token", token, *who],
                              env={"HEALTHD_CONFIG": "", "HEALTHD_TOKEN": ""})


def post(h: Healthd, path: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(h.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return int(r.status), dict(json.loads(r.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
            return int(exc.code), (json.loads(raw) if raw.startswith(b"{") else {})


def pending_for(h: Healthd, name: str) -> dict[str, Any] | None:
    return next((p for p in h.status()["pending"] if p["target"] == name), None)


def starts(engine: Engine, cid: str, since: int) -> int:
    """'start' events of ``cid`` the engine reports since ``since`` (epoch s)."""
    events = engine.client.api.events(since=since, until=int(time.time()) + 1, decode=True,
                                      filters={"container": cid, "event": "start"})
    return sum(1 for _ in events)


def running(engine: Engine, cid: str) -> bool:
    return bool(engine.client.api.inspect_container(cid)["State"]["Running"])


def crash_once(containers: Containers, hint: str) -> tuple[str, str, int]:
    since = int(time.time()) - 1
    cid = containers.run(hint, "sh", "-c", CRASH_ONCE)
    return cid, containers.name_of(cid), since


def test_approval_holds_the_restart_until_approved_then_healthd_restarts_it(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    h = start(engine, tmp_path, healthds, APPROVE_RESTARTS)
    cid, name, since = crash_once(containers, "should-restart-once-approved")
    p = wait_for(lambda: pending_for(h, name), 30, what=f"a pending restart\n{h.log()}")
    assert p["action"] == "restart" and p["rule"] == "crashed.critical"
    assert p["explain"].startswith(f"restart {name}: rule crashed.critical")
    assert p["expires"] - p["created"] == pytest.approx(3600.0)
    shown = cli(h, "status")
    assert shown.exit_code == 0 and f"healthd approve {p['id']}" in shown.output, shown.output
    h.wait_sweeps(3)
    assert h.restarts(name) == [] and not running(engine, cid), h.log()
    held = [r for r in h.rows(name) if (r["suppressed_by"] or "").startswith("awaiting-approval")]
    assert held and p["id"] in held[0]["suppressed_by"]
    assert starts(engine, cid, since) == 1

    done = cli(h, "approve", p["id"])
    assert done.exit_code == 0 and done.output.strip() == f"{p['id']}: approved", done.output
    rows = wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 30,
                    what=f"the approved restart\n{h.log()}")
    assert "approved by tester" in rows[0]["explanation"]
    wait_for(lambda: running(engine, cid), 10, what="running again")
    assert starts(engine, cid, since) == 2
    assert pending_for(h, name) is None
    assert post(h, f"/api/approve/{p['id']}", {}, TOKEN)[0] == 404  # settled: gone


def test_a_wrong_token_changes_nothing_and_a_rejection_leaves_the_container_alone(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    h = start(engine, tmp_path, healthds, APPROVE_RESTARTS)
    cid, name, since = crash_once(containers, "should-not-restart-rejected")
    p = wait_for(lambda: pending_for(h, name), 30, what=f"a pending restart\n{h.log()}")
    bad = "not-the-token-0123456789"
    assert post(h, f"/api/approve/{p['id']}", {}, bad)[0] == 401
    assert post(h, "/api/pause", {"target": name}, bad)[0] == 401
    refused = cli(h, "approve", p["id"], token=bad)
    assert refused.exit_code == 1 and "refused" in refused.output
    h.wait_sweeps(2)
    assert pending_for(h, name) is not None and h.status()["maintenance"] == []
    assert h.restarts(name) == [] and not running(engine, cid)

    done = cli(h, "reject", p["id"])
    assert done.exit_code == 0 and done.output.strip() == f"{p['id']}: rejected", done.output
    assert pending_for(h, name) is None
    h.wait_sweeps(3)
    assert h.restarts(name) == [] and not running(engine, cid), h.log()
    assert starts(engine, cid, since) == 1
    said = [r["suppressed_by"] for r in h.rows(name) if r["suppressed_by"]]
    assert any(s.startswith(f"rejected: {p['id']} by tester") for s in said), said
    assert pending_for(h, name) is None, "a rejected decision does not ask again at once"


def test_a_pending_decision_survives_sigkill_and_is_approved_after_the_restart(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    h = start(engine, tmp_path, healthds, APPROVE_RESTARTS)
    cid, name, since = crash_once(containers, "should-restart-approved-after-sigkill")
    p = wait_for(lambda: pending_for(h, name), 30, what=f"a pending restart\n{h.log()}")
    h.kill()
    again = start(engine, tmp_path, healthds, APPROVE_RESTARTS)
    kept = pending_for(again, name)
    assert kept is not None and kept["id"] == p["id"] and kept["created"] == p["created"]
    again.wait_sweeps(2)
    assert pending_for(again, name) == kept, "no second pending decision for the same restart"
    done = cli(again, "approve", p["id"][:6])  # a unique prefix will do
    assert done.exit_code == 0 and "approved" in done.output, done.output
    wait_for(lambda: running(engine, cid), 30, what=f"running again\n{again.log()}")
    assert starts(engine, cid, since) == 2


def test_a_pause_holds_the_restart_with_its_reason_and_resume_lets_the_next_through(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    h = start(engine, tmp_path, healthds, WITH_TOKEN)
    name = containers.name("should-restart-after-resume")
    paused = cli(h, "pause", name, "--reason", "disk swap")
    assert paused.exit_code == 0 and f"{name} paused by tester until resumed" in paused.output
    m = h.status()["maintenance"]
    assert [(x["target"], x["reason"], x["who"], x["until"]) for x in m] == [
        (name, "disk swap", "tester", None)]
    assert "PAUSED" in cli(h, "status").output
    since = int(time.time()) - 1
    cid = engine.cli("run", "-d", "--network", "none", "--name", name, engine.image,
                     "sh", "-c", CRASH_ONCE).stdout.strip()
    held = wait_for(lambda: [r for r in h.rows(name) if r["suppressed_by"]], 30,
                    what=f"the held restart\n{h.log()}")
    assert held[0]["action"] == "restart"
    assert held[0]["suppressed_by"] == "maintenance: disk swap (by tester, until resumed)"
    h.wait_sweeps(3)
    assert h.restarts(name) == [] and not running(engine, cid)

    resumed = cli(h, "resume", name)
    assert resumed.exit_code == 0, resumed.output
    wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 30,
             what=f"the restart after resume\n{h.log()}")
    wait_for(lambda: running(engine, cid), 10, what="running again")
    assert starts(engine, cid, since) == 2
    assert h.status()["maintenance"] == []
    history = [r["rule"] for r in h.rows(name) if r["rule"].startswith("maintenance.")]
    assert history == ["maintenance.pause", "maintenance.resume"]
    assert cli(h, "resume", name).exit_code == 1  # not paused any more


def test_a_pause_for_a_while_ends_on_its_own(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    h = start(engine, tmp_path, healthds, WITH_TOKEN)
    paused = cli(h, "pause", "--for", "5s", "--reason", "upgrade")
    assert paused.exit_code == 0 and "host paused by tester until" in paused.output
    until = h.status()["maintenance"][0]["until"]
    cid, name, _ = crash_once(containers, "should-restart-after-the-pause")
    held = wait_for(lambda: [r for r in h.rows(name) if r["suppressed_by"]], 30,
                    what=f"the held restart\n{h.log()}")
    assert held[0]["suppressed_by"].startswith("maintenance: upgrade (by tester, until ")
    rows = wait_for(lambda: [r for r in h.restarts(name) if r["outcome"] == "succeeded"], 30,
                    what=f"the restart once the pause ran out\n{h.log()}")
    assert rows[0]["at"] >= until
    assert h.status()["maintenance"] == []
    ended = [r for r in h.rows("host") if r["rule"] == "maintenance.resume"]
    assert ended and "ran out" in ended[0]["explanation"]
    wait_for(lambda: running(engine, cid), 10, what="running again")


def test_bad_bodies_get_a_400_naming_the_field(
        engine: Engine, healthds: list[Healthd], tmp_path: Path) -> None:
    h = start(engine, tmp_path, healthds, WITH_TOKEN)
    for body, field in (({"for_s": -1}, "for_s"), ({"target": 7}, "target"),
                        ({"when": "now"}, "when"), ({"for_s": "30m"}, "for_s")):
        code, answer = post(h, "/api/pause", body, TOKEN)
        assert (code, answer.get("field")) == (400, field), answer
    assert h.status()["maintenance"] == []
    assert post(h, "/api/approve/nosuchid", {}, TOKEN)[0] == 404
    assert post(h, "/api/reject/nosuchid", {}, TOKEN)[0] == 404


def test_a_webhook_is_told_of_the_pending_decision_its_rejection_and_the_pause(
        engine: Engine, containers: Containers, healthds: list[Healthd],
        tmp_path: Path) -> None:
    rx = Receiver().up()
    try:
        h = Healthd(engine, tmp_path, cfg=APPROVE_RESTARTS, token=TOKEN).add_notify(
            {"name": "ops", "kind": "webhook", "url": rx.url, "group_wait_s": 0.0,
             "group_interval_s": 0.0, "retry_min_s": 0.05, "retry_max_s": 0.3})
        healthds.append(h)
        h.start()
        _, name, _ = crash_once(containers, "should-not-restart-notified")
        p = wait_for(lambda: pending_for(h, name), 30, what=f"a pending restart\n{h.log()}")
        assert cli(h, "reject", p["id"]).exit_code == 0
        assert cli(h, "pause", "shop", "--reason", "deploy").exit_code == 0

        def seen() -> list[dict[str, Any]]:
            # Only this test's container and pause (the engine is shared with other tests).
            return [x for d in rx.bodies() for x in d["notices"]
                    if x["kind"] in ("approval", "maintenance")
                    and (x["container"] == name or x.get("service") == "shop")]

        got = wait_for(lambda: (lambda s: s if len(s) >= 3 else None)(seen()), 30,
                       what=f"three notices at the webhook: {seen()}\n{h.log()}")
        asking, rejected, paused = got[:3]
        assert asking["container"] == name and f"healthd approve {p['id']}" in asking["summary"]
        assert rejected["container"] == name
        assert f"rejected: {p['id']} by tester" in rejected["summary"]
        assert paused["kind"] == "maintenance" and paused["service"] == "shop"
        assert "shop paused: deploy (by tester, until resumed)" in paused["summary"]
    finally:
        rx.close()
