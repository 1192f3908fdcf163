"""healthd.core.autoheal_env and its place in config.build: docker-autoheal's environment.

Every variable of the interface maps to its healthd key with its source; a bad value is
named with what is allowed; config.toml wins over the environment; without AUTOHEAL_*
nothing changes at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from healthd.core import autoheal_env, config, provenance, settings
from healthd.core.notifyconfig import TargetKind


def build(env: dict[str, str], data: dict[str, Any] | None = None) -> settings.Config:
    return config.build(data or {}, env, have_apprise=True)


@pytest.mark.parametrize(("var", "raw", "key", "value"), [
    ("AUTOHEAL_START_PERIOD", "300", "guards.start_period_s", 300.0),
    ("AUTOHEAL_DEFAULT_STOP_TIMEOUT", "20", "guards.stop_timeout_s", 20),
    ("AUTOHEAL_ONLY_MONITOR_RUNNING", "true", "watch.only_running", True),
    ("AUTOHEAL_ONLY_MONITOR_RUNNING", "false", "watch.only_running", False),
    ("AUTOHEAL_UNHEALTHY_THRESHOLD", "3", "guards.unhealthy_threshold", 3),
    ("AUTOHEAL_GRACE_PERIOD", "45", "guards.grace_s", 45.0),
    ("AUTOHEAL_RESTART_BUDGET", "5", "guards.budget_restarts", 5),
    ("AUTOHEAL_RESTART_WINDOW", "300", "guards.budget_window_s", 300.0),
    ("AUTOHEAL_BACKOFF_BASE", "10s", "guards.backoff_base_s", 10.0),
    ("AUTOHEAL_BACKOFF_MAX", "900", "guards.backoff_max_s", 900.0),
    ("NOTIFY_HOSTNAME", "nas", "notifications.instance", "nas"),
    ("DOCKER_SOCK", "/run/docker.sock", "daemon.docker_host", "unix:///run/docker.sock"),
    ("DOCKER_SOCK", "tcp://socket-proxy:2375", "daemon.docker_host",
     "tcp://socket-proxy:2375"),
], ids=lambda v: str(v))
def test_each_variable_sets_its_key_with_its_source(var: str, raw: str, key: str,
                                                    value: object) -> None:
    env = {"AUTOHEAL_CONTAINER_LABEL": "all", var: raw}
    cfg = build(env)
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) == value
    assert autoheal_env.translate(env).sources[key] == f"{var}={raw}"


def test_label_mode_defaults_to_autoheal_true_only_when_any_autoheal_variable_is_set() -> None:
    cfg = build({"AUTOHEAL_INTERVAL": "5"})
    assert (cfg.watch.mode, cfg.watch.opt_in_label) == ("opt-in", "autoheal")


def test_label_mode_all_watches_every_container() -> None:
    assert build({"AUTOHEAL_CONTAINER_LABEL": "all"}).watch.mode == "opt-out"


def test_custom_label_opts_in_containers_labelled_with_it() -> None:
    cfg = build({"AUTOHEAL_CONTAINER_LABEL": "monitor.heal"})
    assert (cfg.watch.mode, cfg.watch.opt_in_label) == ("opt-in", "monitor.heal")


def test_without_any_autoheal_variable_nothing_changes() -> None:
    env = {"WEBHOOK_URL": "http://127.0.0.1:9/hook", "DOCKER_SOCK": "/x.sock",
           "NOTIFY_HOSTNAME": "nas", "POST_RESTART_SCRIPT": "/x.sh"}
    assert build(env) == settings.Config()
    mapped = autoheal_env.translate(env)
    assert not mapped.active and mapped.warning() is None
    assert any("WEBHOOK_URL is set but no AUTOHEAL_*" in n for n in mapped.notes)


@pytest.mark.parametrize(("var", "raw", "allowed"), [
    ("AUTOHEAL_START_PERIOD", "soon", "seconds >= 0"),
    ("AUTOHEAL_DEFAULT_STOP_TIMEOUT", "1.5", "whole seconds >= 0"),
    ("AUTOHEAL_ONLY_MONITOR_RUNNING", "maybe", "true or false"),
    ("AUTOHEAL_UNHEALTHY_THRESHOLD", "0", "a whole number of health checks >= 1"),
    ("AUTOHEAL_GRACE_PERIOD", "-1", "seconds >= 0"),
    ("AUTOHEAL_RESTART_BUDGET", "many", "a whole number of restarts >= 1"),
    ("AUTOHEAL_RESTART_WINDOW", "nan", "seconds >= 0"),
    ("AUTOHEAL_BACKOFF_BASE", "inf", "seconds >= 0"),
    ("AUTOHEAL_BACKOFF_MAX", "", "seconds >= 0"),
    ("AUTOHEAL_INTERVAL", "often", "seconds >= 0"),
    ("NOTIFY_HOSTNAME", " ", "a name"),
], ids=lambda v: str(v))
def test_bad_value_is_named_with_what_is_allowed(var: str, raw: str, allowed: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        build({"AUTOHEAL_CONTAINER_LABEL": "all", var: raw})
    assert err.value.problems == [f"{var}: {raw!r} is not valid; allowed: {allowed}"]


@pytest.mark.parametrize(("env", "words"), [
    ({"AUTOHEAL_CONTAINER_LABEL": "no spaces"}, "neither 'all' nor a label name"),
    ({"DOCKER_SOCK": "docker.sock"}, "not a socket path"),
    ({"WEBHOOK_URL": "ftp://x"}, "must start with http:// or https://"),
    ({"WEBHOOK_URL": "http://127.0.0.1:9/", "WEBHOOK_JSON_KEY": " "}, "WEBHOOK_JSON_KEY: empty"),
    ({"APPRISE_URL": "http://apprise:8000/"}, "neither an Apprise API server's"),
], ids=["label", "sock", "webhook-scheme", "json-key", "apprise"])
def test_bad_interface_values_are_named(env: dict[str, str], words: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        build({"AUTOHEAL_INTERVAL": "5", **env})
    assert any(words in p for p in err.value.problems), err.value.problems


def test_apprise_url_without_the_package_says_how_to_install_it() -> None:
    with pytest.raises(config.ConfigError) as err:
        config.build({}, {"AUTOHEAL_INTERVAL": "5", "APPRISE_URL": "ntfy://n/t"},
                      have_apprise=False)
    assert "pip install 'healthd[apprise]'" in err.value.problems[0]


def test_config_toml_wins_over_the_autoheal_variable() -> None:
    env = {"AUTOHEAL_CONTAINER_LABEL": "all", "AUTOHEAL_GRACE_PERIOD": "45",
           "AUTOHEAL_DEFAULT_STOP_TIMEOUT": "20"}
    data = {"guards": {"grace_s": 5.0}, "watch": {"mode": "opt-in"}}
    cfg = build(env, data)
    assert (cfg.guards.grace_s, cfg.watch.mode) == (5.0, "opt-in")
    assert cfg.guards.stop_timeout_s == 20  # where the file is silent, the variable counts
    rows = {r.key: r.source for r in provenance.rows(cfg, data, env)}
    assert rows["guards.grace_s"] == "config.toml, wins over AUTOHEAL_GRACE_PERIOD=45"
    assert rows["guards.stop_timeout_s"] == "AUTOHEAL_DEFAULT_STOP_TIMEOUT=20"
    assert rows["guards.cooldown_s"] == "default"


def test_healthd_variable_wins_over_the_autoheal_variable() -> None:
    env = {"AUTOHEAL_GRACE_PERIOD": "45", "HEALTHD_GUARDS_GRACE_S": "7"}
    cfg = build(env)
    assert cfg.guards.grace_s == 7.0
    rows = {r.key: r.source for r in provenance.rows(cfg, {}, env)}
    assert rows["guards.grace_s"] == "environment HEALTHD_GUARDS_GRACE_S"


def test_webhook_url_becomes_a_json_text_target_with_autoheals_key() -> None:
    env = {"AUTOHEAL_CONTAINER_LABEL": "all", "WEBHOOK_URL": "http://127.0.0.1:9/hook",
           "WEBHOOK_JSON_KEY": "content"}
    (t,) = build(env).notify
    assert (t.name, t.kind, t.url, t.json_key) == (
        autoheal_env.WEBHOOK_TARGET, TargetKind.JSON_TEXT, "http://127.0.0.1:9/hook", "content")
    assert t.group_wait_s == 0.0  # autoheal posts each event as it happens
    assert build({**env, "WEBHOOK_JSON_KEY": "text"}).notify[0].json_key == "text"
    assert build({k: v for k, v in env.items() if k != "WEBHOOK_JSON_KEY"}
                 ).notify[0].json_key == "text"


def test_a_notify_target_of_the_same_name_in_the_file_wins() -> None:
    env = {"AUTOHEAL_INTERVAL": "5", "WEBHOOK_URL": "http://127.0.0.1:9/env"}
    data = {"notify": [{"name": autoheal_env.WEBHOOK_TARGET, "kind": "slack",
                        "url": "http://127.0.0.1:9/file"}]}
    (t,) = build(env, data).notify
    assert (t.kind, t.url) == (TargetKind.SLACK, "http://127.0.0.1:9/file")


@pytest.mark.parametrize(("raw", "url"), [
    ("http://apprise:8000/notify/apprise", "apprise://apprise:8000/apprise"),
    ("https://apprise.example/notify/ops/", "apprises://apprise.example/ops"),
    ("ntfy://ntfy.sh/heal", "ntfy://ntfy.sh/heal"),
], ids=["api-http", "api-https", "apprise-url"])
def test_apprise_url_reaches_the_same_server_through_apprise(raw: str, url: str) -> None:
    (t,) = build({"AUTOHEAL_INTERVAL": "5", "APPRISE_URL": raw}).notify
    assert (t.name, t.kind, t.url) == (autoheal_env.APPRISE_TARGET, TargetKind.APPRISE, url)


def test_variables_healthd_cannot_honour_are_named_in_one_warning() -> None:
    env = {"AUTOHEAL_CONTAINER_LABEL": "all", "POST_RESTART_SCRIPT": "/x.sh",
           "AUTOHEAL_BACKOFF_MULTIPLIER": "3", "AUTOHEAL_WATCHTOWER_COOLDOWN": "300",
           "AUTOHEAL_BACKOFF_RESET_AFTER": "600"}
    mapped = autoheal_env.translate(env)
    warning = mapped.warning()
    assert warning is not None
    for name in ("POST_RESTART_SCRIPT", "AUTOHEAL_BACKOFF_MULTIPLIER=3",
                 "AUTOHEAL_WATCHTOWER_COOLDOWN", "AUTOHEAL_BACKOFF_RESET_AFTER"):
        assert name in warning
    said = mapped.said_at_start()
    assert [level for level, _ in said].count(autoheal_env.WARNING) == 1
    build(env)  # named, never refused


def test_a_multiplier_of_two_is_honoured_silently() -> None:
    assert autoheal_env.translate({"AUTOHEAL_BACKOFF_MULTIPLIER": "2"}).warning() is None


def test_interval_is_accepted_with_a_note_that_healthd_is_event_driven() -> None:
    mapped = autoheal_env.translate({"AUTOHEAL_INTERVAL": "5"})
    assert mapped.problems == () and mapped.warning() is None
    assert any("event-driven" in n for n in mapped.notes)


def test_check_config_report_shows_each_source_and_no_token() -> None:
    env = {"AUTOHEAL_CONTAINER_LABEL": "all", "AUTOHEAL_INTERVAL": "5"}
    data = {"daemon": {"token": "s3cret-s3cret-s3cret"}}
    lines = provenance.report(build(env, data), data, env)
    assert "  watch.mode = 'opt-out'  (AUTOHEAL_CONTAINER_LABEL=all)" in lines
    assert "  daemon.token = (set)  (config.toml)" in lines
    assert not any("s3cret" in line for line in lines)
    assert any(line.startswith("note: AUTOHEAL_INTERVAL") for line in lines)
