"""healthd.core.rates: counter increases across resets, ratios, histogram quantiles."""

from __future__ import annotations

import math

import pytest

from healthd.core import logcount, rates
from healthd.core.rates import Scrape

INF = math.inf

INCREASES = [
    ("monotonic", [(0, 10), (15, 20), (30, 35)], 25.0),
    ("reset-to-zero", [(0, 100), (15, 120), (30, 0), (45, 5)], 25.0),
    ("reset-mid-growth", [(0, 100), (15, 110), (30, 4)], 14.0),
    ("two-resets", [(0, 50), (15, 3), (30, 8), (45, 2)], 10.0),
    ("flat", [(0, 7), (15, 7)], 0.0),
    ("one-sample", [(0, 7)], 0.0),
    ("empty", [], 0.0),
]


@pytest.mark.parametrize(("samples", "want"), [c[1:] for c in INCREASES],
                         ids=[c[0] for c in INCREASES])
def test_increase_across_counter_resets(samples: list[tuple[float, float]], want: float) -> None:
    assert rates.increase(samples) == pytest.approx(want)


def test_error_ratio_across_a_reset_of_both_counters() -> None:
    req = [(0, 1000), (15, 1100), (30, 20), (45, 120)]  # +100, +20, +100 = 220
    err = [(0, 50), (15, 60), (30, 11), (45, 33)]  # +10, +11, +22 = 43
    assert rates.error_ratio(req, err) == pytest.approx(43 / 220)


def test_error_ratio_without_traffic_is_unknown() -> None:
    assert rates.error_ratio([(0, 5), (15, 5)], [(0, 1), (15, 1)]) is None


def test_error_ratio_is_clamped_to_one() -> None:
    assert rates.error_ratio([(0, 0), (15, 10)], [(0, 0), (15, 20)]) == 1.0


BUCKETS = ((0.1, 50.0), (0.5, 90.0), (1.0, 95.0), (2.5, 100.0), (INF, 100.0))
QUANTILES = [
    ("median-in-first-bucket", 0.5, BUCKETS, 0.1),
    ("p90-at-a-bound", 0.9, BUCKETS, 0.5),
    ("p95-at-a-bound", 0.95, BUCKETS, 1.0),
    ("p99-interpolated", 0.99, BUCKETS, 1.0 + 1.5 * 4 / 5),
    ("p25-interpolated-from-zero", 0.25, BUCKETS, 0.05),
    ("in-inf-bucket-gives-highest-bound", 0.99,
     ((0.1, 10.0), (0.5, 20.0), (INF, 100.0)), 0.5),
    ("unsorted-input", 0.5, tuple(reversed(BUCKETS)), 0.1),
]


@pytest.mark.parametrize(("q", "buckets", "want"), [c[1:] for c in QUANTILES],
                         ids=[c[0] for c in QUANTILES])
def test_quantile_from_histogram_buckets(q: float, buckets: rates.Buckets, want: float) -> None:
    assert rates.quantile(q, buckets) == pytest.approx(want)


@pytest.mark.parametrize("buckets", [(), ((0.1, 0.0), (INF, 0.0)), ((0.1, 3.0), (1.0, 5.0))],
                         ids=["none", "no-observations", "no-inf-bucket"])
def test_quantile_unknown(buckets: rates.Buckets) -> None:
    assert rates.quantile(0.95, buckets) is None


def test_bucket_increase_handles_a_reset_per_bucket() -> None:
    a = ((0.5, 100.0), (INF, 110.0))
    b = ((0.5, 120.0), (INF, 140.0))
    c = ((0.5, 5.0), (INF, 10.0))  # the process restarted
    assert rates.bucket_increase([a, b, c]) == ((0.5, 25.0), (INF, 40.0))


def test_scrape_window_reads_ratio_and_latency_over_the_window_only() -> None:
    old = Scrape(0, requests=0, errors=0, buckets=((0.5, 0.0), (INF, 0.0)))
    s1 = Scrape(100, requests=1000, errors=0, buckets=((0.5, 1000.0), (INF, 1000.0)))
    s2 = Scrape(200, requests=1100, errors=30, buckets=((0.5, 1010.0), (INF, 1100.0)))
    ratio, lat = rates.scrape_window([old, s1, s2], now=200, window_s=120, q=0.95)
    assert ratio == pytest.approx(0.3)
    assert lat == pytest.approx(0.5)  # 90 of 100 new observations above 0.5 s


def test_scrape_window_needs_two_scrapes() -> None:
    assert rates.scrape_window([Scrape(0, 1, 0)], 0, 60, 0.95) == (None, None)


def test_sample_quantile_nearest_rank() -> None:
    assert rates.sample_quantile(0.95, [0.01] * 19 + [2.0]) == 0.01
    assert rates.sample_quantile(0.95, [0.01] * 18 + [2.0, 2.0]) == 2.0
    assert rates.sample_quantile(0.5, []) is None


def test_log_counts_keep_bounded_minutes_and_rate_over_window() -> None:
    c = logcount.LogCounts()
    for minute in range(30):
        c = logcount.add(c, minute * 60 + 5, 6, keep=5, last=f"ERROR {minute}")
    assert len(c.minutes) == 5
    assert logcount.per_minute(c, now=29 * 60 + 10, window_s=120) == 6.0
    assert c.last_match == "ERROR 29"


def test_log_counts_rate_is_zero_once_the_window_passes() -> None:
    c = logcount.add(logcount.LogCounts(), 0, 100, keep=10)
    assert logcount.per_minute(c, now=600, window_s=120) == 0.0


def test_last_match_is_truncated_and_cleaned() -> None:
    line = "ERROR\x1b[31m " + "x" * 500
    got = logcount.truncate(line)
    assert len(got) == logcount.EVIDENCE_CHARS and got.endswith("…") and "\x1b" not in got
