"""Classify what an application says about itself (pure).

Owns: turning a container's ``Signals`` (error ratio, latency quantile, error-log rate,
last probe) into ``application_error`` or ``latency_degraded`` with evidence, and the
"critical that persists" rule: a value over its critical threshold is critical only once
it has stood there for ``signals.persist_s`` (``since`` tracks that), degraded until then.
Must never: probe, scrape, read logs or the clock; ``now`` and the signals are values.
"""

from __future__ import annotations

from healthd.core.model import Classification, Failure, Health, Signals
from healthd.core.settings import SignalSettings

_RANK = {Health.DEGRADED: 1, Health.CRITICAL: 2}


def since(previous: float | None, value: float | None, critical: float,
          now: float) -> float | None:
    """When ``value`` began to stand at or over ``critical``: ``previous`` while it still
    does, ``now`` when it just crossed, None when it is under (or unknown)."""
    if value is None or value < critical:
        return None
    return previous if previous is not None else now


def _duration(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 120 else f"{s:.0f} s"


def _seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


def _severity(value: float, degraded: float, critical: float, since_at: float | None,
              now: float, persist_s: float) -> tuple[Health | None, str]:
    """Severity and a note on a critical value that has not persisted long enough yet."""
    if value >= critical:
        held = now - since_at if since_at is not None else 0.0
        if held >= persist_s:
            return Health.CRITICAL, ""
        return Health.DEGRADED, (f"critical for {held:.0f} s of {persist_s:.0f} s "
                                 "before it counts")
    if value >= degraded:
        return Health.DEGRADED, ""
    return None, ""


def candidates(sig: Signals, ss: SignalSettings, now: float) -> list[Classification]:
    """Every signal over a threshold, as a classification each (worst first)."""
    out: list[Classification] = []
    window = _duration(sig.window_s or ss.window_s)
    if sig.error_ratio is not None:
        sev, note = _severity(sig.error_ratio, ss.error_ratio_degraded,
                              ss.error_ratio_critical, sig.errors_since, now, ss.persist_s)
        if sev is not None:
            limit = ss.error_ratio_critical if sev is Health.CRITICAL else \
                ss.error_ratio_degraded
            what = "probe failure ratio" if sig.error_source == "probes" else "error ratio"
            ev = [f"{what} {sig.error_ratio * 100:.0f} % over {window} "
                  f"(threshold {limit * 100:g} %)"]
            if sig.error_source == "probes" and sig.probe_detail:
                ev.append(f"last probe: {sig.probe_detail}")
            out.append(Classification(Failure.APPLICATION_ERROR, sev,
                                      tuple(ev + ([note] if note else []))))
    if sig.log_errors_per_min is not None:
        sev, note = _severity(sig.log_errors_per_min, ss.log_errors_degraded_per_min,
                              ss.log_errors_critical_per_min, sig.logs_since, now, ss.persist_s)
        if sev is not None:
            limit = ss.log_errors_critical_per_min if sev is Health.CRITICAL else \
                ss.log_errors_degraded_per_min
            ev = [f"{sig.log_errors_per_min:.0f} error log lines per minute "
                  f"(threshold {limit:g})"]
            if sig.last_log_match:
                ev.append(f"last {sig.last_log_match!r}")
            out.append(Classification(Failure.APPLICATION_ERROR, sev,
                                      tuple(ev + ([note] if note else []))))
    if sig.latency_s is not None:
        sev, note = _severity(sig.latency_s, ss.latency_degraded_s, ss.latency_critical_s,
                              sig.latency_since, now, ss.persist_s)
        if sev is not None:
            limit = ss.latency_critical_s if sev is Health.CRITICAL else ss.latency_degraded_s
            q = f"p{ss.latency_quantile * 100:g}"
            src = " of probes" if sig.latency_source == "probes" else ""
            ev = [f"{q}{src} {_seconds(sig.latency_s)} over {window} "
                  f"(threshold {_seconds(limit)})"]
            out.append(Classification(Failure.LATENCY_DEGRADED, sev,
                                      tuple(ev + ([note] if note else []))))
    # Stable sort: at equal severity errors come before latency (a failing answer is worse
    # than a slow one, and a slow one often is the failure's symptom).
    out.sort(key=lambda c: -_RANK[c.severity])
    return out


def classify(sig: Signals | None, ss: SignalSettings, now: float) -> Classification | None:
    """The worst application signal of a container, or None when all are under threshold."""
    if sig is None:
        return None
    found = candidates(sig, ss, now)
    return found[0] if found else None

