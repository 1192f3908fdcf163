"""The peak line: blocks' maxima in, a drift line of them and its ETA out (values only)."""

from __future__ import annotations

import pytest

from healthd.foresight import drift, peak


def feed(samples, tau=1200.0, blocks=12, dt_nom=10.0):
    peaks = None
    for t, y in samples:
        peaks = peak.fold(peaks, t, y, tau, blocks, dt_nom, 2.0)
    return peaks


def test_a_block_keeps_its_highest_sample_and_when_it_came():
    peaks = feed([(0.0, 0.5), (10.0, 0.9), (20.0, 0.4)])
    assert peaks == peak.Peaks(0.0, 10.0, 0.9)


def test_a_block_lasts_a_share_of_the_window_but_at_least_four_samples():
    assert peak.block_s(1200.0, 12, 10.0) == 100.0
    assert peak.block_s(1200.0, 12, 60.0) == 240.0  # 20 min / 12 is under four 60 s samples
    assert peak.window_s(1200.0, 12, 60.0) == 12 * 240.0


def test_only_the_maximum_of_a_finished_block_enters_the_line():
    # Blocks of 100 s: samples at 0..90 s are one block, the sample at 100 s starts the next.
    samples = [(float(t), 0.9 if t == 30 else 0.1) for t in range(0, 110, 10)]
    peaks = feed(samples)
    assert peaks is not None
    assert (peaks.start_t, peaks.max_t, peaks.max_v) == (100.0, 100.0, 0.1)
    assert peaks.sums == drift.start(30.0, 0.9)


def test_no_line_until_the_blocks_span_the_window():
    rising = [(float(t), 0.3 + 1e-5 * t) for t in range(0, 1200, 10)]
    peaks = feed(rising)
    assert peaks is not None and peaks.sums is not None and peaks.line is None
    assert peak.eta(peaks, 1190.0, 1.0, 2.0, 2.0) is None


def test_rising_peaks_give_the_time_until_the_peaks_reach_the_limit():
    # Teeth 0.2 tall, 50 s long, on a floor rising 1e-5 a second: the peaks rise at that rate.
    samples = [(float(t), 0.3 + 1e-5 * t + 0.2 * (t % 50) / 50) for t in range(0, 7200, 10)]
    peaks = feed(samples)
    found = peak.eta(peaks, 7190.0, 1.0, 2.0, 2.0)
    assert found is not None
    eta, lower, upper = found
    top_now = 0.3 + 1e-5 * 7190 + 0.2 * 40 / 50  # the newest tooth's top, within a sample
    assert eta == pytest.approx((1.0 - top_now) / 1e-5, rel=0.1)
    assert lower is not None and upper is not None and lower <= eta <= upper


def test_flat_peaks_give_no_eta():
    samples = [(float(t), 0.6 + 0.3 * (t % 50) / 50) for t in range(0, 7200, 10)]
    peaks = feed(samples)
    assert peaks is not None and peaks.line is None
    assert peak.eta(peaks, 7190.0, 1.0, 2.0, 2.0) is None


def test_a_sample_below_the_blocks_maximum_changes_nothing():
    # The forecaster copies its state only when something changed: the same object back.
    peaks = feed([(0.0, 0.5), (10.0, 0.9)])
    assert peak.fold(peaks, 20.0, 0.4, 1200.0, 12, 10.0, 2.0) is peaks
