"""Rule-based failure classifier and health assessment (pure).

Owns: turning one container's observation (inspect state, last usage sample, forecasts)
into a Health with reasons and, when something is wrong, one Classification naming the
failure and the evidence. Must never: do I/O, read the clock or decide what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from healthd.core import signals
from healthd.core.model import (
    Assessment,
    Classification,
    ContainerState,
    Failure,
    ForecastView,
    Health,
    Resource,
    Signals,
    Usage,
)
from healthd.core.settings import ClassifySettings, SignalSettings, ThresholdSettings

_RANK = {Health.HEALTHY: 0, Health.UNKNOWN: 0, Health.DEGRADED: 1, Health.CRITICAL: 2}


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def pressure(usage: Usage | None, th: ThresholdSettings) -> list[tuple[Health, Resource, str]]:
    """Resources over their degraded/critical thresholds, worst first."""
    if usage is None:
        return []
    found: list[tuple[Health, Resource, str]] = []
    checks = (
        (Resource.MEMORY, usage.mem_fraction, th.memory_degraded, th.memory_critical),
        (Resource.CPU, usage.cpu_fraction, th.cpu_degraded, th.cpu_critical),
        (Resource.PIDS, usage.pids_fraction, th.pids_degraded, th.pids_critical),
    )
    for res, frac, lo, hi in checks:
        if frac is None or frac < lo:
            continue
        sev = Health.CRITICAL if frac >= hi else Health.DEGRADED
        limit = _pct(hi if sev is Health.CRITICAL else lo)
        found.append((sev, res, f"{res.value} at {_pct(frac)} of limit (threshold {limit})"))
    found.sort(key=lambda f: -_RANK[f[0]])
    return found


def deaths_in_window(c: ContainerState, now: float, window_s: float) -> int:
    """How many times the container died within the last ``window_s`` seconds."""
    return sum(1 for t in c.deaths if now - t <= window_s)


def eta_text(eta_s: float) -> str:
    """'~7 min' style rounding for humans."""
    if eta_s < 90:
        return f"~{eta_s:.0f} s"
    if eta_s < 5400:
        return f"~{eta_s / 60:.0f} min"
    return f"~{eta_s / 3600:.1f} h"


# Application series are forecast towards their critical threshold, not a limit.
_SERIES_NAMES = {"errors": "error ratio", "latency": "latency"}


def forecast_text(f: dict[str, Any]) -> str:
    """One forecast row (``ForecastView`` fields) for people: an ETA with its interval only when
    the trend is significant, else "learning (n of N samples)" or "steady"; "full" at the limit.
    """
    resource = str(f.get("resource", ""))
    what = _SERIES_NAMES.get(resource, resource.replace("_", " "))
    reach = "critical" if resource in _SERIES_NAMES else "full"
    flag = "!" if f.get("alarm") else ""
    eta = f.get("eta_s")
    if eta is not None:
        if eta <= 0:
            return f"{what} {reach}{flag}"
        text = f"{what} {reach} in {eta_text(eta)}"
        lo, hi = f.get("lower_s"), f.get("upper_s")
        if lo is not None and hi is not None and hi > lo:
            text += f" ({eta_text(lo)} to {eta_text(hi)})"
        elif lo is not None:
            text += f" (from {eta_text(lo)})"
        return text + flag
    if f.get("state") == "learning":
        return f"{what} learning ({f.get('samples', 0)} of {f.get('samples_needed', 0)} samples)"
    return f"{what} steady"


def amount(resource: Resource, value: float) -> str:
    """A resource amount in the unit people read it in."""
    if resource is Resource.CPU:
        return f"{value * 100:.0f}%"
    if resource is Resource.PIDS:
        return f"{value:.0f} pids"
    if resource is Resource.ERRORS:
        return f"{value * 100:.0f} % errors"
    if resource is Resource.LATENCY:
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
    if value >= 2**30:
        return f"{value / 2**30:.1f} GiB"
    return f"{value / 2**20:.0f} MiB"


def _reaches(resource: Resource) -> str:
    """How a forecast reaching its limit reads: 'memory full', 'error ratio critical'."""
    if resource is Resource.ERRORS:
        return "error ratio critical"
    if resource is Resource.LATENCY:
        return "latency critical"
    return f"{resource.value.replace('_', ' ')} full"


def forecast_evidence(f: ForecastView) -> tuple[str, ...]:
    """What a forecast alarm rests on, for the log and the ledger."""
    eta = f"{_reaches(f.resource)} in {eta_text(f.eta_s or 0.0)}"
    if f.lower_s is not None and f.upper_s is not None:
        eta += f" (between {eta_text(f.lower_s)} and {eta_text(f.upper_s)})"
    return (eta, f"now {amount(f.resource, f.value)} of {amount(f.resource, f.limit)}")


def classify(
    c: ContainerState,
    usage: Usage | None,
    forecasts: Sequence[ForecastView],
    now: float,
    cfg: ClassifySettings,
    th: ThresholdSettings,
    sig: Signals | None = None,
    ss: SignalSettings | None = None,
) -> Classification | None:
    """The most urgent failure of ``c``, or None when nothing is wrong.

    sig/ss: what the application says (probes, its metrics, its logs) and the thresholds
    for it; an application failing now goes before any forecast or resource pressure.
    """
    deaths = deaths_in_window(c, now, cfg.crash_loop_window_s)
    if deaths >= cfg.crash_loop_deaths:
        return Classification(
            Failure.CRASH_LOOP,
            Health.CRITICAL,
            (f"died {deaths} times in {cfg.crash_loop_window_s:.0f} s",
             f"last exit code {c.exit_code}"),
        )
    if not c.running and c.status != "created":
        if c.oom_killed:
            return Classification(
                Failure.OOM_KILLED, Health.CRITICAL, (f"OOM-killed, exit code {c.exit_code}",)
            )
        if c.exit_code != 0:
            return Classification(
                Failure.CRASHED, Health.CRITICAL, (f"exited with code {c.exit_code}",)
            )
        return None  # exit 0 is a finished job or a deliberate stop, not a failure
    if c.health == "unhealthy":
        ev = [f"healthcheck failing {c.health_failing_streak} times in a row"]
        if c.health_last_output:
            ev.append(f"last output {c.health_last_output.strip()[:80]!r}")
        return Classification(Failure.UNHEALTHY, Health.CRITICAL, tuple(ev))
    app = signals.classify(sig, ss, now) if ss is not None and c.running else None
    if app is not None and app.severity is Health.CRITICAL:
        return app
    for f in forecasts:
        if f.alarm and f.eta_s is not None:
            return Classification(
                Failure.PREDICTED_EXHAUSTION,
                Health.CRITICAL,
                forecast_evidence(f),
                resource=f.resource,
            )
    if app is not None:
        return app
    hot = pressure(usage, th)
    if hot:
        sev, res, text = hot[0]
        return Classification(Failure.RESOURCE_PRESSURE, sev, (text,), resource=res)
    return None


def assess(
    c: ContainerState,
    usage: Usage | None,
    forecasts: Sequence[ForecastView],
    now: float,
    cfg: ClassifySettings,
    th: ThresholdSettings,
    sig: Signals | None = None,
    ss: SignalSettings | None = None,
) -> tuple[Assessment, Classification | None]:
    """Health with reasons, plus the classification it rests on."""
    cls = classify(c, usage, forecasts, now, cfg, th, sig, ss)
    reasons: list[str] = []
    if cls is not None:
        reasons.append(f"{cls.failure.value}: {'; '.join(cls.evidence)}")
        health = cls.severity
    elif not c.running and c.status != "created":
        health, reasons = Health.UNKNOWN, [f"{c.status} (exit code {c.exit_code})"]
    elif c.health == "starting":
        health, reasons = Health.UNKNOWN, ["healthcheck starting"]
    else:
        health = Health.HEALTHY
    for f in forecasts:
        if f.eta_s is not None and not (cls and cls.resource is f.resource):
            reasons.append(f"{_reaches(f.resource)} in {eta_text(f.eta_s)}")
    return Assessment(health, tuple(reasons)), cls
