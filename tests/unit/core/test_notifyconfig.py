"""[[notify]] targets and [notifications]: typed, defaulted, and every problem names its key."""

from __future__ import annotations

from typing import Any

import pytest

from healthd.core.config import ConfigError, build
from healthd.core.model import Health
from healthd.core.notifyconfig import (
    EVENTS,
    EventKind,
    NotificationSettings,
    NotifyTarget,
    TargetKind,
    parse_targets,
    status_url,
)

HOOK = {"name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}


def problems_of(*targets: Any, have_apprise: bool = True) -> list[str]:
    with pytest.raises(ConfigError) as err:
        build({"notify": list(targets)}, have_apprise=have_apprise)
    return err.value.problems


def test_no_targets_by_default() -> None:
    assert build().notify == ()


def test_a_minimal_target_gets_the_defaults() -> None:
    (t,) = build({"notify": [HOOK]}).notify
    assert t == NotifyTarget("ops", TargetKind.WEBHOOK, "http://127.0.0.1:9/hook")
    assert t.events == EVENTS and EventKind.TEST not in t.events
    assert (t.group_wait_s, t.group_interval_s, t.repeat_interval_s) == (30.0, 300.0, 14400.0)
    assert t.min_severity is Health.DEGRADED and t.group_by == ("kind",)


def test_every_key_is_typed() -> None:
    raw = {**HOOK, "headers": {"X-Org": "ops"}, "token_file": "/run/token",
           "events": ["breaker", "resolved"], "min_severity": "critical",
           "containers": ["api-*"], "services": "shop/*", "stacks": ["shop"],
           "rules": ["crashed.*"], "group_by": ["kind", "stack"], "group_wait_s": 5,
           "group_interval_s": 60, "repeat_interval_s": 0, "timeout_s": 2.5,
           "retry_min_s": 0.5, "retry_max_s": 30, "alert_ttl_s": 0}
    (t,) = build({"notify": [raw]}).notify
    assert t.headers == (("X-Org", "ops"),)
    assert t.events == (EventKind.BREAKER, EventKind.RESOLVED)
    assert t.min_severity is Health.CRITICAL
    assert t.services == ("shop/*",)  # one string is a list of one
    assert t.group_by == ("kind", "stack")
    assert isinstance(t.group_wait_s, float) and t.group_wait_s == 5.0
    assert (t.retry_min_s, t.retry_max_s, t.alert_ttl_s) == (0.5, 30.0, 0.0)


def test_alertmanager_hands_alerts_over_at_once_unless_told_otherwise() -> None:
    am = {"name": "am", "kind": "alertmanager", "url": "http://127.0.0.1:9093"}
    (t,) = build({"notify": [am]}).notify
    assert (t.group_wait_s, t.group_interval_s, t.repeat_interval_s) == (0.0, 0.0, 0.0)
    (t,) = build({"notify": [{**am, "group_wait_s": 10}]}).notify
    assert t.group_wait_s == 10.0


def test_url_file_instead_of_url() -> None:
    raw = {"name": "chat", "kind": "slack", "url_file": "/etc/healthd/slack-url"}
    (t,) = build({"notify": [raw]}).notify
    assert (t.url, t.url_file) == ("", "/etc/healthd/slack-url")


def test_apprise_target_with_the_package() -> None:
    raw = {"name": "phone", "kind": "apprise", "url": "ntfy://ntfy.sh/topic"}
    (t,) = build({"notify": [raw]}, have_apprise=True).notify
    assert t.kind is TargetKind.APPRISE


BAD: list[tuple[str, Any, str]] = [
    ("unknown-key", {**HOOK, "channel": "#ops"}, "notify[ops].channel: unknown key; allowed:"),
    ("missing-name", {"kind": "webhook", "url": "http://x"}, "notify[0].name: required"),
    ("missing-kind", {"name": "ops", "url": "http://x"}, "notify[ops].kind: required"),
    ("bad-kind", {**HOOK, "kind": "pager"},
     "notify[ops].kind: 'pager' is not one of webhook, slack, alertmanager, apprise"),
    ("missing-url", {"name": "ops", "kind": "webhook"}, "notify[ops].url: required"),
    ("url-and-url-file", {**HOOK, "url_file": "/x"}, "notify[ops].url/url_file: give one"),
    ("url-scheme", {**HOOK, "url": "hooks.example.com"},
     "notify[ops].url: 'hooks.example.com' must start with http:// or https://"),
    ("url-not-str", {**HOOK, "url": 5}, "notify[ops].url: expected str"),
    ("bad-event", {**HOOK, "events": ["action", "reboot"]},
     "notify[ops].events: 'reboot' not allowed; allowed: action, escalated, action_failed, "
     "breaker"),
    ("test-is-no-event", {**HOOK, "events": ["test"]}, "notify[ops].events: 'test' not allowed"),
    ("events-not-list", {**HOOK, "events": 3}, "notify[ops].events: expected a list"),
    ("bad-severity", {**HOOK, "min_severity": "healthy"},
     "notify[ops].min_severity: 'healthy' is not one of degraded, critical"),
    ("bad-group-by", {**HOOK, "group_by": ["host"]}, "notify[ops].group_by: 'host' not allowed"),
    ("negative", {**HOOK, "group_wait_s": -1}, "notify[ops].group_wait_s: must be >= 0"),
    ("nan", {**HOOK, "timeout_s": float("nan")}, "notify[ops].timeout_s: must be >= 0"),
    ("bool-for-float", {**HOOK, "timeout_s": True}, "notify[ops].timeout_s: expected float"),
    ("str-for-float", {**HOOK, "retry_max_s": "5m"}, "notify[ops].retry_max_s: expected float"),
    ("zero-timeout", {**HOOK, "timeout_s": 0}, "notify[ops].timeout_s/retry_min_s: must be > 0"),
    ("retry-order", {**HOOK, "retry_min_s": 10, "retry_max_s": 1},
     "notify[ops].retry_min_s/retry_max_s: need retry_min_s <= retry_max_s"),
    ("headers-not-table", {**HOOK, "headers": ["X: y"]}, "notify[ops].headers: expected a table"),
    ("header-not-str", {**HOOK, "headers": {"X-N": 1}}, "notify[ops].headers: expected a table"),
    ("glob-not-str", {**HOOK, "containers": [1]}, "notify[ops].containers: expected a list"),
    ("bad-name", {**HOOK, "name": "my target"}, "notify[my target].name: 'my target' must be"),
    ("not-a-table", "http://x", "notify[0]: expected a table"),
    ("apprise-not-a-url", {"name": "p", "kind": "apprise", "url": "ntfy.sh/topic"},
     "notify[p].url: 'ntfy.sh/topic' is not an Apprise URL"),
]


@pytest.mark.parametrize(("raw", "want"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_target_names_its_key_and_what_is_allowed(raw: Any, want: str) -> None:
    problems = problems_of(raw)
    assert any(p.startswith(want) for p in problems), problems


def test_two_targets_with_one_name() -> None:
    problems = problems_of(HOOK, {**HOOK, "kind": "slack"})
    assert problems == ["notify[ops].name: 'ops' names two targets"]


def test_apprise_without_the_package_says_how_to_get_it() -> None:
    problems = problems_of({"name": "p", "kind": "apprise", "url": "ntfy://ntfy.sh/t"},
                           have_apprise=False)
    assert problems == ["notify[p].kind: 'apprise' needs the apprise package, which is not "
                        "installed: pip install 'healthd[apprise]'"]


def test_notify_must_be_an_array_of_tables() -> None:
    assert parse_targets({"name": "ops"}, True)[1][0].startswith(
        "notify: expected [[notify]] tables")


def test_every_problem_of_every_target_at_once() -> None:
    problems = problems_of({**HOOK, "kind": "pager", "timeout_s": -1},
                           {"name": "b", "kind": "slack"})
    assert [p.split(":")[0] for p in problems] == [
        "notify[ops].kind", "notify[ops].timeout_s", "notify[b].url"]


# --- [notifications] -------------------------------------------------------------------


def test_notifications_defaults_and_env() -> None:
    assert build().notifications == NotificationSettings()
    c = build(environ={"HEALTHD_NOTIFICATIONS_INSTANCE": "edge-7",
                       "HEALTHD_NOTIFICATIONS_MAX_QUEUED": "50"})
    assert (c.notifications.instance, c.notifications.max_queued) == ("edge-7", 50)


@pytest.mark.parametrize(("data", "want"), [
    ({"max_queued": 0}, "notifications.max_queued: must be >= 1"),
    ({"status_url": "host:10985/status"}, "notifications.status_url: 'host:10985/status'"),
    ({"max_age_s": -5}, "notifications.max_age_s: must be >= 0"),
    ({"spool": "/tmp"}, "notifications.spool: unknown key"),
], ids=["max-queued", "status-url", "negative", "unknown"])
def test_bad_notifications_key(data: dict[str, Any], want: str) -> None:
    with pytest.raises(ConfigError) as err:
        build({"notifications": data})
    assert any(p.startswith(want) for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(("configured", "listen", "want"), [
    ("", "127.0.0.1:10985", "http://127.0.0.1:10985/status"),
    ("", "0.0.0.0:10985", "http://edge-7:10985/status"),
    ("", "[::]:10985", "http://edge-7:10985/status"),
    ("https://healthd.example.com/status", "0.0.0.0:10985", "https://healthd.example.com/status"),
], ids=["loopback", "wildcard-v4", "wildcard-v6", "configured"])
def test_status_url(configured: str, listen: str, want: str) -> None:
    assert status_url(NotificationSettings(status_url=configured), listen, "edge-7") == want
