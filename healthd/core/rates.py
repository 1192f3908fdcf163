"""Counters, windows and histogram quantiles over scraped samples (pure).

Owns: the arithmetic that turns Prometheus counter and histogram samples into an increase
over a window (correct across counter resets, as PromQL's ``increase`` is), an error ratio,
and a quantile interpolated from cumulative buckets (as PromQL's ``histogram_quantile``).
Must never: fetch, parse text or read the clock; samples and ``now`` are values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

# (epoch seconds, counter value)
Sample = tuple[float, float]
# Cumulative histogram buckets: (upper bound "le", cumulative count), +Inf included.
Buckets = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Scrape:
    """One scrape of an application's metrics, reduced to what healthd reads.

    requests/errors: counter totals (None when the endpoint lacks them); buckets: the
    latency histogram's cumulative buckets summed over its other labels (empty without it).
    """

    at: float
    requests: float | None = None
    errors: float | None = None
    buckets: Buckets = ()


def within(samples: Sequence[Sample], now: float, window_s: float) -> list[Sample]:
    """The samples no older than ``window_s`` seconds before ``now``, oldest first."""
    return [s for s in samples if now - s[0] <= window_s]


def increase(samples: Sequence[Sample]) -> float:
    """How much a counter grew along ``samples`` (oldest first), across resets.

    A fall means the process restarted and its counter began again at zero: the value
    after the fall is all new growth (PromQL ``increase`` does the same, unextrapolated).
    """
    total = 0.0
    for (_, prev), (_, cur) in itertools.pairwise(samples):
        total += cur - prev if cur >= prev else cur
    return total


def error_ratio(requests: Sequence[Sample], errors: Sequence[Sample]) -> float | None:
    """Errors over requests along the same window; None without traffic to divide by.

    A ratio above 1 (errors counted where requests are not) is clamped to 1.
    """
    req = increase(requests)
    if req <= 0:
        return None
    return min(1.0, max(0.0, increase(errors) / req))


def bucket_increase(scrapes: Sequence[Buckets]) -> Buckets:
    """Per-bucket increase along a sequence of cumulative bucket sets (oldest first).

    Only bounds present in every set count; a reset in any bucket is handled per bucket
    like a counter's. The result stays cumulative (each le's count includes the lower).
    """
    if len(scrapes) < 2:
        return ()
    common = set.intersection(*(set(le for le, _ in b) for b in scrapes))
    out = []
    for le in sorted(common):
        series = [(float(i), dict(b)[le]) for i, b in enumerate(scrapes)]
        out.append((le, increase(series)))
    return tuple(out)


def quantile(q: float, buckets: Buckets) -> float | None:
    """The ``q`` quantile (0..1) of cumulative ``buckets``, interpolated linearly within
    the bucket it falls in (Prometheus' ``histogram_quantile``). Seconds when the buckets
    are seconds; None without observations or without a +Inf bucket.

    When it falls in the +Inf bucket the highest finite bound is returned: all healthd
    can say is "at least this".
    """
    if not buckets or not 0 <= q <= 1:
        return None
    ordered = sorted(buckets)
    if not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def sample_quantile(q: float, values: Sequence[float]) -> float | None:
    """The ``q`` quantile (0..1) of raw values (probe latencies), nearest rank; None when
    there are none."""
    if not values:
        return None
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[idx]


def scrape_window(scrapes: Sequence[Scrape], now: float,
                  window_s: float, q: float) -> tuple[float | None, float | None]:
    """(error ratio, latency quantile in s) over the scrapes of the last ``window_s``.

    Needs two scrapes in the window; either value is None when its metrics are missing.
    """
    recent = [s for s in scrapes if now - s.at <= window_s]
    if len(recent) < 2:
        return None, None
    ratio = None
    req = [(s.at, s.requests) for s in recent if s.requests is not None]
    err = [(s.at, s.errors) for s in recent if s.errors is not None]
    if len(req) >= 2 and len(err) >= 2:
        ratio = error_ratio(req, err)
    hist = [s.buckets for s in recent if s.buckets]
    lat = quantile(q, bucket_increase(hist)) if len(hist) >= 2 else None
    return ratio, lat
