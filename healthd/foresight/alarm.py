"""Alarm rules for the forecaster: trend significance, GC cycles and timed confirmation.

Owns: the trend's no-trend standard error (``trend_var_ratio``), recognising the sharp falls of
a garbage-collected (sawtooth) series and estimating its cycle length, the rule that a sawtooth
only alarms when the limit is due before the next expected fall, and the raise / clear decision
(confirmation in ticks *and* seconds, release in ticks).
Must never: import time, I/O or fitting code, or keep history: every function here is O(1) and
pure, called from ``forecast.step`` with plain values.

Why a sawtooth needs its own rule. A GC'd heap rises steadily for a cycle, then falls back. Near
the top of each tooth the rise looks exactly like a leak heading for the limit, yet the next
collection comes first. What makes it a leak is a rising floor: each tooth then tops out higher
until one crosses the limit *within* its own cycle. So on a series with a recent regular fall,
a tick may alarm only if the point ETA is before the next fall is due (``last fall + cycle``).
A cycle long overdue (``gc_overdue`` cycles) no longer guards: a collector that stopped freeing
memory is no reason for calm.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np


# Cycle and Streak are named tuples, not frozen dataclasses: the forecaster builds them per
# series per sample, and a tuple is built in a third of the time.
class Cycle(NamedTuple):
    """Garbage-collection cycle state of one series; all times epoch s, lengths s."""

    fall_t: float | None = None  # newest sharp fall
    cycle_s: float = 0.0  # EWMA of the time between falls; 0 until two falls were seen
    regular: int = 0  # consecutive gaps between falls within REGULAR of ``cycle_s``


REGULAR = 0.35  # a gap within this fraction of the running cycle length keeps the cycle regular
MIN_REGULAR = 2  # regular gaps in a row before the cycle guards alarms


def is_fall(error: float, sd: float, n: int, drop_sigma: float) -> bool:
    """True when the one-step ``error`` (before clipping) is below ``-drop_sigma`` sds.

    ``drop_sigma`` <= 0 disables fall detection. Needs a meaningful sd (``n`` > 10).
    """
    if drop_sigma <= 0 or n <= 10 or sd <= 0:
        return False
    return error < -drop_sigma * sd


def track(cycle: Cycle, t: float, fall: bool, min_gap_s: float) -> Cycle:
    """Fold one tick into the cycle estimate. Falls closer than ``min_gap_s`` are one fall."""
    if not fall:
        return cycle
    if cycle.fall_t is None:
        return Cycle(t, 0.0, 0)
    gap = t - cycle.fall_t
    if gap < min_gap_s:
        return cycle  # the same collection, seen over more than one sample
    if cycle.cycle_s <= 0:
        return Cycle(t, gap, 0)
    regular = cycle.regular + 1 if abs(gap - cycle.cycle_s) <= REGULAR * cycle.cycle_s else 0
    return Cycle(t, cycle.cycle_s + 0.3 * (gap - cycle.cycle_s), regular)


def regular_cycle(cycle: Cycle) -> bool:
    """True when the falls have come at regular gaps (``MIN_REGULAR`` in a row)."""
    return cycle.fall_t is not None and cycle.cycle_s > 0 and cycle.regular >= MIN_REGULAR


def before_next_fall(cycle: Cycle, t: float, eta_s: float, overdue: float,
                     headroom: float = -1.0) -> bool:
    """True when the limit (point ETA ``eta_s``, s) is due before the next expected fall.

    Also True when no regular cycle is known (``MIN_REGULAR`` regular gaps in a row), or the
    expected fall is more than ``overdue`` cycles late. ``headroom``: the limit less the
    height the collections have come at (and its spread); above 0, the next collection
    comes on the way up, whenever that is: a tooth rising faster than the last ones is
    collected sooner, not later than the limit (a rising top is the drift lines' to see).
    """
    if cycle.fall_t is None or not regular_cycle(cycle):
        return True
    since = t - cycle.fall_t
    if since > (1.0 + overdue) * cycle.cycle_s:
        return True
    return headroom <= 0 and eta_s <= cycle.cycle_s - since


class Streak(NamedTuple):
    """Where the alarm confirmation stands."""

    streak: int  # consecutive alarming ticks
    calm: int  # consecutive non-alarming ticks, counted up to ``release`` (all that is compared)
    since: float | None  # epoch s of the first tick of the current alarming streak
    alarm: bool


def decide(
    prev: Streak,
    t: float,
    alarming: bool,
    frozen: bool,
    confirm: int,
    confirm_s: float,
    release: int,
    *,
    at_limit: bool = False,
) -> Streak:
    """Advance the confirmation by one tick at epoch ``t``.

    Raised after ``confirm`` consecutive alarming ticks spanning at least ``confirm_s`` seconds;
    cleared after ``release`` consecutive quiet ones. ``frozen`` ticks (a sample that was not
    folded in) neither raise nor clear. A series ``at_limit`` is an alarm at once: there is
    nothing left to confirm.
    """
    if frozen:
        return prev
    since: float | None
    if at_limit:
        since = prev.since if prev.streak > 0 and prev.since is not None else t
        return Streak(prev.streak + 1, 0, since, True)
    if alarming:
        since = prev.since if prev.streak > 0 and prev.since is not None else t
        streak, calm = prev.streak + 1, 0
    else:
        # Capped: an idle series' verdict then stays the same value tick after tick, and the
        # forecaster skips copying its state for it.
        since, streak, calm = None, 0, min(prev.calm + 1, release)
    alarm = prev.alarm
    if not alarm and streak >= confirm and since is not None and t - since >= confirm_s:
        alarm = True
    elif alarm and calm >= release:
        alarm = False
    return Streak(streak, calm, since, alarm)


@functools.lru_cache(maxsize=1024)
def trend_var_ratio(alpha: float, beta: float) -> float:
    """Stationary variance of the per-step trend estimate over the one-step error variance.

    Holt's filter driven by white noise alone (no real trend) is the linear system
    ``x_t = F x_{t-1} + g e_t`` with ``x = (level, trend per step)``; its stationary covariance
    solves ``P = F P F' + g g'``. Cached: alpha and beta only change when a fit is applied.
    """
    f = np.array([[1 - alpha, 1 - alpha], [-alpha * beta, 1 - alpha * beta]])
    g = np.array([alpha, alpha * beta])
    lhs = np.eye(4) - np.kron(f, f)
    p = np.linalg.solve(lhs, np.outer(g, g).ravel()).reshape(2, 2)
    return float(p[1, 1])
