"""Property tests of healthd.observe.containers: any inspect, list or event body (JSON-like
trees, and mutations of the real recorded ones in tests/fixtures/engine/) gives a value with
fields of the declared types; odd or missing fields give defaults, nothing is raised.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthd.core.model import ContainerState
from healthd.observe import containers
from tests.unit.fuzzing import key_names, mutations, scalars, texts, trees

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "engine"
INSPECTS = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("inspect_*.json"))]
LIST_ROWS = json.loads((FIXTURES / "list_all.json").read_text())
EVENTS = [e for e in json.loads((FIXTURES / "events.json").read_text())
          if e.get("Type") == "container"]


def bodies(recorded: list[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts shaped like ``recorded`` ones: mutations of them, or trees keyed like them."""
    names = sorted({k for r in recorded for k in key_names(r)})
    return st.one_of(
        st.sampled_from(recorded).flatmap(mutations),
        st.dictionaries(st.sampled_from(names), trees(names, max_leaves=20), max_size=8),
    ).filter(lambda b: isinstance(b, dict))


def assert_typed(value: Any) -> None:
    """Every field of the dataclass ``value`` has its declared type (floats finite)."""
    hints = {f.name: f.type for f in dataclasses.fields(value)}
    for name, hint in hints.items():
        v = getattr(value, name)
        if v is None:
            assert "None" in str(hint), (name, v)
        elif str(hint).startswith("tuple"):
            assert isinstance(v, tuple), (name, v)
        elif "float" in str(hint):
            assert isinstance(v, float) and math.isfinite(v), (name, v)
        elif "int" in str(hint):
            assert type(v) is int, (name, v)
        elif "bool" in str(hint):
            assert type(v) is bool, (name, v)
        elif str(hint) == "str" or str(hint).startswith("str |"):
            assert isinstance(v, str), (name, v)


@given(bodies(INSPECTS))
def test_any_inspect_body_gives_a_container_state(body: dict[str, Any]) -> None:
    state = containers.from_inspect(body)
    assert isinstance(state, ContainerState)
    assert_typed(state)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in state.labels)
    limits = containers.limits_from_inspect(body)
    assert limits.mem_bytes is None or (type(limits.mem_bytes) is int and limits.mem_bytes > 0)
    assert limits.pids is None or (type(limits.pids) is int and limits.pids > 0)
    assert limits.cpu_cores is None or (
        isinstance(limits.cpu_cores, float) and 0 < limits.cpu_cores < math.inf)


@given(bodies(LIST_ROWS))
def test_any_list_row_gives_a_summary(row: dict[str, Any]) -> None:
    s = containers.from_list(row)
    assert_typed(s)


@given(bodies(EVENTS))
def test_any_event_gives_an_event_or_none(raw: dict[str, Any]) -> None:
    ev = containers.from_event(raw)
    if ev is not None:
        assert_typed(ev)
        assert ev.id and ev.action


@given(st.one_of(scalars(), st.from_regex(
    r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,12})?(Z|[+-]\d{2}:\d{2})?\Z"), texts()))
def test_any_time_gives_finite_epoch_seconds(value: Any) -> None:
    t = containers.parse_time(value)
    assert isinstance(t, float) and math.isfinite(t)


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
