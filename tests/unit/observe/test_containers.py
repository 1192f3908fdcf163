"""healthd.containers: recorded engine JSON (inspect, list, events) in, values out.

The bodies in tests/fixtures/engine/ were recorded from a real dockerd (see its README.md).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from healthd.core.classify import classify
from healthd.core.model import Failure
from healthd.core.settings import ClassifySettings, ThresholdSettings
from healthd.observe.containers import (
    Limits,
    from_event,
    from_inspect,
    from_list,
    limits_from_inspect,
)
from healthd.observe.containers import parse_time as pt

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "engine"
MIB = 1024 * 1024


def body(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def inspect(name: str) -> dict[str, Any]:
    data: dict[str, Any] = body(f"inspect_{name}.json")
    return data


def events() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = body("events.json")
    return data


def epoch(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()  # type: ignore[misc]


T = epoch(2026, 11, 22, 16, 24, 45)


# --- parse_time ---------------------------------------------------------------------------

TIMES = [
    ("nanoseconds", "2026-11-22T16:24:45.195829753Z", T + 0.195829753),
    ("no-fraction", "2026-11-22T16:24:45Z", T),
    ("offset", "2026-11-22T18:24:45.5+02:00", T + 0.5),
    ("naive-is-utc", "2026-11-22T16:24:45", T),
    ("zero-time", "0001-01-01T00:00:00Z", 0.0),
    ("empty", "", 0.0),
    ("none", None, 0.0),
    ("garbage", "yesterday at noon", 0.0),
    ("garbage-with-fraction", "abc.123", 0.0),
]


@pytest.mark.parametrize(("raw", "want"), [t[1:] for t in TIMES], ids=[t[0] for t in TIMES])
def test_parse_time(raw: str | None, want: float) -> None:
    assert pt(raw) == pytest.approx(want, abs=1e-6)


def test_parse_time_keeps_sub_microsecond_order() -> None:
    a = pt("2026-11-22T16:24:51.868374261Z")
    b = pt("2026-11-22T16:24:51.869610293Z")
    assert b - a == pytest.approx(0.001236032, abs=1e-6)


# --- from_inspect -------------------------------------------------------------------------


def test_from_inspect_unhealthy_container() -> None:
    data = inspect("should-restart-unhealthy")
    c = from_inspect(data)
    assert c.id == data["Id"]
    assert c.name == "should-restart-unhealthy"
    assert c.image == "healthd-test/busybox:1"
    assert c.status == "running" and c.running
    assert c.health == "unhealthy"
    assert c.health_failing_streak == 3
    assert c.health_last_output == "checking\n"
    assert c.started_at == pytest.approx(pt("2026-11-22T16:24:45.195829753Z"))
    assert c.finished_at == 0.0  # zero time: never finished
    assert (c.restart_policy, c.restart_policy_max, c.restart_count) == ("on-failure", 3, 0)
    assert c.healthcheck_start_period_s == 5.0
    assert c.label("healthd.grace") == "30"
    assert c.label("com.docker.compose.service") == "api"
    assert list(c.labels) == sorted(c.labels)
    assert (c.deaths, c.stopped_on_purpose, c.is_self) == ((), False, False)


def test_from_inspect_crashed_container() -> None:
    c = from_inspect(inspect("should-restart-crashed"))
    assert (c.status, c.exit_code, c.oom_killed, c.running) == ("exited", 3, False, False)
    assert c.health is None
    assert c.restart_policy == "no"
    assert c.finished_at > 0
    assert c.labels == (("autoheal", "true"),)
    cls = classify(c, None, (), c.finished_at + 1, ClassifySettings(), ThresholdSettings())
    assert cls is not None and cls.failure is Failure.CRASHED


def test_from_inspect_killed_container() -> None:
    c = from_inspect(inspect("should-not-restart-killed"), stopped_on_purpose=True)
    assert (c.status, c.exit_code, c.restart_policy) == ("exited", 137, "unless-stopped")
    assert c.stopped_on_purpose
    assert c.labels == ()


def test_from_inspect_healthy_container() -> None:
    c = from_inspect(inspect("healthy-job"))
    assert (c.health, c.health_failing_streak) == ("healthy", 0)
    assert c.healthcheck_start_period_s == 0.0


def test_from_inspect_carries_event_memory() -> None:
    c = from_inspect(inspect("healthy-job"), deaths=(1.0, 2.0), stopped_on_purpose=True,
                     is_self=True)
    assert (c.deaths, c.stopped_on_purpose, c.is_self) == ((1.0, 2.0), True, True)


def test_from_inspect_tolerates_missing_and_odd_fields() -> None:
    c = from_inspect({"State": None, "Config": {"Labels": None},
                      "HostConfig": {"RestartPolicy": {"Name": ""}}})
    assert (c.id, c.name, c.status, c.health, c.labels) == ("", "", "unknown", None, ())
    assert (c.restart_policy, c.exit_code, c.started_at) == ("no", 0, 0.0)


def test_from_inspect_oom_killed() -> None:
    data = inspect("should-restart-crashed")
    data["State"] = {**data["State"], "OOMKilled": True, "ExitCode": 137}
    c = from_inspect(data)
    assert (c.oom_killed, c.exit_code) == (True, 137)


def test_from_inspect_reads_addresses_and_published_ports() -> None:
    # The shape dockerd 20.10 sends for `-p 127.0.0.1:18080:8080 -p 9090 --expose 7000` on
    # two networks (recorded bodies run with --network none: nothing to read there).
    data = inspect("healthy-job")
    data["NetworkSettings"] = {
        "Networks": {"zeta": {"IPAddress": "172.19.0.5", "GlobalIPv6Address": ""},
                     "alpha": {"IPAddress": "172.18.0.2", "GlobalIPv6Address": "fd00::2"}},
        "Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
                  "9090/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"},
                               {"HostIp": "::", "HostPort": "49153"}],
                  "7000/tcp": None, "53/udp": [{"HostIp": "", "HostPort": "nope"}]}}
    c = from_inspect(data)
    assert c.addresses == ("172.18.0.2", "172.19.0.5", "fd00::2")
    assert c.published == (("8080/tcp", "127.0.0.1", 18080), ("9090/tcp", "0.0.0.0", 49153),
                           ("9090/tcp", "::", 49153))


def test_from_inspect_without_networks_has_no_address() -> None:
    c = from_inspect(inspect("healthy-job"))
    assert (c.addresses, c.published) == ((), ())


# --- from_list ----------------------------------------------------------------------------


def test_from_list_recorded_rows() -> None:
    rows = {s.name: s for s in map(from_list, body("list_all.json"))}
    assert set(rows) == {"healthy-job", "should-restart-unhealthy", "should-restart-crashed",
                         "should-not-restart-killed"}
    assert rows["should-restart-unhealthy"].health == "unhealthy"
    assert rows["should-restart-unhealthy"].fingerprint == ("running", "unhealthy")
    assert rows["should-restart-crashed"].health is None
    assert rows["should-restart-crashed"].state == "exited"


def test_from_list_recorded_healthy_row_matches_inspect_fingerprint() -> None:
    rows = {s.name: s for s in map(from_list, body("list_all.json"))}
    c = from_inspect(inspect("healthy-job"))
    assert rows["healthy-job"].fingerprint == (c.status, c.health) == ("running", "healthy")


STATUS = [
    pytest.param("Up 8 seconds (unhealthy)", "unhealthy", id="unhealthy"),
    pytest.param("Up 1 second (healthy)", "healthy", id="healthy"),
    pytest.param("Up 3 seconds (health: starting)", "starting", id="starting"),
    pytest.param("Up 2 hours", None, id="no-healthcheck"),
    pytest.param("Exited (137) 1 second ago", None, id="exited"),
    pytest.param("", None, id="empty"),
]


@pytest.mark.parametrize(("status", "health"), STATUS)
def test_from_list_health_from_status_text(status: str, health: str | None) -> None:
    s = from_list({"Id": "abc", "Names": ["/web"], "State": "running", "Status": status})
    assert (s.id, s.name, s.health) == ("abc", "web", health)


def test_from_list_without_names_or_state() -> None:
    s = from_list({"Id": "abc"})
    assert (s.name, s.state, s.health) == ("", "unknown", None)


# --- from_event ---------------------------------------------------------------------------


def _recorded(action: str, name: str) -> dict[str, Any]:
    return next(e for e in events()
                if e.get("Action") == action and e["Actor"]["Attributes"].get("name") == name)


def test_from_event_die_with_exit_code() -> None:
    raw = _recorded("die", "should-restart-crashed")
    ev = from_event(raw)
    assert ev is not None
    assert (ev.action, ev.verb, ev.name, ev.exit_code, ev.signal) == (
        "die", "die", "should-restart-crashed", 3, None)
    assert ev.id == raw["Actor"]["ID"]
    assert ev.time_ns == raw["timeNano"]
    assert ev.time == pytest.approx(raw["timeNano"] / 1e9)


def test_from_event_health_status() -> None:
    ev = from_event(_recorded("health_status: unhealthy", "should-restart-unhealthy"))
    assert ev is not None
    assert (ev.action, ev.verb, ev.exit_code) == ("health_status: unhealthy", "health_status",
                                                  None)


def test_from_event_kill_with_signal() -> None:
    ev = from_event(_recorded("kill", "should-not-restart-killed"))
    assert ev is not None
    assert (ev.verb, ev.signal, ev.exit_code) == ("kill", "9", None)


def test_from_event_non_container_types_are_none() -> None:
    others = [e for e in events() if e.get("Type") != "container"]
    assert {e["Type"] for e in others} == {"image", "network"}
    assert [from_event(e) for e in others] == [None] * len(others)


def test_from_event_every_recorded_container_event_parses() -> None:
    parsed = [from_event(e) for e in events() if e.get("Type") == "container"]
    assert parsed and all(p is not None and p.id and p.time_ns > 0 for p in parsed)


def test_from_event_old_style_message_without_type_or_actor() -> None:
    ev = from_event({"status": "die", "id": "abc", "time": 1_700_000_000})
    assert ev is not None
    assert (ev.id, ev.action, ev.time_ns, ev.name) == ("abc", "die", 1_700_000_000_000_000_000, "")


@pytest.mark.parametrize("code,want", [("-1", -1), ("abc", None), ("", None)],
                         ids=["negative", "garbage", "empty"])
def test_from_event_exit_code_parsing(code: str, want: int | None) -> None:
    ev = from_event({"Type": "container", "Action": "die", "timeNano": 5,
                     "Actor": {"ID": "abc", "Attributes": {"exitCode": code}}})
    assert ev is not None and ev.exit_code == want


MALFORMED = [
    ("empty", {}),
    ("no-id", {"Type": "container", "Action": "die", "Actor": {"Attributes": {}}}),
    ("no-action", {"Type": "container", "Actor": {"ID": "abc"}}),
    ("actor-not-a-dict", {"Type": "container", "Action": "die", "Actor": "abc"}),
]


@pytest.mark.parametrize("raw", [m for _, m in MALFORMED], ids=[i for i, _ in MALFORMED])
def test_from_event_malformed_is_none(raw: dict[str, Any]) -> None:
    assert from_event(raw) is None


def test_from_event_malformed_time_is_none() -> None:
    raw = {"Type": "container", "Action": "die", "Actor": {"ID": "abc"}, "time": "soon"}
    assert from_event(raw) is None


# --- limits_from_inspect ------------------------------------------------------------------


def test_limits_from_recorded_inspect() -> None:
    assert limits_from_inspect(inspect("should-restart-unhealthy")) == Limits(64 * MIB, 0.5, 50)
    assert limits_from_inspect(inspect("should-restart-crashed")) == Limits(None, None, None)


LIMITS = [
    ("memory", {"Memory": 268435456}, Limits(268435456, None, None)),
    ("memory-zero-unlimited", {"Memory": 0}, Limits(None, None, None)),
    ("nano-cpus", {"NanoCpus": 1_500_000_000}, Limits(None, 1.5, None)),
    ("quota-over-period", {"CpuQuota": 50000, "CpuPeriod": 100000}, Limits(None, 0.5, None)),
    ("quota-several-cores", {"CpuQuota": 200000, "CpuPeriod": 50000}, Limits(None, 4.0, None)),
    ("quota-minus-one", {"CpuQuota": -1, "CpuPeriod": 100000}, Limits(None, None, None)),
    ("nano-cpus-win", {"NanoCpus": 2_000_000_000, "CpuQuota": 50000, "CpuPeriod": 100000},
     Limits(None, 2.0, None)),
    ("pids", {"PidsLimit": 100}, Limits(None, None, 100)),
    ("pids-zero", {"PidsLimit": 0}, Limits(None, None, None)),
    ("pids-minus-one", {"PidsLimit": -1}, Limits(None, None, None)),
    ("pids-null", {"PidsLimit": None}, Limits(None, None, None)),
    ("no-host-config", None, Limits(None, None, None)),
]


@pytest.mark.parametrize(("host", "want"), [c[1:] for c in LIMITS], ids=[c[0] for c in LIMITS])
def test_limits_from_inspect(host: dict[str, Any] | None, want: Limits) -> None:
    data: dict[str, Any] = {} if host is None else {"HostConfig": host}
    assert limits_from_inspect(data) == want


def test_limits_cpu_quota_without_period_uses_kernel_default() -> None:
    recorded = inspect("should-not-restart-killed")  # --cpu-quota 50000, no --cpu-period
    assert (recorded["HostConfig"]["CpuQuota"], recorded["HostConfig"]["CpuPeriod"]) == (50000, 0)
    assert limits_from_inspect(recorded).cpu_cores == 0.5



def test_inspect_gives_network_mode_image_id_and_creation_time() -> None:
    data = json.loads((FIXTURES / "inspect_healthy-job.json").read_text())
    c = from_inspect(data)
    assert c.network_mode == data["HostConfig"]["NetworkMode"]
    assert c.image_id.startswith("sha256:")
    assert c.created_at == pt(data["Created"])


def test_image_tags_map_each_tag_to_its_image_and_skip_odd_rows() -> None:
    from healthd.observe.containers import image_tags
    rows = [{"Id": "sha256:a", "RepoTags": ["app:1", "app:latest"]},
            {"Id": "sha256:b", "RepoTags": ["<none>:<none>"]},
            {"Id": 3}, "junk", {"Id": "sha256:c", "RepoTags": None}]
    assert image_tags(rows) == {"app:1": "sha256:a", "app:latest": "sha256:a"}
    assert image_tags({"not": "a list"}) == {}


def test_from_event_create_carries_its_compose_project_from_the_labels() -> None:
    ev = from_event(_recorded("create", "should-restart-unhealthy"))
    assert ev is not None
    assert (ev.verb, ev.group) == ("create", "shop")
    other = from_event(_recorded("kill", "should-not-restart-killed"))
    assert other is not None and other.group == ""
