"""``healthd replay``: run a recorded series through the daemon's own forecaster and alarm logic.

Owns: parsing a ``timestamp,value`` CSV (epoch seconds or ``YYYY-MM-DD HH:MM:SS`` UTC) with
line-numbered errors, and driving ``forecast.step`` / ``refit_due`` / ``refit.fit`` /
``apply_fit`` over it exactly as the daemon does, except that fits run synchronously in-process
(replay may import statsmodels; the daemon may not).
Must never: print a traceback for bad input, or use a forecasting path the daemon does not use.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TextIO

from healthd.core.model import Resource
from healthd.foresight import forecast, refit
from healthd.foresight.settings import ForecastSettings
from healthd.foresight.tracker import Tracker

RESOURCES = tuple(r.value for r in Resource)


# Rows closer than this to the last row fed are not fed, whatever the interval: the daemon
# samples every second or so, and a trend over a sub-millisecond step overflows.
_MIN_STEP_S = 1e-3


class ReplayError(ValueError):
    """Bad replay input; the message names the file and line."""


def parse_timestamp(s: str) -> float:
    """Epoch seconds from ``1396310400``, ``1396310400.5`` or ``2014-04-01 00:00:00`` (UTC).

    ISO forms with ``T``, fractions or an explicit offset (``Z``, ``+02:00``) are accepted too;
    a time without an offset is UTC. Raises ValueError with the offending text.
    """
    text = s.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"timestamp {s!r} is not a finite number")
        return value
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(
            f"timestamp {s!r} is neither epoch seconds nor YYYY-MM-DD HH:MM:SS"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _row(fields: list[str], where: str) -> tuple[float, float]:
    if len(fields) < 2:
        raise ReplayError(f"{where}: expected 'timestamp,value', got {','.join(fields)!r}")
    try:
        t = parse_timestamp(fields[0])
    except ValueError as exc:
        raise ReplayError(f"{where}: {exc}") from None
    try:
        value = float(fields[1])
    except ValueError:
        raise ReplayError(f"{where}: value {fields[1]!r} is not a number") from None
    if not math.isfinite(value):
        raise ReplayError(f"{where}: value {fields[1]!r} is not finite")
    if not abs(value) < 2**64:
        # The daemon feeds the forecaster 64-bit counts; far beyond them its variance
        # arithmetic overflows.
        raise ReplayError(f"{where}: value {fields[1]!r} is beyond 64-bit counts")
    return t, value


def _next(records: Iterator[list[str]], where: str) -> list[str] | None:
    """The next record, None at the end; csv's own complaint (a field over its limit of
    131072 characters, say) as a ReplayError naming the line. The reader goes on after it."""
    try:
        return next(records, None)
    except csv.Error as exc:
        raise ReplayError(f"{where}: {exc}") from None


def _utf8(fields: list[str], where: str) -> None:
    try:
        "".join(fields).encode("utf-8")
    except UnicodeEncodeError:
        raise ReplayError(f"{where}: not UTF-8 text") from None


def read_csv(
    path: str, skip_bad: bool = False, err: TextIO | None = None
) -> Iterator[tuple[float, float]]:
    """Yield (epoch s, value) per data row of ``path``, in file order.

    A first line that does not parse (``timestamp,value``) is taken as the header. Blank lines are
    skipped. A bad row raises ``ReplayError`` naming ``path:line``; with ``skip_bad`` it is reported
    on ``err`` (stderr by default) and skipped instead. Opening errors raise ``OSError``.
    """
    report = err if err is not None else sys.stderr
    # Bytes that are not UTF-8 become lone surrogates here, so that the row holding them is
    # reported with its line (strict decoding fails a whole read-ahead chunk, lineless).
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        records = csv.reader(handle)
        for lineno in itertools.count(1):
            where = f"{path}:{lineno}"
            try:
                fields = _next(records, where)
                if fields is None:
                    return
                if not fields or all(not f.strip() for f in fields):
                    continue
                _utf8(fields, where)
                yield _row(fields, where)
            except ReplayError as exc:
                if lineno == 1:
                    continue  # the header
                if not skip_bad:
                    raise
                print(f"skipped {exc}", file=report)


def _out(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def replay(
    rows: Iterable[tuple[float, float]],
    limit: float,
    settings: ForecastSettings,
    interval_s: float | None,
    stats: dict[str, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """One output record per input row: ``t``, ``value``, ``eta_s``, ``lower_s``, ``upper_s``,
    ``alarm`` (seconds, or None when not trending to ``limit``).

    ``interval_s``: the sampling step to assume; rows closer together than that to the last row
    fed are not fed to the forecaster (they repeat its last verdict), which resamples a finer
    series to the daemon's interval. None infers the step from the timestamps (and feeds no row
    within 1 ms of the last one fed). The forecaster itself takes a row at most every
    ``settings.step_s`` (as in the daemon); a step shorter than that is then not its nominal
    interval, which it infers from the rows it takes. Refits are
    scheduled with ``refit_due`` and applied with ``apply_fit`` as in the daemon; a failed fit
    keeps the old parameters. ``stats``, if given, counts ``fed``, ``refits``, ``refit_failures``.
    """
    if interval_s is not None:
        nominal = interval_s if interval_s >= settings.min_gap_s() else 0.0
        settings = replace(settings, interval_s=nominal)
    counts = stats if stats is not None else {}
    for k in ("fed", "refits", "refit_failures"):
        counts.setdefault(k, 0)
    tracker = Tracker(settings)
    fc: forecast.Forecast | None = None
    fed_t: float | None = None
    for t, value in rows:
        due_to_feed = fed_t is None or t - fed_t >= 0.999 * (interval_s or _MIN_STEP_S)
        if due_to_feed:
            fc, request = tracker.observe(t, value, limit)
            fed_t = t
            counts["fed"] += 1
            if request is not None:
                try:
                    params = refit.fit(**request)
                except Exception:  # noqa: BLE001 - as in the daemon: a failed fit is dropped
                    counts["refit_failures"] += 1
                else:
                    counts["refits"] += 1
                    tracker.apply(params)
        assert fc is not None  # the first row is always fed
        yield {
            "t": t,
            "value": value,
            "eta_s": _out(fc.eta_s),
            "lower_s": _out(fc.lower_s),
            "upper_s": _out(fc.upper_s),
            "alarm": fc.alarm,
        }


def main(
    path: str,
    limit: float,
    interval_s: float | None,
    horizon_s: float | None,
    resource: str,
    out: TextIO,
    settings: ForecastSettings | None = None,
    *,
    err: TextIO | None = None,
    skip_bad: bool = False,
) -> int:
    """Replay ``path`` against ``limit`` and print one JSON object per row to ``out``.

    Returns 0 on success, 1 for unreadable or bad input (the message names the line), 2 for bad
    arguments. ``resource`` is one of memory, cpu, pids, host_memory, host_disk; it is validated
    and reported in the summary on ``err`` (stderr by default). ``horizon_s`` overrides
    ``settings.horizon_s``.
    """
    report = err if err is not None else sys.stderr
    base = settings if settings is not None else ForecastSettings()
    problems: list[str] = []
    if resource not in RESOURCES:
        problems.append(f"--resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
    if not (math.isfinite(limit) and limit > 0):
        problems.append(f"--limit must be a positive number, got {limit}")
    if interval_s is not None and not (math.isfinite(interval_s) and interval_s > 0):
        problems.append(f"--interval must be a positive number of seconds, got {interval_s}")
    if horizon_s is not None:
        base = replace(base, horizon_s=horizon_s)
    problems.extend(base.validate())
    if problems:
        for p in problems:
            print(f"healthd replay: {p}", file=report)
        return 2
    stats: dict[str, int] = {}
    rows = 0
    alarms = 0
    was_alarm = False
    try:
        for record in replay(read_csv(path, skip_bad, report), limit, base, interval_s, stats):
            out.write(json.dumps(record) + "\n")
            rows += 1
            alarms += record["alarm"] and not was_alarm
            was_alarm = record["alarm"]
    except ReplayError as exc:
        print(f"healthd replay: {exc}", file=report)
        return 1
    except OSError as exc:
        print(f"healthd replay: cannot read {path}: {exc.strerror or exc}", file=report)
        return 1
    if rows == 0:
        print(f"healthd replay: {path}: no data rows", file=report)
        return 1
    print(
        f"healthd replay: {resource}, {rows} rows ({stats['fed']} fed), limit {limit:g}, "
        f"horizon {base.horizon_s:g} s, {alarms} alarm(s) raised, {stats['refits']} refits "
        f"({stats['refit_failures']} failed)",
        file=report,
    )
    return 0
