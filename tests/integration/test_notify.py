"""Notifications reach real receivers on 127.0.0.1: in order, once, through outages,
errors, hangs and restarts; Alertmanager (Debian's) sees the alert fire and end.

The delivery path is driven through ``act.notifier`` directly (no engine needed); the last
tests run the real ``healthd run`` against the throwaway engine, where a crash loop
exhausts the restart budget. Every wait has a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from healthd.act.notifier import Notifier
from healthd.core.model import Action, ContainerState, Decision, Failure, Health, Outcome
from healthd.core.notifyconfig import NotifyTarget, TargetKind
from healthd.serve.metrics import Metrics
from healthd.store.spool import Spool
from tests.engine import Containers, Engine, wait_for
from tests.integration.alertmanager import Alertmanager
from tests.integration.healthd_proc import Healthd, assert_promtool_clean
from tests.integration.receiver import Receiver

COMPOSE = (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "api"))
FAST = {"group_wait_s": 0.0, "group_interval_s": 0.0, "repeat_interval_s": 0.0,
        "timeout_s": 2.0, "retry_min_s": 0.05, "retry_max_s": 0.3}


def target(name: str, url: str, kind: str = "webhook", **kw: Any) -> NotifyTarget:
    return NotifyTarget(name, TargetKind(kind), url, **{**FAST, **kw})


def breaker(i: int) -> Decision:
    return Decision(Action.ALERT, f"cid{i}", f"shop-api-{i}", "crashed.critical.budget_exhausted",
                    Failure.CRASHED, Health.CRITICAL, ("exited with code 1",),
                    notes=("budget 3 of 3 restarts used in 3600 s: left alone",))


def count(n: Notifier, name: str, result: str) -> float:
    value = n.metrics.registry.get_sample_value(
        "healthd_notifications_total", {"target": name, "result": result})
    return value or 0.0


def depth(n: Notifier, name: str) -> float:
    value = n.metrics.registry.get_sample_value(
        "healthd_notification_spool_depth", {"target": name})
    return value or 0.0


MakeNotifier = Callable[..., Notifier]


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def notifiers(tmp_path: Path) -> Iterator[MakeNotifier]:
    """Started notifiers on tmp_path/state.spool.db (or ``path``); stopped after the test."""
    made: list[Notifier] = []

    def make(targets: list[NotifyTarget], path: str | None = None, **kw: Any) -> Notifier:
        spool = Spool(path or str(tmp_path / "state.spool.db"))
        n = Notifier(targets, spool, instance="edge-7", status_url="http://edge-7:10985/status",
                     metrics=Metrics(), **kw)
        n.start()
        made.append(n)
        return n

    yield make
    for n in made:
        n.stop(1.0)
        n.spool.close()


# --- the delivery path ------------------------------------------------------------------


def test_a_receiver_down_for_a_while_gets_everything_afterwards_in_order_once(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier
) -> None:
    rx = receivers()  # not listening yet: connections are refused
    n = notifiers([target("ops", rx.url)])
    for i in range(30):
        n.submit(breaker(i), Outcome.SUCCEEDED, COMPOSE)
    wait_for(lambda: count(n, "ops", "failed") >= 3, 10, what="failed attempts while down")
    assert depth(n, "ops") == 30
    rx.up()
    wait_for(lambda: len(rx.notice_ids()) >= 30, 20, what="the backlog after the outage")
    wait_for(lambda: depth(n, "ops") == 0, 5, what="an empty spool")
    docs = rx.bodies()
    containers = [x["container"] for d in docs for x in d["notices"]]
    assert containers == [f"shop-api-{i}" for i in range(30)]  # in order, each once
    assert len({d["id"] for d in docs}) == len(docs)
    assert count(n, "ops", "sent") == 30 and count(n, "ops", "dropped") == 0
    for r in rx.got:
        assert r.headers["Idempotency-Key"] == r.body["id"]


def test_a_500_is_retried_with_the_same_id_and_counted(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier
) -> None:
    rx = receivers().up()
    rx.fail_next = 3
    n = notifiers([target("ops", rx.url)])
    n.submit(breaker(1), Outcome.SUCCEEDED, COMPOSE)
    (got,) = rx.wait(1)
    assert rx.requests == 4
    assert got.body["notices"][0]["container"] == "shop-api-1"

    def latency() -> float | None:
        return n.metrics.registry.get_sample_value(
            "healthd_notification_delivery_seconds_count", {"target": "ops"})
    # The receiver has the body before the notifier has its answer: count once it has.
    wait_for(lambda: count(n, "ops", "sent") == 1 and latency() == 1, 10,
             what="the send counted and timed")
    assert count(n, "ops", "failed") == 3


def test_a_4xx_is_not_retried_the_notice_is_dropped_and_the_next_goes_through(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier
) -> None:
    rx = receivers().up()
    rx.fail_next, rx.fail_status = 1, 404
    n = notifiers([target("ops", rx.url)])
    n.submit(breaker(1), Outcome.SUCCEEDED, COMPOSE)
    wait_for(lambda: count(n, "ops", "dropped") == 1, 10, what="the 404 dropped")
    n.submit(breaker(2), Outcome.SUCCEEDED, COMPOSE)
    (got,) = rx.wait(1)
    assert got.body["notices"][0]["container"] == "shop-api-2"
    assert rx.requests == 2


def test_a_receiver_that_hangs_does_not_hold_up_the_others(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier
) -> None:
    slow, fast = receivers().up(), receivers().up()
    slow.hang = True
    n = notifiers([target("slow", slow.url, timeout_s=1.0), target("fast", fast.url)])
    started = time.monotonic()
    n.submit(breaker(1), Outcome.SUCCEEDED, COMPOSE)
    wait_for(lambda: slow.hung, 5, what="the slow receiver holding the first request")
    n.submit(breaker(2), Outcome.SUCCEEDED, COMPOSE)
    fast.wait(2, timeout=5)
    assert time.monotonic() - started < 1.0, "the fast target waited for the slow one"
    assert slow.got == []
    wait_for(lambda: count(n, "slow", "failed") >= 1, 10, what="the slow attempt timing out")
    slow.release()
    wait_for(lambda: len(slow.notice_ids()) >= 2, 15, what="the slow target catching up")
    assert [x["container"] for d in slow.bodies() for x in d["notices"]] == [
        "shop-api-1", "shop-api-2"]


def test_the_spool_survives_a_restart_and_an_interrupted_message_is_resent_with_its_id(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier, tmp_path: Path
) -> None:
    rx = receivers().up()
    rx.hang = True
    path = str(tmp_path / "state.spool.db")
    first = notifiers([target("ops", rx.url, timeout_s=30.0)], path)
    first.submit(breaker(1), Outcome.SUCCEEDED, COMPOSE)
    (on_the_wire,) = wait_for(lambda: list(rx.hung), 5, what="a message on the wire")
    first.submit(breaker(2), Outcome.SUCCEEDED, COMPOSE)
    first.submit(breaker(3), Outcome.SUCCEEDED, COMPOSE)
    first.stop(0.1)  # "killed" while the first message was on the wire
    first.spool.close()
    rx.release()
    second = notifiers([target("ops", rx.url)], path)
    wait_for(lambda: len(rx.notice_ids()) >= 3, 15, what="everything after the restart")
    docs = rx.bodies()
    assert docs[0]["id"] == on_the_wire.body["id"]  # the same message, the same id
    assert [x["container"] for d in docs for x in d["notices"]] == [
        "shop-api-1", "shop-api-2", "shop-api-3"]
    assert count(second, "ops", "sent") == 3


def test_resolved_follows_when_the_container_is_healthy_again(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier
) -> None:
    rx = receivers().up()
    n = notifiers([target("ops", rx.url)])
    n.submit(breaker(1), Outcome.SUCCEEDED, COMPOSE)
    n.healthy(ContainerState(id="cid2", name="shop-api-2"))  # never notified about: nothing
    n.healthy(ContainerState(id="cid1", name="shop-api-1"))
    rx.wait(2)
    assert [d["notices"][0]["kind"] for d in rx.bodies()] == ["breaker", "resolved"]
    assert n.open_alerts() == {}


def test_a_crash_loop_of_twenty_containers_is_one_message(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier
) -> None:
    rx = receivers().up()
    n = notifiers([target("chat", rx.url, "slack", group_wait_s=1.0, group_interval_s=60.0)])
    for i in range(20):
        n.submit(breaker(i), Outcome.SUCCEEDED, COMPOSE)
    (got,) = rx.wait(1)
    text = got.body["text"]
    assert list(got.body) == ["text"]
    assert text.startswith("*healthd on edge-7: 20 x restart budget exhausted, left alone*")
    assert all(f"shop-api-{i}:" in text for i in range(20))
    wait_for(lambda: depth(n, "chat") == 0, 5, what="an empty spool")
    assert len(rx.got) == 1


def test_notification_metrics_pass_promtool(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier
) -> None:
    rx = receivers().up()
    n = notifiers([target("ops", rx.url)])
    n.submit(breaker(1), Outcome.SUCCEEDED, COMPOSE)
    rx.wait(1)
    text = n.metrics.render().decode()
    assert 'healthd_notifications_total{result="sent",target="ops"} 1.0' in text
    assert 'healthd_notification_spool_depth{target="ops"}' in text
    assert "healthd_notification_delivery_seconds_bucket" in text
    assert_promtool_clean(text)


# --- healthd notify --test --------------------------------------------------------------


def _notify_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "healthd", "notify", "--test", *args,
                           "--config", str(config)], capture_output=True, text=True,
                          timeout=60)


def test_notify_test_reports_each_target(
    receivers: Callable[[], Receiver], tmp_path: Path
) -> None:
    good, bad = receivers().up(), receivers().up()
    bad.always_status = 500
    config = tmp_path / "config.toml"
    config.write_text(
        f'[daemon]\nstate = "{tmp_path / "state.db"}"\n'
        f'[[notify]]\nname = "good"\nkind = "webhook"\nurl = "{good.url}/hook"\n'
        f'[[notify]]\nname = "bad"\nkind = "slack"\nurl = "{bad.url}/hook"\n')
    done = _notify_cli(config)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["good"].startswith("delivered in ") and lines["good"].endswith(" ms")
    assert lines["bad"].startswith("failed: HTTP 500")
    (got,) = good.wait(1)
    assert got.body["test"] is True and got.body["notices"][0]["kind"] == "test"
    assert "TEST notification from healthd" in got.body["text"]
    only_good = _notify_cli(config, "good")
    assert only_good.returncode == 0 and only_good.stdout.startswith("good: delivered in ")
    assert len(bad.got) == 0 and bad.requests == 1  # one attempt only
    unknown = _notify_cli(config, "nope")
    assert unknown.returncode == 2 and "no target named 'nope'" in unknown.stderr


# --- Alertmanager (Debian's prometheus-alertmanager) --------------------------------------


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path)
    yield am
    am.stop()


def test_alertmanager_gets_the_firing_alert_and_the_resolved_one_ends_it(
    alertmanager: Alertmanager, notifiers: MakeNotifier
) -> None:
    n = notifiers([target("am", alertmanager.url, "alertmanager")])
    n.submit(breaker(1), Outcome.SUCCEEDED, COMPOSE)
    (alert,) = wait_for(lambda: alertmanager.alerts(alertname="healthd_breaker"), 15,
                        what=f"the alert in Alertmanager\n{alertmanager.log()}")
    assert alert["labels"] == {
        "alertname": "healthd_breaker", "container": "shop-api-1", "service": "shop/api",
        "stack": "shop", "severity": "critical", "rule": "crashed.critical.budget_exhausted",
        "instance": "edge-7"}
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["summary"].startswith("alert shop-api-1: rule crashed")
    assert alert["generatorURL"] == "http://edge-7:10985/status"
    n.healthy(ContainerState(id="cid1", name="shop-api-1"))
    wait_for(lambda: alertmanager.alerts(alertname="healthd_breaker") == [], 15,
             what="the alert ended by the resolved notice")
    # Alertmanager can drop the alert before the sender has counted the answer.
    wait_for(lambda: count(n, "am", "sent") == 2, 5, what="both notices counted as sent")


# Apprise (2.x) imports the stdlib's deprecated imghdr; not healthd's warning to fix.
@pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")
def test_apprise_json_url_reaches_a_local_receiver(
    receivers: Callable[[], Receiver], notifiers: MakeNotifier
) -> None:
    pytest.importorskip("apprise")
    rx = receivers().up()
    port = rx.url.rsplit(":", 1)[1]
    n = notifiers([target("phone", f"json://127.0.0.1:{port}/apprise", "apprise")])
    n.submit(breaker(1), Outcome.SUCCEEDED, COMPOSE)
    (got,) = rx.wait(1)
    assert got.path.startswith("/apprise")
    assert got.body["title"].startswith("healthd on edge-7: [breaker] alert shop-api-1")
    assert "crashed.critical.budget_exhausted" in got.body["message"]


# --- the real daemon on the test engine -------------------------------------------------

# Crashes until /ok exists (copied into the stopped container to "fix" it).
FIXABLE = "if [ -e /ok ]; then exec sleep 1000; fi; sleep 0.3; exit 1"


GUARDS = {"guards": {"budget_restarts": 2, "cooldown_s": 0.0, "backoff_base_s": 0.2}}


def _healthd(engine: Engine, tmp_path: Path, targets: list[dict[str, Any]]) -> Healthd:
    """A healthd (not started) whose config has these [[notify]] tables."""
    return Healthd(engine, tmp_path, cfg=GUARDS).add_notify(*targets)


@pytest.mark.engine
def test_healthd_run_notifies_alertmanager_and_a_webhook_of_a_crash_loop_and_its_end(
    engine: Engine, containers: Containers, tmp_path: Path,
    receivers: Callable[[], Receiver], alertmanager: Alertmanager
) -> None:
    rx = receivers().up()
    h = _healthd(engine, tmp_path, [
        {"name": "am", "kind": "alertmanager", "url": alertmanager.url},
        {"name": "ops", "kind": "webhook", "url": rx.url, **FAST}])
    try:
        h.start()
        cid = containers.run("should-alert-then-resolve", "sh", "-c", FIXABLE)
        name = containers.name_of(cid)
        (alert,) = wait_for(lambda: alertmanager.alerts(alertname="healthd_breaker",
                                                        container=name), 60,
                            what=f"the breaker alert in Alertmanager\n{h.log()}")
        assert alert["labels"]["rule"] == "crashed.critical.budget_exhausted"
        assert alert["labels"]["severity"] == "critical"
        assert alert["generatorURL"] == f"http://127.0.0.1:{h.port}/status"
        kinds = wait_for(lambda: [x["kind"] for d in rx.bodies() for x in d["notices"]
                                  if x["container"] == name and x["kind"] == "breaker"], 30,
                         what="the breaker notice at the webhook")
        assert kinds == ["breaker"]
        # Fix it the way an operator would, and start it: healthd sees it healthy.
        engine.cli("cp", str(_ok_file(tmp_path)), f"{cid}:/ok")
        engine.cli("start", cid)
        wait_for(lambda: alertmanager.alerts(alertname="healthd_breaker", container=name) == [],
                 60, what=f"the breaker alert ended\n{h.log()}")
        resolved = wait_for(lambda: [x for d in rx.bodies() for x in d["notices"]
                                     if x["container"] == name and x["kind"] == "resolved"], 30,
                            what="the resolved notice at the webhook")
        assert "breaker" in {a["kind"] for a in resolved[-1]["resolves"]}
    finally:
        h.kill()


def _ok_file(tmp_path: Path) -> Path:
    p = tmp_path / "ok"
    p.write_text("fixed\n")
    return p


@pytest.mark.engine
def test_healthd_killed_with_notices_spooled_delivers_them_after_its_restart(
    engine: Engine, containers: Containers, tmp_path: Path, receivers: Callable[[], Receiver]
) -> None:
    rx = receivers()  # down while healthd acts
    ops = {"name": "ops", "kind": "webhook", "url": rx.url, "events": ["action", "breaker"],
           **FAST}
    h = _healthd(engine, tmp_path, [ops])
    h.start()
    cid = containers.run("should-alert-notices-spooled", "sh", "-c", "sleep 0.3; exit 1")
    name = containers.name_of(cid)
    wait_for(lambda: [r for r in h.rows(name) if r["action"] == "alert"], 60,
             what=f"the budget alert\n{h.log()}")
    metric = 'healthd_notification_spool_depth{target="ops"} 3.0'
    wait_for(lambda: metric in h.get("/metrics").decode(), 10,
             what="2 restarts and the alert in the spool")
    h.kill()
    rx.up()
    h.start()
    wait_for(lambda: len(rx.notice_ids()) >= 3, 30, what=f"the spooled notices\n{h.log()}")
    h.wait_sweeps(3)
    mine = [x for d in rx.bodies() for x in d["notices"] if x["container"] == name]
    assert [x["kind"] for x in mine] == ["action", "action", "breaker"]
    assert len({x["id"] for x in mine}) == 3
    assert [x["at"] for x in mine] == sorted(x["at"] for x in mine)
    h.stop()
