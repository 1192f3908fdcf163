"""core.payloads: one message rendered for each kind of receiver."""

from __future__ import annotations

import json
from typing import Any

from healthd.core import payloads
from healthd.core.model import Health
from healthd.core.notices import Alert, Notice
from healthd.core.notifyconfig import EventKind, TargetKind
from healthd.core.payloads import Message

T0 = 1_764_751_794.5  # 2025-12-03T08:49:54.500Z
STATUS = "http://edge-7:10985/status"


def breaker(i: int, **kw: Any) -> Notice:
    return Notice(f"n{i}", EventKind.BREAKER, T0 + i, Health.CRITICAL, f"shop-api-{i}",
                  f"cid{i}", "shop/api", "shop", "crashed.critical.budget_exhausted", "alert",
                  "succeeded", f"alert shop-api-{i}: rule crashed.critical.budget_exhausted; "
                  "exited with code 1; budget 3 of 3 restarts used in 3600 s: left alone", **kw)


def message(*ns: Notice, group: str = "kind=breaker") -> Message:
    return Message("m1", "ops", group, ns)


def test_rfc3339() -> None:
    assert payloads.rfc3339(T0) == "2025-12-03T08:49:54.500Z"


def test_webhook_document() -> None:
    doc = payloads.webhook(message(breaker(1), breaker(2)), "edge-7", STATUS)
    assert doc["schema"] == "healthd.notification/v1"
    assert (doc["id"], doc["instance"], doc["target"], doc["status_url"], doc["test"]) == (
        "m1", "edge-7", "ops", STATUS, False)
    assert doc["group"] == {"key": "kind=breaker", "labels": {"kind": "breaker"}}
    assert doc["title"] == "healthd on edge-7: 2 x restart budget exhausted, left alone"
    first = doc["notices"][0]
    assert first["id"] == "n1" and first["kind"] == "breaker" and first["severity"] == "critical"
    assert first["time"] == "2025-12-03T08:49:55.500Z" and first["at"] == T0 + 1
    assert (first["container"], first["service"], first["stack"]) == (
        "shop-api-1", "shop/api", "shop")
    assert set(first) == {"id", "kind", "at", "time", "severity", "container", "container_id",
                          "service", "stack", "rule", "action", "outcome", "summary", "error",
                          "resolves", "incident"}
    json.dumps(doc)  # all of it is JSON


def test_one_notice_title_is_its_line() -> None:
    assert payloads.title(message(breaker(1)), "edge-7") == (
        "healthd on edge-7: [breaker] alert shop-api-1: rule crashed.critical.budget_exhausted")


def test_mixed_kinds_title_counts_notices() -> None:
    act = Notice("a", EventKind.ACTION, T0, Health.DEGRADED, "x", summary="restart x: rule r")
    assert payloads.title(message(breaker(1), act), "h") == "healthd on h: 2 notices"


def test_text_caps_lines_and_links_status() -> None:
    many = [breaker(i) for i in range(payloads.MAX_LINES + 5)]
    lines = payloads.text(message(*many), "edge-7", STATUS).splitlines()
    assert len(lines) == payloads.MAX_LINES + 2
    assert lines[-2:] == ["... and 5 more", f"status: {STATUS}"]


def test_failed_action_line_carries_the_error() -> None:
    n = Notice("f", EventKind.ACTION_FAILED, T0, Health.CRITICAL, "db",
               summary="restart db: rule crashed.critical", error="409 Conflict: in use")
    assert payloads.line(n) == ("[action_failed] restart db: rule crashed.critical; "
                                "error: 409 Conflict: in use")


def test_slack_is_text_only_and_escaped() -> None:
    n = Notice("x", EventKind.ALERT, T0, Health.CRITICAL, "a<b>", summary="alert a<b> & co")
    doc = payloads.slack(message(n), "edge-7", STATUS)
    assert list(doc) == ["text"]
    assert "alert a&lt;b&gt; &amp; co" in doc["text"]
    assert doc["text"].startswith("*healthd on edge-7: ")


def test_alertmanager_firing_alert() -> None:
    (alert,) = payloads.alertmanager(message(breaker(1)), "edge-7", STATUS, 3900.0)
    assert alert["labels"] == {
        "alertname": "healthd_breaker", "container": "shop-api-1", "service": "shop/api",
        "stack": "shop", "severity": "critical", "rule": "crashed.critical.budget_exhausted",
        "instance": "edge-7"}
    assert alert["annotations"]["summary"].startswith("alert shop-api-1: rule crashed")
    assert "(healthd notice n1)" in alert["annotations"]["description"]
    assert alert["startsAt"] == "2025-12-03T08:49:55.500Z"
    assert alert["endsAt"] == payloads.rfc3339(T0 + 1 + 3900.0)
    assert alert["generatorURL"] == STATUS


def test_alertmanager_without_ttl_leaves_endsat_out_and_empty_labels_are_omitted() -> None:
    n = Notice("d", EventKind.PREDICTED_EXHAUSTION, T0, Health.DEGRADED, "host",
               rule="predicted_exhaustion.host_disk.degraded", summary="alert host: ...")
    (alert,) = payloads.alertmanager(message(n), "edge-7", STATUS, 0.0)
    assert "endsAt" not in alert
    assert alert["labels"] == {"alertname": "healthd_predicted_exhaustion", "container": "host",
                               "severity": "warning", "instance": "edge-7",
                               "rule": "predicted_exhaustion.host_disk.degraded"}


def test_alertmanager_resolved_ends_each_alert_with_the_same_labels() -> None:
    fired = payloads.alertmanager(message(breaker(1)), "edge-7", STATUS, 3900.0)[0]
    alert = Alert(EventKind.BREAKER, "crashed.critical.budget_exhausted", Health.CRITICAL,
                  T0 + 1, "shop/api", "shop")
    act = Alert(EventKind.ACTION, "crashed.critical", Health.DEGRADED, T0, "shop/api", "shop")
    resolved = Notice("r", EventKind.RESOLVED, T0 + 60, Health.CRITICAL, "shop-api-1", "cid1",
                      "shop/api", "shop", summary="shop-api-1 is healthy again; ...",
                      resolves=(alert, act))
    ends = payloads.alertmanager(message(resolved, group="kind=resolved"), "edge-7", STATUS,
                                 3900.0)
    assert ends[0]["labels"] == fired["labels"]
    assert ends[0]["startsAt"] == fired["startsAt"]
    assert ends[0]["endsAt"] == payloads.rfc3339(T0 + 60)
    assert ends[1]["labels"]["alertname"] == "healthd_action"
    assert ends[1]["labels"]["severity"] == "warning"


def test_alertmanager_test_alert_is_info_and_ends_itself() -> None:
    n = Notice("t", EventKind.TEST, T0, Health.DEGRADED, rule="test", summary="TEST ...")
    (alert,) = payloads.alertmanager(message(n, group="kind=test"), "edge-7", STATUS, 0.0)
    assert alert["labels"] == {"alertname": "healthd_test", "severity": "info",
                               "rule": "test", "instance": "edge-7"}
    assert alert["endsAt"] == payloads.rfc3339(T0 + payloads.TEST_ALERT_S)


def test_render_per_kind() -> None:
    m = message(breaker(1))
    for kind, want in [(TargetKind.WEBHOOK, dict), (TargetKind.SLACK, dict),
                       (TargetKind.ALERTMANAGER, list)]:
        r = payloads.render(kind, m, "edge-7", STATUS, 3900.0)
        assert r.content_type == "application/json"
        assert isinstance(json.loads(r.body), want)
    r = payloads.render(TargetKind.APPRISE, m, "edge-7", STATUS)
    assert r.body == b"" and r.title.startswith("healthd on edge-7: [breaker]")
    assert r.text.endswith(f"status: {STATUS}")


def test_json_text_is_autoheals_body_under_its_key_unescaped() -> None:
    n = Notice("x", EventKind.ALERT, T0, Health.CRITICAL, "a<b>", summary="alert a<b> & co")
    for key in ("text", "content"):
        r = payloads.render(TargetKind.JSON_TEXT, message(n), "edge-7", STATUS, json_key=key)
        doc = json.loads(r.body)
        assert list(doc) == [key]
        assert doc[key].startswith("healthd on edge-7: [alert] alert a<b> & co\n")
        assert r.content_type == "application/json"
