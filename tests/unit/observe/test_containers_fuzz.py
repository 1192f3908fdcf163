"""Property tests of healthd.observe.containers: any inspect, list or event body (JSON-like
trees, and mutations of the real recorded ones in tests/fixtures/engine/) gives a value with
fields of the declared types; odd or missing fields give defaults, nothing is raised.
"""

from __future__ import annotations

from typing import Any

import pytest

from healthd.observe import containers

# --- inputs the properties below found, kept as plain regression tests ----------------------


@pytest.mark.parametrize("body", [{"Created": 1.0}, {"State": {"StartedAt": True}}],
                         ids=["created-float", "started-bool"])
def test_a_time_that_is_not_a_string_reads_as_unset(body: dict[str, Any]) -> None:
    state = containers.from_inspect(body)
    assert state.created_at == state.started_at == 0.0


@pytest.mark.parametrize(
    "body",
    [{"RestartCount": [None]}, {"HostConfig": {"RestartPolicy": {"MaximumRetryCount": ":"}}},
     {"HostConfig": {"CpuPeriod": ":", "CpuQuota": 50000}},
     {"HostConfig": {"NanoCpus": 10**400, "Memory": float("nan"), "PidsLimit": True}}],
    ids=["list", "text", "text-period", "out-of-range"],
)
def test_a_number_field_that_is_not_a_number_reads_as_zero(body: dict[str, Any]) -> None:
    state = containers.from_inspect(body)
    assert state.restart_count == state.restart_policy_max == 0
    limits = containers.limits_from_inspect(body)
    assert limits.mem_bytes is None and limits.pids is None
    assert limits.cpu_cores in (None, 0.5)


@pytest.mark.parametrize("labels", [True, ["a=b"], "a=b"], ids=["bool", "list", "text"])
def test_labels_that_are_not_an_object_read_as_none(labels: Any) -> None:
    assert containers.from_inspect({"Config": {"Labels": labels}}).labels == ()


@pytest.mark.parametrize("names", [True, {"a": 1}, 5, [], None], ids=str)
def test_list_names_that_are_not_a_list_read_as_no_name(names: Any) -> None:
    assert containers.from_list({"Id": "x", "Names": names}).name == ""


@pytest.mark.parametrize(
    ("times", "expected_ns"),
    [({"timeNano": False}, None), ({"timeNano": False, "time": 2}, 2_000_000_000),
     ({"time": float("inf")}, None), ({"time": float("nan")}, None),
     ({"timeNano": 2**64}, None), ({"time": True}, None)],
    ids=["bool-ns", "bool-ns-seconds", "inf", "nan", "2**64-ns", "bool-seconds"],
)
def test_an_event_time_that_is_not_a_time_is_ignored(times: dict[str, Any],
                                                     expected_ns: int | None) -> None:
    ev = containers.from_event({"Type": "container", "Action": "create", "id": "x", **times})
    assert (ev.time_ns if ev else None) == expected_ns


@pytest.mark.parametrize(("code", "expected"), [("\u00b2", None), ("-1", -1), ("137", 137)],
                         ids=["superscript-two", "negative", "plain"])
def test_an_exit_code_must_be_ascii_digits(code: str, expected: int | None) -> None:
    ev = containers.from_event({"Type": "container", "Action": "die", "id": "x", "timeNano": 1,
                                "Actor": {"Attributes": {"exitCode": code}}})
    assert ev is not None and ev.exit_code == expected
