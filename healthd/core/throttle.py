"""The throttle stage's guards: budgets, cooldowns, back-off and the host-wide rate (pure).

Owns: how often healthd may act on one target and on the whole host, read from its own
recent actions (``history``): a container's restart (or recreate) budget per window (the
circuit breaker, which turns the action into an alert), cooldown and exponential back-off
between them, the engine-refused hold, the de-duplication of repeated alerts, and the
``global_actions_per_minute`` limit that scale, Swarm and stop actions share.
Must never: do I/O or read the clock (``now`` is an argument); ``core.decide`` runs it as
one stage of its pipeline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from healthd.core.model import (
    ENGINE_ACTIONS,
    Action,
    ActionRecord,
    ContainerState,
    Decision,
    Outcome,
)
from healthd.core.settings import GuardSettings

GLOBAL_RATE_WINDOW_S = 60.0  # guards.global_actions_per_minute counts actions in this window
# Outcomes that mean "healthd did (or may have) touched the container".
COUNTED = (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.PENDING, Outcome.ABANDONED)
_CONTAINER_ACTIONS = (Action.RESTART, Action.RECREATE)
# Actions with no per-target budget here: the scalers keep their own windows and cooldown
# (``core.scale``), Swarm replacements theirs (``core.swarm``); all share the host-wide rate.
_RATE_ONLY = (Action.SCALE_UP, Action.SCALE_DOWN, Action.REPLACE_TASK, Action.STOP)


def history_window_s(g: GuardSettings) -> float:
    """Seconds of past actions the guards read: the history given to them must reach this
    far back, and the ledger must keep at least that much (budget window, alert repeat,
    cooldown, and the minute of the host-wide rate)."""
    return max(g.budget_window_s, g.alert_repeat_s, g.cooldown_s, GLOBAL_RATE_WINDOW_S)


def _mine(history: Sequence[ActionRecord], target: str, action: Action) -> list[ActionRecord]:
    """``target``'s past ``action``s (a container's name, or a service key), oldest first."""
    return sorted(
        (r for r in history if r.container == target and r.action is action),
        key=lambda r: r.at,
    )


def throttle(d: Decision, c: ContainerState, history: Sequence[ActionRecord], now: float,
             g: GuardSettings) -> Decision:
    """Budget (circuit breaker), cooldown, back-off, global rate; alerts are de-duplicated.

    Restarts and recreates each have their own budget per container; scale actions have
    the scaler's windows and cooldown (``core.scale``) and share the host-wide rate.
    """
    if d.action in _RATE_ONLY:
        return global_rate(d, history, now, g)
    if d.action in _CONTAINER_ACTIONS:
        done = [r for r in _mine(history, d.target_name, d.action) if r.outcome in COUNTED]
        in_window = [r for r in done if now - r.at < g.budget_window_s]
        if len(in_window) >= g.budget_restarts:
            d = dataclasses.replace(
                d,
                action=Action.ALERT,
                rule=f"{d.rule}.budget_exhausted",
                notes=(*d.notes, f"budget {len(in_window)} of {g.budget_restarts} "
                       f"{d.action.value}s used in {g.budget_window_s:.0f} s: left alone"),
            )
        else:
            return _space_out(d, c, in_window, done, history, now, g)
    if d.action is Action.ALERT:
        alerts = [
            r for r in _mine(history, d.target_name, Action.ALERT)
            if r.rule == d.rule and r.outcome is Outcome.SUCCEEDED
        ]
        if alerts and now - alerts[-1].at < g.alert_repeat_s:
            return d.held("alert-repeat", f"same alert raised {now - alerts[-1].at:.0f} s ago")
    return d


def _space_out(
    d: Decision, c: ContainerState, in_window: list[ActionRecord], done: list[ActionRecord],
    history: Sequence[ActionRecord], now: float, g: GuardSettings,
) -> Decision:
    """A restart (or recreate) within its budget: held while the last one failed for good,
    during the cooldown after it, and until its back-off has passed."""
    used = f"budget {len(in_window) + 1} of {g.budget_restarts} used"
    d = dataclasses.replace(d, notes=(*d.notes, used))
    if done:
        last = done[-1]
        what = d.action.value
        if last.outcome is Outcome.FAILED and not last.retryable and c.started_at <= last.at:
            return d.held("engine-refused", f"the last {what} failed for a reason a retry "
                          "cannot fix; waiting for the container to change")
        since = now - last.at
        if since < g.cooldown_s:
            past = "recreated" if d.action is Action.RECREATE else "restarted"
            return d.held("cooldown", f"{past} {since:.0f} s ago (cooldown {g.cooldown_s:.0f} s)")
        if in_window:
            wait = min(g.backoff_base_s * 2 ** (len(in_window) - 1), g.backoff_max_s)
            if since < wait:
                return d.held("backoff", f"{what} {len(in_window) + 1} waits {wait:.0f} s, "
                              f"{since:.0f} s so far")
    return global_rate(d, history, now, g)


def global_rate(d: Decision, history: Sequence[ActionRecord], now: float,
                g: GuardSettings) -> Decision:
    """At most ``global_actions_per_minute`` engine actions of any kind on this host."""
    recent = [
        r for r in history
        if r.action in ENGINE_ACTIONS and r.outcome in COUNTED
        and now - r.at < GLOBAL_RATE_WINDOW_S
    ]
    if len(recent) >= g.global_actions_per_minute:
        return d.held("global-rate", f"{len(recent)} actions on this host in the last minute "
                      f"(limit {g.global_actions_per_minute})")
    return d
