"""Property tests of healthd.observe.stats: any JSON-like body, and any mutation of the real
recorded bodies in tests/fixtures/docker-stats/, gives Counters or a StatsError, and Counters
give a Usage; nothing else is raised.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthd.observe import stats

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "docker-stats"

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
