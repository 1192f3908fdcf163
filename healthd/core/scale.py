"""How many replicas a scalable compose service should run, and which ones (pure).

Owns: the replica recommendation from per-replica pressure, its stabilisation over time
windows, bounds, step limits and cooldown (in the spirit of the Kubernetes HPA's
``behavior`` field), and the replica bookkeeping the engine needs: the next container
number, the name pattern, the template to copy and which replica goes first.
Must never: do I/O or read the clock (``now`` and the window come in as values), or offer
for removal a replica healthd did not create.

How a tick goes (the shell keeps the window between ticks):
- ``recommend``: per resource (CPU, memory; each a fraction of the replica's limit),
  ``ceil(current * mean utilisation / target)``, the larger wins; within ``tolerance`` of
  the target it asks for ``current``. A replica without stats (or one missing a resource
  its siblings report) is unknown: it never counts as idle, so any unknown replica turns
  a downward recommendation into ``current``. A forecast alarm on a replica asks for one
  more when ``forecast_pressure`` is set.
- ``scale``: up when the *smallest* recommendation over ``scale_up_window_s`` is above
  ``current``, down when the *largest* over ``scale_down_window_s`` is below it. Only
  recommendations taken after the service's last scale action count, and the window must
  be covered by them (an entry at or before its start), so each action waits a full window
  of fresh evidence. The step limits, ``[min, max]`` and the operator's own count (the
  floor for scaling down) then clamp the result.
- ``remember``: append this tick's recommendation and drop what no window needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from healthd.core import labels
from healthd.core.model import Action, ActionRecord, ContainerState, Failure, Health, Outcome
from healthd.core.settings import ScalingSettings

# (t, desired replicas) of earlier ticks, oldest first; kept by the shell between ticks.
Window = tuple[tuple[float, int], ...]

_SCALE_ACTIONS = (Action.SCALE_UP, Action.SCALE_DOWN)
# A pending or abandoned action may have happened: it counts for the cooldown.
_COUNTED = (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.PENDING, Outcome.ABANDONED)
_EPS = 1e-9  # so that ceil(2 * 0.7 / 0.7) is 2, not 3


@dataclass(frozen=True)
class ReplicaPressure:
    """One replica's latest pressure. Fractions 0..1 of its limit; None when unknown."""

    name: str
    cpu: float | None = None  # CPU use over its CPU limit; None without stats or a limit
    memory: float | None = None  # memory working set over its memory limit
    forecast_alarm: bool = False  # a memory or CPU exhaustion forecast alarms on it


@dataclass(frozen=True)
class Bounds:
    """How far a service may scale: ``min``..``max`` replicas, never below the operator's."""

    min: int = 1
    max: int = 1
    operator: int = 0  # replicas the operator made (not healthd): scaling down stops there

    @property
    def floor(self) -> int:
        """The fewest replicas scaling down may leave."""
        return max(self.min, self.operator)


@dataclass(frozen=True)
class Recommendation:
    """What this tick's pressure asks for, before windows, steps and bounds."""

    desired: int  # replicas
    current: int
    cpu: float | None = None  # mean over the replicas that report it, 0..1 of the limit
    cpu_replicas: int = 0  # how many replicas that mean is over
    memory: float | None = None
    memory_replicas: int = 0
    unknown: int = 0  # replicas whose pressure is not (fully) known
    forecast: tuple[str, ...] = ()  # replicas whose forecast alarm asked for one more


@dataclass(frozen=True)
class ScaleVerdict:
    """A scale action the pressure calls for, with its evidence in human units.

    ``held`` is set ("guard: why", as in ``Decision.suppressed_by``) when the pressure
    calls for more replicas but none can be added now; ``desired`` is then ``current``.
    """

    desired: int  # replicas after the action
    current: int
    failure: Failure  # SUSTAINED_PRESSURE (up) or IDLE_REPLICAS (down)
    severity: Health
    evidence: tuple[str, ...]
    held: str | None = None

    @property
    def action(self) -> Action:
        """SCALE_UP or SCALE_DOWN."""
        return Action.SCALE_UP if self.failure is Failure.SUSTAINED_PRESSURE else \
            Action.SCALE_DOWN


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def _asks(mean: float, target: float, current: int, tolerance: float) -> int:
    ratio = mean / target
    if abs(ratio - 1) <= tolerance:
        return current
    return max(1, math.ceil(current * ratio - _EPS))


def recommend(
    replicas: Sequence[ReplicaPressure], current: int, settings: ScalingSettings
) -> Recommendation:
    """The replica count this tick's pressure asks for (HPA formula), before stabilisation.

    replicas: the latest pressure of each running replica (missing ones count as unknown).
    current: replicas the service runs now.
    """
    if current < 1:
        return Recommendation(desired=current, current=current)
    cpus = [r.cpu for r in replicas if r.cpu is not None]
    mems = [r.memory for r in replicas if r.memory is not None]
    in_use = [vals for vals in (cpus, mems) if vals]
    known = sum(
        1 for r in replicas
        if in_use and (not cpus or r.cpu is not None) and (not mems or r.memory is not None)
    )
    cpu = sum(cpus) / len(cpus) if cpus else None
    mem = sum(mems) / len(mems) if mems else None
    asks = []
    if cpu is not None:
        asks.append(_asks(cpu, settings.target_cpu, current, settings.tolerance))
    if mem is not None:
        asks.append(_asks(mem, settings.target_memory, current, settings.tolerance))
    # As the HPA: the largest of the resources' asks, so going down needs every resource
    # below its target.
    desired = max(asks, default=current)
    unknown = max(0, current - known)
    if unknown and desired < current:
        desired = current  # an unknown replica is never idle
    forecast: tuple[str, ...] = ()
    if settings.forecast_pressure:
        forecast = tuple(sorted(r.name for r in replicas if r.forecast_alarm))
        if forecast:
            desired = max(desired, current + 1)
    return Recommendation(desired=desired, current=current, cpu=cpu, cpu_replicas=len(cpus),
                          memory=mem, memory_replicas=len(mems), unknown=unknown,
                          forecast=forecast)


def last_scale_at(history: Sequence[ActionRecord]) -> float | None:
    """When the service was last scaled (any outcome that may have acted), or None."""
    times = [r.at for r in history if r.action in _SCALE_ACTIONS and r.outcome in _COUNTED]
    return max(times) if times else None


def _stable(recs: Sequence[tuple[float, int]], now: float, window_s: float,
            up: bool) -> int | None:
    """Smallest (up) or largest (down) recommendation over the window; None if not covered."""
    start = now - window_s
    anchor = [d for t, d in recs if t <= start]
    if not anchor:
        return None  # no evidence reaching back to the window's start
    values = [anchor[-1], *(d for t, d in recs if t > start)]
    return min(values) if up else max(values)


def _held_for(recs: Sequence[tuple[float, int]], now: float, current: int, up: bool) -> float:
    """Seconds the trailing run of recommendations above (below) current has lasted."""
    start = now
    for t, d in reversed(recs):
        if (d > current) if up else (d < current):
            start = t
        else:
            break
    return now - start


def scale(
    replicas: Sequence[ReplicaPressure],
    current: int,
    bounds: Bounds,
    window: Window,
    history: Sequence[ActionRecord],
    settings: ScalingSettings,
    now: float,
    rec: Recommendation | None = None,
) -> ScaleVerdict | None:
    """The scale action this service needs now, or None.

    window: earlier ticks' (t, desired) from ``recommend``, oldest first; this tick's
      recommendation is computed here and added to it.
    history: this service's actions (the caller filters by service); the last scale action
      starts a fresh window and the cooldown.
    now: epoch seconds.
    rec: this tick's ``recommend`` when the caller has it already (it keeps the window).
    """
    if current < 1:
        return None
    rec = rec or recommend(replicas, current, settings)
    last = last_scale_at(history)
    recs = [(t, d) for t, d in window if t < now and (last is None or t > last)]
    recs.append((now, rec.desired))
    up = _stable(recs, now, settings.scale_up_window_s, up=True)
    if up is not None and up > current:
        return _scale_up(rec, up, bounds, settings, now, last, _held_for(recs, now, current, True))
    down = _stable(recs, now, settings.scale_down_window_s, up=False)
    if down is not None and down < current and current > bounds.floor:
        held_s = _held_for(recs, now, current, False)
        return _scale_down(rec, down, bounds, settings, now, last, held_s)
    return None


def _cooldown(last: float | None, now: float, settings: ScalingSettings) -> str | None:
    if last is not None and now - last < settings.cooldown_s:
        return f"cooldown: scaled {now - last:.0f} s ago (cooldown {settings.cooldown_s:.0f} s)"
    return None


def _scale_up(rec: Recommendation, stable: int, bounds: Bounds, settings: ScalingSettings,
              now: float, last: float | None, held_s: float) -> ScaleVerdict:
    current = rec.current
    evidence: list[str] = []
    for res, mean, n, target in (("cpu", rec.cpu, rec.cpu_replicas, settings.target_cpu),
                                 ("memory", rec.memory, rec.memory_replicas,
                                  settings.target_memory)):
        if mean is not None and mean / target > 1 + settings.tolerance:
            evidence.append(f"{res} {_pct(mean)} of limit across {n} replicas for "
                            f"{held_s:.0f} s (target {_pct(target)})")
    if rec.forecast:
        evidence.append(f"forecast alarm on {', '.join(rec.forecast)}")
    if rec.unknown:
        evidence.append(f"{rec.unknown} of {current} replicas without stats")
    desired = min(stable, current + settings.scale_up_step, bounds.max)
    severity = Health.CRITICAL if stable > desired else Health.DEGRADED
    held = None
    if current >= bounds.max:
        held = f"at-max: {current} replicas is the service's maximum (wants {stable})"
        desired = current
    else:
        held = _cooldown(last, now, settings)
        if held:
            desired = current
        else:
            evidence.append(f"{current} to {desired} replicas (max {bounds.max})")
    return ScaleVerdict(desired=desired, current=current, failure=Failure.SUSTAINED_PRESSURE,
                        severity=severity, evidence=tuple(evidence), held=held)


def _scale_down(rec: Recommendation, stable: int, bounds: Bounds, settings: ScalingSettings,
                now: float, last: float | None, held_s: float) -> ScaleVerdict:
    current = rec.current
    evidence = [
        f"{res} {_pct(mean)} of limit across {n} replicas, below target for {held_s:.0f} s "
        f"(target {_pct(target)})"
        for res, mean, n, target in (("cpu", rec.cpu, rec.cpu_replicas, settings.target_cpu),
                                     ("memory", rec.memory, rec.memory_replicas,
                                      settings.target_memory))
        if mean is not None
    ]
    desired = max(stable, current - settings.scale_down_step, bounds.floor)
    held = _cooldown(last, now, settings)
    if held:
        desired = current
    else:
        evidence.append(f"{current} to {desired} replicas (the operator's own: "
                        f"{bounds.operator}, min {bounds.min})")
    return ScaleVerdict(desired=desired, current=current, failure=Failure.IDLE_REPLICAS,
                        severity=Health.DEGRADED, evidence=tuple(evidence), held=held)


def remember(window: Window, now: float, desired: int, settings: ScalingSettings) -> Window:
    """The window with this tick's recommendation added and entries no window needs dropped.

    Keeps everything newer than the longer window plus the newest entry at or before its
    start (the anchor that proves the window is covered).
    """
    keep_s = max(settings.scale_up_window_s, settings.scale_down_window_s)
    entries = [*((t, d) for t, d in window if t < now), (now, desired)]
    start = now - keep_s
    older = [i for i, (t, _) in enumerate(entries) if t <= start]
    first = older[-1] if older else 0
    return tuple(entries[first:])


# --- replicas: numbers, names, templates, removal order -----------------------------------


def number_of(c: ContainerState) -> int | None:
    """The compose container number of a replica, None without a valid one."""
    raw = c.label(labels.COMPOSE_NUMBER)
    try:
        n = int(raw) if raw is not None else None
    except ValueError:
        return None
    return n if n is not None and n >= 1 else None


def created_by_healthd(c: ContainerState) -> bool:
    """True for a replica healthd created (label healthd.created=true)."""
    return (c.label(labels.CREATED) or "").strip().lower() == "true"


def operator_count(replicas: Sequence[ContainerState]) -> int:
    """How many of a service's replicas the operator made (not healthd)."""
    return sum(1 for c in replicas if not created_by_healthd(c))


def next_number(replicas: Sequence[ContainerState]) -> int:
    """The container number the next replica takes: one above the highest, as compose v1.

    replicas: every container of the service, stopped ones too (compose counts them).
    """
    numbers = [n for n in (number_of(c) for c in replicas) if n is not None]
    return max(numbers, default=0) + 1


def replica_name(template_name: str, template_number: int, number: int) -> str | None:
    """The name replica ``number`` takes after the template's pattern, None for a custom name.

    Compose v1 names replicas ``project_service_N``, compose v2 ``project-service-N``; a
    service with a ``container_name`` has no pattern (compose cannot scale it either).
    """
    name = template_name.lstrip("/")
    for sep in ("_", "-"):
        suffix = f"{sep}{template_number}"
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{name[: -len(suffix)]}{sep}{number}"
    return None


def pick_template(replicas: Sequence[ContainerState]) -> ContainerState | None:
    """The replica to copy: running, healthy rather than not, the operator's own, lowest
    number first. None when no replica runs."""
    running = [c for c in replicas if c.running and number_of(c) is not None]
    if not running:
        return None
    return min(running, key=lambda c: (c.health == "unhealthy", created_by_healthd(c),
                                       number_of(c) or 0))


def _created_at(c: ContainerState) -> float:
    if c.created_at:
        return c.created_at
    try:
        return float(c.label(labels.CREATED_AT) or 0.0)
    except ValueError:
        return 0.0


def to_remove(replicas: Sequence[ContainerState]) -> ContainerState | None:
    """The replica a scale-down removes: the newest one healthd created; None if there is
    none (the operator's replicas are never removed)."""
    mine = [c for c in replicas if created_by_healthd(c)]
    if not mine:
        return None
    return max(mine, key=lambda c: (_created_at(c), number_of(c) or 0))
