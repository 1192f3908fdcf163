"""healthd.stats: recorded engine stats bodies in, counters and Usage out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from healthd.observe import stats
from healthd.observe.stats import Counters, StatsError

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "docker-stats"


def body(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


# file, cgroup version, usage, inactive file, working set, reported limit, pids, pids limit,
# cpu total ns, online cpus, read time
CASES = [
    ("engine_cgroupv1_first_sample.json", 1, 421888, 0, 421888, 67108864, 1, None,
     27031146, 2, "2026-11-22T16:15:31.454380264Z"),
    ("engine_cgroupv1_limited.json", 1, 8945664, 8388608, 557056, 67108864, 1, 50,
     28302273, 2, "2026-11-22T16:21:53.833753013Z"),
    ("engine_cgroupv1_unlimited.json", 1, 319488, 0, 319488, 25276510208, 1, None,
     28501880, 2, "2026-11-22T16:21:54.83879478Z"),
    ("otel_dockerstats_single_container_cgroupv1_stats.json", 1, 2887680, 2162688, 724992,
     10449559552, 1, None, 43620018, 8, "2022-07-06T04:27:03.0439251Z"),
    ("otel_dockerstats_cgroups_v2_stats.json", 2, 234647552, 0, 234647552, 268435456, 1, 4694,
     999478000, 2, "2023-04-25T11:03:28.719828114Z"),
    ("otel_dockerstats_pids_stats_max_cgroupv2_stats.json", 2, 2240512, 1892352, 348160,
     2063048704, 1, 2192, 10935000, 2, "2023-04-24T12:23:08.456710245Z"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "version", "usage", "inactive", "ws", "limit", "pids", "pids_limit", "cpu_ns",
     "cpus", "read"),
    CASES,
    ids=[c[0].removesuffix(".json") for c in CASES],
)  # fmt: skip
def test_parse_api_reads_the_counters_of_every_fixture(
    name: str, version: int, usage: int, inactive: int, ws: int, limit: int, pids: int,
    pids_limit: int | None, cpu_ns: int, cpus: int, read: str,
) -> None:  # fmt: skip
    c = stats.parse_api(body(name))
    assert c.cgroup_version == version
    assert c.mem_usage_bytes == usage
    assert c.mem_inactive_file_bytes == inactive
    assert stats.working_set(c.mem_usage_bytes, c.mem_inactive_file_bytes) == ws
    assert c.mem_limit_bytes == limit
    assert (c.pids, c.pids_limit) == (pids, pids_limit)
    assert c.cpu_total_ns == cpu_ns
    assert c.online_cpus == cpus
    assert c.t == stats.parse_timestamp(read)
    assert c.source == "api"


def test_all_fixtures_are_covered() -> None:
    assert {c[0] for c in CASES} | {"engine_cgroupv1_stopped.json"} == {
        p.name for p in FIXTURES.glob("*.json")
    }


def test_first_sample_usage_has_memory_and_no_cpu() -> None:
    c = stats.parse_api(body("engine_cgroupv1_limited.json"))
    u = stats.usage(c, None, now=100.0, mem_limit_bytes=67108864, pids_limit=50)
    assert (u.t, u.source) == (100.0, "api")
    assert u.mem_bytes == 557056
    assert u.mem_fraction == pytest.approx(557056 / 67108864)
    assert u.pids_fraction == pytest.approx(1 / 50)
    assert u.cpu_fraction is None and u.cpu_percent is None


@pytest.mark.parametrize(
    ("hint", "expected"),
    [(None, 25276510208), (0, None), (-1, None), (134217728, 134217728)],
    ids=["unknown-uses-reported", "zero-unlimited", "negative-unlimited", "inspect-wins"],
)
def test_inspect_memory_limit_is_the_authority(hint: int | None, expected: int | None) -> None:
    # An unlimited container's body reports the host's memory as its limit.
    c = stats.parse_api(body("engine_cgroupv1_unlimited.json"))
    assert stats.usage(c, None, now=0.0, mem_limit_bytes=hint).mem_limit_bytes == expected


def test_pids_limit_hint_zero_means_unlimited() -> None:
    c = stats.parse_api(body("otel_dockerstats_cgroups_v2_stats.json"))
    assert stats.usage(c, None, now=0.0).pids_limit == 4694
    assert stats.usage(c, None, now=0.0, pids_limit=0).pids_limit is None


def test_stopped_container_body_gives_no_time_no_cpu_no_memory() -> None:
    c = stats.parse_api(body("engine_cgroupv1_stopped.json"))
    assert c == Counters(t=None, source="api")
    u = stats.usage(c, None, now=5.0)
    assert (u.mem_bytes, u.mem_limit_bytes, u.pids, u.cpu_fraction) == (None, None, None, None)


def sample(t: float | None, cpu_ns: int | None, cpus: int | None = 2) -> Counters:
    return Counters(t=t, cpu_total_ns=cpu_ns, online_cpus=cpus)


@pytest.mark.parametrize(
    ("prev", "cur", "limit_cores", "host_cpus", "fraction", "percent"),
    [
        (sample(10.0, 0), sample(12.0, 1_000_000_000), 0.5, None, 1.0, 50.0),
        (sample(10.0, 0), sample(11.0, 250_000_000), None, 4, 0.0625, 25.0),
        (sample(10.0, 0), sample(11.0, 1_000_000_000), None, None, 0.5, 100.0),
        (sample(10.0, 0), sample(11.0, 2_000_000_000), 1.5, 8, 2 / 1.5, 200.0),
        (sample(10.0, 5), sample(10.0, 9), None, 2, None, None),
        (sample(10.0, 900), sample(11.0, 100), None, 2, None, None),
        (sample(None, 0), sample(11.0, 100), None, 2, None, None),
        (sample(10.0, None), sample(11.0, 100), None, 2, None, None),
        (sample(10.0, 0), sample(11.0, 1_000_000_000, cpus=None), None, None, None, 100.0),
    ],
    ids=["quota-busy", "no-quota-host-cpus", "online-cpus-fallback", "over-quota",
         "no-time-passed", "counter-reset", "no-prev-time", "no-prev-cpu", "no-core-count"],
)  # fmt: skip
def test_cpu_from_two_samples(
    prev: Counters, cur: Counters, limit_cores: float | None, host_cpus: int | None,
    fraction: float | None, percent: float | None,
) -> None:  # fmt: skip
    u = stats.usage(cur, prev, now=cur.t or 0.0, cpu_limit_cores=limit_cores,
                    host_cpus=host_cpus)  # fmt: skip
    assert u.cpu_fraction == (None if fraction is None else pytest.approx(fraction))
    assert u.cpu_percent == (None if percent is None else pytest.approx(percent))


def test_cpu_between_two_recorded_bodies() -> None:
    # Two real bodies 1.005 s apart of different containers stand in for two samples.
    a = stats.parse_api(body("engine_cgroupv1_limited.json"))
    b = stats.parse_api(body("engine_cgroupv1_unlimited.json"))
    assert a.t is not None and b.t is not None
    u = stats.usage(b, a, now=0.0, cpu_limit_cores=0.5)
    rate = (28501880 - 28302273) / ((b.t - a.t) * 1e9)
    assert u.cpu_percent == pytest.approx(rate * 100)
    assert u.cpu_fraction == pytest.approx(rate / 0.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T16:15:31.454380264Z", 1795364131.454380264),
        ("2026-11-22T16:15:31Z", 1795364131.0),
        ("2026-11-22T17:15:31.5+01:00", 1795364131.5),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
    ],
    ids=["nanoseconds", "whole-seconds", "offset", "go-zero-time", "empty", "null"],
)
def test_parse_timestamp(text: str | None, expected: float | None) -> None:
    assert stats.parse_timestamp(text) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    "bad",
    [[], "x", None, {"memory_stats": []}, {"memory_stats": {"usage": "12"}},
     {"cpu_stats": {"cpu_usage": {"total_usage": True}}}, {"memory_stats": {"usage": -1}},
     {"read": "yesterday"}, {"read": 12}],
    ids=["list", "string", "null", "section-not-object", "string-counter", "bool-counter",
         "negative-counter", "bad-time", "numeric-time"],
)  # fmt: skip
def test_malformed_bodies_raise_stats_error(bad: object) -> None:
    with pytest.raises(StatsError):
        stats.parse_api(bad)


@pytest.mark.parametrize(
    "odd",
    [{}, {"memory_stats": None, "cpu_stats": None, "pids_stats": None},
     {"memory_stats": {"usage": None, "stats": None, "limit": None}},
     {"cpu_stats": {"cpu_usage": {}}, "read": "2023-04-25T11:03:28Z"}],
    ids=["empty", "null-sections", "null-fields", "missing-cpu-total"],
)  # fmt: skip
def test_missing_or_null_fields_are_none_not_crashes(odd: dict[str, Any]) -> None:
    c = stats.parse_api(odd)
    assert c.mem_usage_bytes is None and c.cpu_total_ns is None and c.pids is None
    u = stats.usage(c, c, now=1.0)
    assert u.mem_bytes is None and u.cpu_fraction is None


def test_sentinel_limits_are_unlimited() -> None:
    assert stats.limit_or_none(9223372036854771712) is None
    assert stats.limit_or_none(0) is None
    assert stats.limit_or_none(None) is None
    assert stats.limit_or_none(4096) == 4096


@pytest.mark.parametrize(
    ("usage", "inactive", "expected"),
    [(100, 30, 70), (100, None, 100), (100, 100, 100), (100, 150, 100), (None, 5, None)],
    ids=["subtract", "no-cache-figure", "cache-equals-usage", "cache-above-usage", "no-usage"],
)
def test_working_set_matches_the_docker_cli(
    usage: int | None, inactive: int | None, expected: int | None
) -> None:
    assert stats.working_set(usage, inactive) == expected


@pytest.mark.parametrize(
    ("nano", "quota", "period", "cores"),
    [(500_000_000, 0, 0, 0.5), (0, 150_000, 100_000, 1.5), (0, 50_000, 0, 0.5),
     (0, -1, 100_000, None), (None, None, None, None), (2_000_000_000, 50_000, 100_000, 2.0)],
    ids=["nano-cpus", "quota-period", "default-period", "no-quota", "nothing", "nano-wins"],
)  # fmt: skip
def test_cpu_limit_cores_from_inspect(
    nano: int | None, quota: int | None, period: int | None, cores: float | None
) -> None:
    assert stats.cpu_limit_cores(nano, quota, period) == cores
