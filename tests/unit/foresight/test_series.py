"""Bounded ring buffer and downsampler: memory stays fixed, order and means are right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from healthd.foresight.series import Downsampler, Ring


@pytest.mark.parametrize(
    ("capacity", "n"), [(5, 3), (5, 5), (5, 12)], ids=["part-full", "exactly-full", "wrapped"]
)
def test_ring_keeps_the_newest_samples_oldest_first(capacity, n):
    ring = Ring(capacity)
    for i in range(n):
        ring.append(float(i), 10.0 * i)
    keep = list(range(max(0, n - capacity), n))
    assert len(ring) == min(n, capacity)
    assert ring.times().tolist() == [float(i) for i in keep]
    assert ring.values().tolist() == [10.0 * i for i in keep]
    assert ring.last() == (float(n - 1), 10.0 * (n - 1))


def test_ring_memory_does_not_grow_with_appends():
    ring = Ring(100)
    nbytes = ring._t.nbytes + ring._v.nbytes
    for i in range(10_000):
        ring.append(float(i), float(i))
    assert ring._t.nbytes + ring._v.nbytes == nbytes
    assert len(ring) == ring.capacity == 100


def test_ring_copies_are_detached_from_the_buffer():
    ring = Ring(3)
    ring.append(1.0, 1.0)
    values = ring.values()
    values[0] = 99.0
    assert ring.values().tolist() == [1.0]


def test_empty_ring_and_clear():
    ring = Ring(3)
    assert ring.last() is None
    ring.append(1.0, 2.0)
    ring.clear()
    assert len(ring) == 0
    assert ring.values().size == 0


def test_ring_rejects_zero_capacity():
    with pytest.raises(ValueError, match="capacity"):
        Ring(0)


def test_downsampler_keeps_the_mean_of_each_closed_bucket():
    down = Downsampler(bucket_s=60.0, capacity=10)
    for t, v in [(0, 1.0), (20, 2.0), (59, 3.0), (60, 10.0), (119, 20.0), (120, 0.0)]:
        down.add(float(t), v)
    assert down.values().tolist() == [2.0, 15.0]
    assert down.starts().tolist() == [0.0, 60.0]


def test_downsampler_fills_a_short_gap_with_the_previous_mean():
    down = Downsampler(bucket_s=60.0, capacity=10, max_gap=3)
    down.add(0.0, 5.0)
    down.add(200.0, 7.0)  # buckets 1 and 2 got nothing
    down.add(240.0, 7.0)
    assert down.values().tolist() == [5.0, 5.0, 5.0, 7.0]
    assert down.starts().tolist() == [0.0, 60.0, 120.0, 180.0]


def test_downsampler_restarts_after_a_long_gap():
    down = Downsampler(bucket_s=60.0, capacity=10, max_gap=3)
    down.add(0.0, 5.0)
    down.add(60.0, 6.0)
    down.add(10_000.0, 7.0)  # far beyond max_gap buckets
    assert len(down) == 0
    down.add(10_060.0, 8.0)
    assert down.values().tolist() == [7.0]


def test_downsampler_is_bounded_and_ignores_samples_from_the_past():
    down = Downsampler(bucket_s=10.0, capacity=4)
    for i in range(100):
        down.add(float(i * 10), float(i))
    down.add(5.0, 1000.0)  # older than the open bucket
    assert len(down) == 4
    np.testing.assert_array_equal(down.values(), [95.0, 96.0, 97.0, 98.0])


def test_downsampler_keeps_only_the_means_and_derives_the_bucket_starts():
    down = Downsampler(bucket_s=120.0, capacity=1080)
    assert down.nbytes == 1080 * 8  # no times array: the learnt cycles' buffer, per series
    t0 = 1_765_000_000.0
    for i in range(10_000):  # wraps the ring, with a gap of two buckets filled on the way
        if 9_000 <= i < 9_009:
            continue
        down.add(t0 + 40.0 * i, float(i))
    starts = down.starts()
    assert len(starts) == len(down) == 1080
    np.testing.assert_array_equal(np.diff(starts), 120.0)
    # The newest closed bucket is the one before the bucket the last sample opened.
    assert starts[-1] == math.floor((t0 + 40.0 * 9_999) / 120.0) * 120.0 - 120.0
