"""Drift: an exponentially weighted least-squares line with an upper envelope, O(1) per sample.

Owns: ``Drift`` (the weighted sums of one series), ``fold`` (one sample in), and
``envelope_eta`` / ``envelope_etas`` / ``envelope_etas_since`` (when the series' upper
envelope, the fitted line plus ``z`` residual sds, reaches a limit).
Must never: keep history, import time or I/O, or fit anything beyond these closed-form sums.

Why a second model next to Holt. Holt's one-step trend follows the last few samples: the flat
stretch between two allocations of a growing cache, or the fall of each GC tooth, resets it, so
stepwise and sawtooth leaks with a rising floor look flat to it most of the time. A straight
line fitted by least squares over a window that spans several steps or teeth sees their average
rise; the peaks sit a roughly constant number of residual sds above the line, so the limit is
reached when ``line + z * sd`` is, not when the line is. This is ``predict_linear`` with a
significance test and an envelope, kept as running sums with weight ``exp(-age / tau_s)`` (a
window of ``tau_s`` seconds mean age) instead of a ring, so the update is O(1).

The sums are held relative to the newest sample's time (``u = t - last_t``), shifted on each
sample, so they stay well conditioned whatever the epoch.
"""

from __future__ import annotations

import math
from typing import NamedTuple


# Named tuples, not frozen dataclasses: a fold makes one per series per sample, and a tuple
# is built in a third of the time (immutable all the same).
class Drift(NamedTuple):
    """Exponentially weighted sums over samples (u = t - last_t, y); weights sum to ``s0``."""

    last_t: float
    s0: float = 0.0
    s1: float = 0.0  # sum w*u
    s2: float = 0.0  # sum w*u^2
    sy: float = 0.0  # sum w*y
    suy: float = 0.0  # sum w*u*y
    syy: float = 0.0  # sum w*y^2
    first_t: float = 0.0  # epoch s of the first sample


def start(t: float, y: float) -> Drift:
    """A drift state holding one sample."""
    return Drift(t, 1.0, 0.0, 0.0, y, 0.0, y * y, t)


def fold(d: Drift, t: float, y: float, tau_s: float) -> Drift:
    """Age the sums by ``t - last_t`` seconds, shift their origin to ``t``, add ``(t, y)``. O(1)."""
    dt = t - d.last_t
    k = math.exp(-dt / tau_s)
    s0, s1, s2, sy, suy, syy = k * d.s0, k * d.s1, k * d.s2, k * d.sy, k * d.suy, k * d.syy
    # Shift the origin by dt: u' = u - dt.
    s2 = s2 - 2 * dt * s1 + dt * dt * s0
    suy = suy - dt * sy
    s1 = s1 - dt * s0
    return Drift(t, s0 + 1.0, s1, s2, sy + y, suy, syy + y * y, d.first_t)


class Line(NamedTuple):
    """The weighted fit at the newest sample: value, slope (units/s), residual sd (units)."""

    value: float
    slope: float
    sd: float
    n_eff: float  # effective number of samples (sum of weights)


def line(d: Drift) -> Line | None:
    """The weighted least-squares line, or None while it is not determined."""
    den = d.s0 * d.s2 - d.s1 * d.s1
    if d.s0 < 3 or den <= 1e-12 * d.s0 * d.s2:
        return None
    slope = (d.s0 * d.suy - d.s1 * d.sy) / den
    icept = (d.sy - slope * d.s1) / d.s0  # value at u = 0, i.e. at the newest sample
    sse = d.syy - icept * d.sy - slope * d.suy
    return Line(icept, slope, math.sqrt(max(sse, 0.0) / d.s0), d.s0)


def significant(ln: Line, tau_s: float, z: float) -> bool:
    """True when the rise over one window (``slope * tau_s``) exceeds ``z`` residual sds.

    Residuals of a sawtooth or a cycle are strongly autocorrelated, so the textbook standard
    error (sd / sqrt(n)) would call every wobble significant; comparing the rise with the spread
    itself is the conservative test that stays true for a leak and false for a wobble.
    """
    return ln.slope > 0 and ln.slope * tau_s > z * ln.sd


def envelope_eta(ln: Line, limit: float, z: float) -> float | None:
    """Seconds until ``line + z * sd`` reaches ``limit``; 0 when already there, None if never."""
    top = ln.value + z * ln.sd
    if top >= limit:
        return 0.0
    if ln.slope <= 0:
        return None
    return (limit - top) / ln.slope


def envelope_etas(ln: Line, limit: float, envelope_z: float, z: float
                  ) -> tuple[float, float | None, float | None] | None:
    """(eta_s, lower_s, upper_s): when the peaks (``line + envelope_z`` sds) reach ``limit``,
    the same with ``z`` more sds (the earliest plausible), and when the line itself does;
    None when the peaks never do."""
    eta = envelope_eta(ln, limit, envelope_z)
    if eta is None:
        return None
    return eta, envelope_eta(ln, limit, envelope_z + z), envelope_eta(ln, limit, 0.0)


def envelope_etas_since(ln: Line, limit: float, envelope_z: float, z: float, since: float
                        ) -> tuple[float, float | None, float | None] | None:
    """``envelope_etas`` of a line whose origin is ``since`` seconds before now (the floor and
    peak lines' origin is their newest point, not the newest sample), counted from now: an
    ETA already passed is 0."""
    found = envelope_etas(ln, limit, envelope_z, z)
    if found is None:
        return None
    eta, lower, upper = found
    return (max(eta - since, 0.0), None if lower is None else max(lower - since, 0.0),
            None if upper is None else max(upper - since, 0.0))
