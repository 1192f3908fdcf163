"""The dashboard's read-only JSON: a container's recent samples with its forecast, and the
timeline of recorded decisions (``GET /api/series?container=NAME``, ``GET /api/history``).

Owns: the JSON shape of those two routes, read from what the daemon already keeps (the
forecasters' rings and state, the ledger). Must never: change anything, or keep a copy of
its own: the rings are bounded by ``[forecast] window`` and only read here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from healthd.core.model import ForecastView, Resource
from healthd.foresight.tracker import Tracker
from healthd.observe.memory import Tracked
from healthd.store.ledger import Ledger

MAX_POINTS = 400  # points per series sent to the page (a ring holds up to [forecast] window)
HISTORY_LIMIT = 200  # default rows of /api/history
MAX_HISTORY = 2000
FORECAST_STEPS = 24  # points of the drawn forecast line


class BadQuery(ValueError):
    """A query the route cannot answer; the message says which parameter and why."""


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def forecast_line(start: float, trend: float, last_t: float, until_s: float,
                  ) -> list[list[float]]:
    """The line ``start + trend * h`` from ``last_t`` for ``until_s`` seconds, as [t, value]
    pairs (epoch seconds, series units)."""
    span = max(until_s, 1.0)
    return [[last_t + span * i / FORECAST_STEPS, start + trend * span * i / FORECAST_STEPS]
            for i in range(FORECAST_STEPS + 1)]


def one_series(res: Resource, tr: Tracker, fc: ForecastView | None,
               horizon_s: float) -> dict[str, Any]:
    """A series' samples (thinned to ``MAX_POINTS``), limit, ETA interval and forecast line."""
    times, values = tr.ring.times(), tr.ring.values()
    n = min(len(times), len(values))
    step = max(1, math.ceil(n / MAX_POINTS))
    points = [[float(times[i]), float(values[i])] for i in range(0, n, step)]
    if n and (n - 1) % step:
        points.append([float(times[n - 1]), float(values[n - 1])])
    st = tr.state
    line: list[list[float]] = []
    eta = _finite(fc.eta_s) if fc is not None else None
    if st is not None and points and fc is not None and eta is not None and eta > 0:
        # The forecaster's verdict (Holt's or its drift line's, whichever saw it): from
        # the last sample to the limit at the predicted exhaustion.
        line = forecast_line(fc.value, (fc.limit - fc.value) / eta, st.last_t, eta)
    elif st is not None and st.n >= 2 and points:
        # Not heading for the limit: Holt's trend from the last sample, for a while.
        line = forecast_line(points[-1][1], st.trend, st.last_t, horizon_s / 4)
    return {
        "resource": res.value, "points": points, "forecast": line,
        "limit": fc.limit if fc is not None else None,
        "value": fc.value if fc is not None else (points[-1][1] if points else None),
        "eta_s": _finite(fc.eta_s) if fc else None,
        "lower_s": _finite(fc.lower_s) if fc else None,
        "upper_s": _finite(fc.upper_s) if fc else None,
        "alarm": bool(fc.alarm) if fc else False,
        "state": fc.state if fc else "learning",
        "at": st.last_t if st is not None else None,
    }


def series(trackers: Mapping[tuple[str, Resource], Tracker], items: Iterable[Tracked],
           extra: Callable[[str], tuple[ForecastView, ...]], horizon_s: float,
           query: Mapping[str, str]) -> dict[str, Any]:
    """/api/series: every tracked series of the container named ``query['container']``.

    extra: a container id's application-signal forecasts (errors, latency). Raises
    BadQuery when the parameter is missing or names no watched container.
    """
    name = query.get("container", "")
    if not name:
        raise BadQuery("container: give a watched container's name (?container=NAME)")
    t = next((x for x in items if x.state.name == name), None)
    if t is None:
        raise BadQuery(f"container: no watched container named {name!r}")
    views = {v.resource: v for v in (*t.forecasts, *extra(t.state.id))}
    out = []
    for res in Resource:
        tr = trackers.get((t.state.id, res))
        if tr is not None:
            out.append(one_series(res, tr, views.get(res), horizon_s))
    return {"container": name, "series": out}


def history(ledger: Ledger, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """/api/history: ledger rows, newest first, ``query['limit']`` of them (default 200).

    Raises BadQuery for a limit that is not a whole number from 1 to ``MAX_HISTORY``;
    LedgerError when the state file cannot answer.
    """
    raw = query.get("limit", str(HISTORY_LIMIT))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_HISTORY:
        raise BadQuery(f"limit: a whole number from 1 to {MAX_HISTORY}, not {raw[:20]!r}")
    return [r.as_dict() for r in ledger.history(int(raw))]


def routes(d: Any, ledger: Ledger) -> dict[str, Callable[[Mapping[str, str]], Any]]:
    """The dashboard's /api/* routes over daemon ``d`` (``daemon.Daemon``) and its ledger."""
    return {
        "/api/series": lambda q: series(d.foresight.trackers, d.memory.all(),
                                        d.signals.forecasts, d.cfg.forecast.horizon_s, q),
        "/api/history": lambda q: history(ledger, q),
    }
