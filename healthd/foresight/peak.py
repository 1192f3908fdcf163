"""The peak line: a drift line through the maxima of short blocks of samples, O(1) per sample.

Owns: ``Peaks`` (the running maximum of the current block, the drift sums of the finished
blocks' maxima and their line while it rises significantly), ``fold`` (one sample in; a
block's maximum goes into the sums when the block ends, and the line is judged then, once a
block, not on every sample) and ``eta`` (when the peaks reach a limit).
Must never: keep history, import time or I/O, or decide an alarm (``foresight.forecast`` does).

Why a third line next to the drift and floor lines. A garbage-collected heap sampled every
minute or more, with teeth of a few minutes, shows no regular falls: each sample lands at a
random point of its tooth, so the series is a band as wide as the teeth around the leak. The
floor line needs regular falls; the drift line needs the leak to rise by two of the band's
sds within one window, which a slow leak under tall teeth never does before it is too late.
The highest sample of each block of several samples sits near the top of the band, whatever
the phase: those maxima scatter by a fraction of the band, and they are exactly what reaches
the limit. So the peaks are tested for a rise, and forecast, on their own line.
"""

from __future__ import annotations

from typing import NamedTuple

from healthd.foresight import drift

MIN_BLOCK_SAMPLES = 4  # samples a block spans at least: the maximum of fewer is no peak


class Peaks(NamedTuple):
    """The peak line of one series: the block being gathered and the line of finished ones."""

    start_t: float  # when the current block started
    max_t: float  # its highest sample so far: when, and the value
    max_v: float
    sums: drift.Drift | None = None  # the finished blocks' maxima
    line: drift.Line | None = None  # their line at ``sums.last_t``, only while it rises


def block_s(tau: float, blocks: int, dt_nom: float) -> float:
    """Seconds a block spans: ``tau / blocks``, but at least ``MIN_BLOCK_SAMPLES`` samples."""
    return max(tau / blocks, MIN_BLOCK_SAMPLES * dt_nom)


def window_s(tau: float, blocks: int, dt_nom: float) -> float:
    """The peak line's window (mean age, s): a drift window, and at least ``blocks`` blocks."""
    return max(tau, blocks * block_s(tau, blocks, dt_nom))


def fold(peaks: Peaks | None, t: float, y: float, tau: float, blocks: int, dt_nom: float,
         drift_z: float) -> Peaks:
    """Fold the sample ``(t, y)`` in. Once the block has lasted ``block_s``, its maximum goes
    into the sums, the sample starts the next block, and the line is kept if it spans its
    window and rose by more than ``drift_z`` of its residual sds over it (``drift.significant``,
    the drift line's own test)."""
    if peaks is None:
        return Peaks(t, t, y)
    if t - peaks.start_t < block_s(tau, blocks, dt_nom):
        if y >= peaks.max_v:
            return Peaks(peaks.start_t, t, y, peaks.sums, peaks.line)
        return peaks
    win = window_s(tau, blocks, dt_nom)
    sums = peaks.sums
    if sums is None:
        sums = drift.start(peaks.max_t, peaks.max_v)
    elif peaks.max_t > sums.last_t:
        sums = drift.fold(sums, peaks.max_t, peaks.max_v, win)
    line = None
    if sums.last_t - sums.first_t >= win:
        ln = drift.line(sums)
        if ln is not None and drift.significant(ln, win, drift_z):
            line = ln
    return Peaks(t, t, y, sums, line)


def eta(peaks: Peaks | None, last_t: float, limit: float, envelope_z: float, z: float
        ) -> tuple[float, float | None, float | None] | None:
    """(eta_s, lower_s, upper_s) from ``last_t`` until the peak line plus ``envelope_z`` of its
    sds reaches ``limit``; None while there is no rising line (see ``fold``). ``lower_s``
    adds ``z`` sds; ``upper_s`` is when the line itself does."""
    if peaks is None or peaks.line is None or peaks.sums is None:
        return None
    # The line's origin is the newest finished block's peak.
    return drift.envelope_etas_since(peaks.line, limit, envelope_z, z,
                                     last_t - peaks.sums.last_t)
