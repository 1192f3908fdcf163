"""Property tests of healthd.observe.stats: any JSON-like body, and any mutation of the real
recorded bodies in tests/fixtures/docker-stats/, gives Counters or a StatsError, and Counters
give a Usage; nothing else is raised.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthd.observe import stats
from tests.unit.fuzzing import key_names, mutations, texts, trees

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "docker-stats"
BODIES = {p.name: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}
NAMES = sorted({k for b in BODIES.values() for k in key_names(b)})
COUNTERS = ("cpu_total_ns", "mem_usage_bytes", "mem_inactive_file_bytes", "mem_limit_bytes",
            "pids", "pids_limit", "online_cpus")

bodies = st.one_of(trees(NAMES, max_leaves=40),
                   st.sampled_from(sorted(BODIES)).flatmap(lambda n: mutations(BODIES[n])))
timestamps = st.one_of(
    texts(),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,15})?(Z|z|[+-]\d{2}:\d{2})\Z"),
)


def parsed(body: Any) -> stats.Counters | None:
    """parse_api's Counters, None for a StatsError; fails the test on anything else."""
    try:
        c = stats.parse_api(body)
    except stats.StatsError as exc:
        assert str(exc)
        return None
    assert c.t is None or math.isfinite(c.t)
    for name in COUNTERS:
        v = getattr(c, name)
        assert v is None or (type(v) is int and 0 <= v < 2**64), (name, v)
    return c


@given(bodies)
def test_any_body_gives_counters_or_a_stats_error(body: Any) -> None:
    parsed(body)


@pytest.mark.parametrize("name", sorted(BODIES))
def test_the_recorded_bodies_parse(name: str) -> None:
    assert parsed(BODIES[name]) is not None


@given(bodies, bodies, st.floats(allow_nan=False, allow_infinity=False),
       st.one_of(st.none(), st.integers(-(2**63), 2**63)),
       st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
def test_any_two_samples_give_a_usage(prev_body: Any, cur_body: Any, now: float,
                                      mem_limit: int | None, cores: float | None) -> None:
    prev, cur = parsed(prev_body), parsed(cur_body)
    if cur is None:
        return
    u = stats.usage(cur, prev, now=now, mem_limit_bytes=mem_limit, cpu_limit_cores=cores,
                    host_cpus=2)
    for v in (u.cpu_fraction, u.cpu_percent, u.mem_fraction, u.pids_fraction):
        assert v is None or isinstance(v, float)


@given(timestamps)
def test_any_timestamp_gives_epoch_seconds_or_a_stats_error(text: str) -> None:
    try:
        t = stats.parse_timestamp(text)
    except stats.StatsError as exc:
        assert repr(text) in str(exc)
    else:
        assert t is None or math.isfinite(t)


# --- inputs the properties below found, kept as plain regression tests ----------------------


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("cpu_stats", "online_cpus", float("nan")), ("cpu_stats", "online_cpus", float("inf")),
     ("memory_stats", "usage", 10**300), ("memory_stats", "usage", 2**64)],
    ids=["nan", "infinity", "300-digits", "2**64"],
)
def test_a_counter_that_is_not_64_bit_is_a_stats_error(section: str, key: str,
                                                       value: float) -> None:
    body = json.loads((FIXTURES / "engine_cgroupv1_first_sample.json").read_text())
    body[section][key] = value
    with pytest.raises(stats.StatsError, match=f"{key} is not a 64-bit counter"):
        stats.parse_api(body)
