"""Bounded in-memory history of one resource series.

Owns: ``Ring``, a fixed-capacity ring buffer of (t, value) samples, and ``Downsampler``, which
keeps a bounded, bucketed (mean per bucket) long series for the seasonal fit.
Must never: do I/O, import docker, sqlite3, time or threading, or grow with uptime.

These two are deliberately mutable objects, unlike the rest of the core: copying a numpy array of
``capacity`` floats on every tick would turn an O(1) append into O(capacity). The forecaster's hot
path (``forecast.step``) never reads them; they only feed the periodic refit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class Ring:
    """A fixed-capacity ring buffer of (t, value) samples; the oldest sample is overwritten.

    ``t`` is epoch seconds, ``value`` is in the series' own unit (bytes, fraction, count).
    Memory is two float64 arrays of ``capacity`` entries, whatever the uptime; one with
    ``keep_times=False`` (a caller that knows its samples' times: ``Downsampler``).
    """

    def __init__(self, capacity: int, keep_times: bool = True) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be >= 1, got {capacity}")
        self._t = np.zeros(capacity, dtype=np.float64) if keep_times else None
        self._v = np.zeros(capacity, dtype=np.float64)
        self._cap = capacity  # an int kept aside: append runs for every series every sweep
        self._next = 0  # index the next sample is written to
        self._size = 0

    @property
    def capacity(self) -> int:
        """Most samples the ring holds."""
        return self._cap

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes its arrays hold (allocated with it, whatever the uptime)."""
        return self._v.nbytes + (self._t.nbytes if self._t is not None else 0)

    def append(self, t: float, value: float) -> None:
        """Add one sample in O(1), overwriting the oldest when full."""
        i = self._next
        if self._t is not None:
            self._t[i] = t
        self._v[i] = value
        i += 1
        self._next = 0 if i == self._cap else i
        if self._size < self._cap:
            self._size += 1

    def clear(self) -> None:
        """Forget every sample (e.g. after the container was recreated)."""
        self._next = 0
        self._size = 0

    def _order(self) -> npt.NDArray[np.intp]:
        start = (self._next - self._size) % self.capacity
        return (start + np.arange(self._size)) % self.capacity

    def times(self) -> FloatArray:
        """Sample times, oldest first, as a new array (epoch seconds)."""
        if self._t is None:
            raise ValueError("this ring keeps no times (keep_times=False)")
        return self._t[self._order()]

    def values(self) -> FloatArray:
        """Sample values, oldest first, as a new array."""
        return self._v[self._order()]

    def last(self) -> tuple[float, float] | None:
        """The newest (t, value), or None when empty."""
        if self._t is None:
            raise ValueError("this ring keeps no times (keep_times=False)")
        if self._size == 0:
            return None
        i = (self._next - 1) % self.capacity
        return float(self._t[i]), float(self._v[i])


class Downsampler:
    """Mean-per-bucket long series with a bounded number of buckets.

    Buckets are ``bucket_s`` seconds wide and aligned to multiples of ``bucket_s`` since the epoch,
    so a seasonal profile fitted on them has a well-defined phase. A bucket is closed when a sample
    lands in a later bucket. Buckets that got no sample (a gap) are filled with the previous
    bucket's mean, because the seasonal fit needs a regular series; a gap longer than ``max_gap``
    buckets restarts the series instead, since a fill that long would invent most of a season.
    """

    def __init__(self, bucket_s: float, capacity: int, max_gap: int | None = None) -> None:
        if bucket_s <= 0:
            raise ValueError(f"bucket_s must be > 0, got {bucket_s}")
        self.bucket_s = float(bucket_s)
        # Closed buckets are contiguous (gaps are filled, or the series restarts), so their
        # start times follow from the open bucket: only the means are kept, half the memory
        # (the learnt cycles' 2-minute series is 1,080 buckets for each series).
        self._ring = Ring(capacity, keep_times=False)
        self._max_gap = capacity // 4 if max_gap is None else max_gap
        self._bucket: int | None = None  # index of the open bucket (floor(t / bucket_s))
        self._sum = 0.0
        self._count = 0

    def __len__(self) -> int:
        """Number of closed buckets held."""
        return len(self._ring)

    @property
    def capacity(self) -> int:
        """Most closed buckets held."""
        return self._ring.capacity

    def add(self, t: float, value: float) -> None:
        """Fold one sample into the open bucket, closing it first if ``t`` is past it. O(1).

        A sample older than the open bucket is ignored: the series only moves forward.
        """
        b = math.floor(t / self.bucket_s)
        if self._bucket is None:
            self._bucket, self._sum, self._count = b, value, 1
            return
        if b < self._bucket:
            return
        if b > self._bucket:
            mean = self._sum / self._count
            self._ring.append(self._bucket * self.bucket_s, mean)
            gap = b - self._bucket - 1
            if gap > self._max_gap:
                self._ring.clear()
            else:
                # Bounded by max_gap, so this loop is O(1) with respect to uptime.
                for k in range(1, gap + 1):
                    self._ring.append((self._bucket + k) * self.bucket_s, mean)
            self._bucket, self._sum, self._count = b, 0.0, 0
        self._sum += value
        self._count += 1

    def values(self) -> FloatArray:
        """Closed bucket means, oldest first (a new array)."""
        return self._ring.values()

    def starts(self) -> FloatArray:
        """Start times of the closed buckets, oldest first (epoch seconds)."""
        n = len(self._ring)
        if n == 0 or self._bucket is None:
            return np.zeros(0, dtype=np.float64)
        # The newest closed bucket is the one before the open one.
        return (self._bucket - n + np.arange(n, dtype=np.float64)) * self.bucket_s

    @property
    def nbytes(self) -> int:
        """Bytes its buffer holds."""
        return self._ring.nbytes
