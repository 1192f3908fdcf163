"""Evaluate healthd's exhaustion forecaster against Prometheus-style ``predict_linear``.

Run from the repository root:  python bench/forecast_eval.py [--jobs 2] [--tune]

Scores (a) synthetic leak traces with a known exhaustion time (bench/traces.py) and (b) the real,
non-exhausting NAB AWS CloudWatch series (bench/data/nab-aws). Both methods see the same inputs:
healthd through ``healthd.replay.replay`` (the daemon's own step / refit / alarm code), the
baseline as least squares over a trailing window, alarming when the value predicted one horizon
ahead is >= the limit (``predict_linear(x[W], H) >= limit``), no ``for:`` clause.

Honesty: tuning used only the TUNE_* seeds and NAB files (``--tune`` prints that grid); the table
is computed on the SCORE_* seeds (fresh each tuning round) and the remaining NAB files (all 17 are
shown as well, flagged). The 11 held-out NAB files were scored once before round 4, so they are
"seen once"; the round-3 score seeds (SEEN_SEEDS) are retired.

Metrics, H = horizon:
  detected   an alarm is on at some tick in [T-3H, T-H], T = exhaustion time (first sample at the
             limit); i.e. the exhaustion was announced at least one horizon ahead
  lead       T minus the first alarming tick in [T-3H, T), median over detected traces (<= 3H)
  false/day  alarm onsets (off -> on) per series-day: anywhere on NAB, before T-3H on the traces
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small fits: threaded BLAS only adds overhead

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import traces  # noqa: E402

from healthd.foresight import forecast, refit, replay  # noqa: E402
from healthd.foresight.forecast import ForecastSettings  # noqa: E402

NAB_DIR = ROOT / "bench" / "data" / "nab-aws"
TUNE_NAB = (
    "ec2_cpu_utilization_24ae8d",
    "ec2_cpu_utilization_825cc2",
    "ec2_disk_write_bytes_1ef3de",
    "ec2_network_in_257a54",
    "elb_request_count_8c0756",
    "rds_cpu_utilization_cc0c53",
)
TUNE_SEEDS = range(100, 120)  # rounds 1-3 used 100-105; round 4 (GC guard, confirm_frac) 100-119
SEEN_SEEDS = range(200, 212)  # scored once in round 3, then retired: never tuned on, not reused
SCORE_SEEDS = range(300, 320)  # fresh for round 4: looked at once, for the final table only
TRACE_H = 600.0  # the daemon's default horizon; traces are sampled every 30 s
NAB_H = 3600.0  # NAB is sampled every 300 s: warn an hour ahead
BASELINE_WINDOWS = (1800.0, 3600.0, 4 * 3600.0)
MAIN_WINDOW = 3600.0


def nab_files() -> list[str]:
    return sorted(p.stem for p in NAB_DIR.glob("*.csv"))


def load_nab(stem: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(t, v, limit): CPU series against 100 (%), others against 1.25 x their own maximum."""
    rows = list(replay.read_csv(str(NAB_DIR / f"{stem}.csv")))
    t = np.array([r[0] for r in rows])
    v = np.array([r[1] for r in rows])
    limit = 100.0 if "cpu" in stem else 1.25 * float(v.max())
    return t, v, limit


def baseline_alarms(t: np.ndarray, v: np.ndarray, limit: float, window_s: float, h: float) -> Any:
    """predict_linear(x[window_s], h) >= limit at every tick, vectorised with cumulative sums."""
    x = (t - t[0]) / 3600.0  # hours: keeps the cumulative sums well conditioned
    c = [np.concatenate(([0.0], np.cumsum(a))) for a in (np.ones_like(x), x, v, x * x, x * v)]
    hi = np.arange(1, len(t) + 1)
    lo = np.searchsorted(t, t - window_s, side="left")
    n, sx, sy, sxx, sxy = (a[hi] - a[lo] for a in c)
    den = n * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(den > 0, (n * sxy - sx * sy) / den, 0.0)
    mean_x, mean_y = sx / n, sy / n
    pred = mean_y + slope * (x + h / 3600.0 - mean_x)
    return (n >= 2) & (pred >= limit)


def healthd_alarms(t: np.ndarray, v: np.ndarray, limit: float, s: ForecastSettings) -> Any:
    out = replay.replay(zip(t.tolist(), v.tolist(), strict=True), limit, s, None)
    return np.array([r["alarm"] for r in out], dtype=bool)


def score(t: np.ndarray, alarm: Any, h: float, t_exhaust: float | None) -> dict[str, Any]:
    onsets = alarm & ~np.concatenate(([False], alarm[:-1]))
    if t_exhaust is None:
        return {"fa": int(onsets.sum()), "days": float(t[-1] - t[0]) / 86400.0}
    pre = t < t_exhaust - 3 * h
    in_win = (t >= t_exhaust - 3 * h) & (t <= t_exhaust - h)
    late = (t >= t_exhaust - 3 * h) & alarm
    lead = float(t_exhaust - t[late][0]) if late.any() else None
    detected = bool(alarm[in_win].any())
    return {
        "fa": int(onsets[pre].sum()),
        "days": max(float(t_exhaust - 3 * h - t[0]), 0.0) / 86400.0,
        "detected": detected,
        "lead": lead if detected else None,
    }


def run_one(task: tuple[str, str, int, dict[str, Any]]) -> dict[str, Any]:
    """One series through healthd and every baseline window; picklable for the pool."""
    kind, name, seed, overrides = task
    if kind == "trace":
        tr = traces.make(name, seed)
        t, v, limit, t_ex, h = tr.t, tr.v, tr.limit, tr.t_exhaust, TRACE_H
    else:
        t, v, limit = load_nab(name)
        t_ex, h = None, NAB_H
    s = replace(ForecastSettings(horizon_s=h), **overrides)
    res: dict[str, Any] = {"kind": kind, "name": name, "seed": seed}
    res["healthd"] = score(t, healthd_alarms(t, v, limit, s), h, t_ex)
    for w in BASELINE_WINDOWS:
        res[f"baseline {w / 3600:g}h"] = score(t, baseline_alarms(t, v, limit, w, h), h, t_ex)
    return res


def tasks(seeds: range, nab: list[str], overrides: dict[str, Any]) -> list[Any]:
    out: list[Any] = [("nab", stem, 0, overrides) for stem in nab]
    out += [("trace", k, s, overrides) for k in traces.KINDS for s in seeds]
    return out


def summarise(results: list[dict[str, Any]], method: str) -> dict[str, Any]:
    tr = [r[method] for r in results if r["kind"] == "trace"]
    nab = [r[method] for r in results if r["kind"] == "nab"]
    leads = [x["lead"] for x in tr if x["lead"] is not None]
    days_tr = sum(x["days"] for x in tr)
    days_nab = sum(x["days"] for x in nab)
    return {
        "detected": sum(x["detected"] for x in tr),
        "n": len(tr),
        "lead_min": statistics.median(leads) / 60 if leads else float("nan"),
        "fa_nab": sum(x["fa"] for x in nab) / days_nab if days_nab else float("nan"),
        "fa_trace": sum(x["fa"] for x in tr) / days_tr if days_tr else float("nan"),
        "fa_all": sum(x["fa"] for x in tr + nab) / (days_tr + days_nab),
    }


def methods() -> list[str]:
    return ["healthd"] + [f"baseline {w / 3600:g}h" for w in BASELINE_WINDOWS]


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| method | detected >= 1 H ahead | median lead (min) | false alarms / series-day:"
        " NAB | traces before T-3H | all |",
        "|---|---|---|---|---|---|",
    ]
    for m in methods():
        s = summarise(results, m)
        lines.append(
            f"| {m} | {s['detected']}/{s['n']} ({100 * s['detected'] / max(s['n'], 1):.0f}%) "
            f"| {s['lead_min']:.1f} | {s['fa_nab']:.3f} | {s['fa_trace']:.3f} | {s['fa_all']:.3f} |"
        )
    return lines


def targets(results: list[dict[str, Any]]) -> list[str]:
    """Met / not met, per baseline window: detection >=, median lead >=, false alarms <= 1/5."""
    h = summarise(results, "healthd")
    lines = []
    for m in methods()[1:]:
        b = summarise(results, m)
        checks = [
            f"detection {h['detected']} >= {b['detected']}: "
            + ("met" if h["detected"] >= b["detected"] else "NOT met"),
            f"median lead {h['lead_min']:.1f} >= {b['lead_min']:.1f} min: "
            + ("met" if h["lead_min"] >= b["lead_min"] else "NOT met"),
            f"false alarms {h['fa_all']:.3f} <= {b['fa_all'] / 5:.3f} (1/5 of {b['fa_all']:.3f}): "
            + ("met" if h["fa_all"] <= b["fa_all"] / 5 else "NOT met"),
        ]
        main = " (main comparison)" if m == f"baseline {MAIN_WINDOW / 3600:g}h" else ""
        lines.append(f"- vs {m}{main}: " + "; ".join(checks))
    return lines


def per_kind(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| trace kind | " + " | ".join(methods()) + " |", "|---" * (len(methods()) + 1) + "|"]
    for k in traces.KINDS:
        cells = []
        for m in methods():
            rs = [r[m] for r in results if r["kind"] == "trace" and r["name"] == k]
            leads = [x["lead"] for x in rs if x["lead"] is not None]
            med = f"{statistics.median(leads) / 60:.0f} min" if leads else "-"
            cells.append(
                f"{sum(x['detected'] for x in rs)}/{len(rs)}, {med}, FA {sum(x['fa'] for x in rs)}"
            )
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines


def per_nab(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| NAB series (false alarm onsets) | " + " | ".join(methods()) + " |"]
    lines.append("|---" * (len(methods()) + 1) + "|")
    for r in sorted((r for r in results if r["kind"] == "nab"), key=lambda r: r["name"]):
        flag = " (tuning)" if r["name"] in TUNE_NAB else ""
        lines.append(
            f"| {r['name']}{flag} | " + " | ".join(str(r[m]["fa"]) for m in methods()) + " |"
        )
    return lines


def costs() -> list[str]:
    """Per-sample step cost (µs) and refit costs (ms), median of 5 runs each."""
    rng = np.random.default_rng(7)
    s = ForecastSettings()
    n = 20000
    v = (0.3 + 1e-6 * np.arange(n) + rng.normal(0, 0.01, n)).tolist()
    profile = tuple(0.02 * np.sin(2 * np.pi * np.arange(96) / 96))
    seasonal_fit = forecast.FittedParams(0.1, 0.05, 0.1, profile, 0.0, 900.0, 0.0)

    def per_sample(season: bool) -> float:
        runs = []
        for _ in range(5):
            st, _ = forecast.step(None, 0.0, v[0], 1.0, s)
            if season:
                st = forecast.apply_fit(st, seasonal_fit)
            t0 = time.perf_counter()
            for i in range(1, n):
                st, _ = forecast.step(st, 10.0 * i, v[i], 1.0, s)
            runs.append((time.perf_counter() - t0) / (n - 1) * 1e6)
        return statistics.median(runs)

    holt = 0.5 + 1e-4 * np.arange(360) + rng.normal(0, 0.01, 360)
    k = np.arange(384)
    long = 0.5 + 0.05 * np.sin(2 * np.pi * k / 96) + 1e-4 * k + rng.normal(0, 0.01, 384)

    def fit_ms(**kw: Any) -> float:
        refit.fit(holt, 10.0, **kw)  # warm: the first call imports statsmodels
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            refit.fit(holt, 10.0, **kw)
            runs.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(runs)

    imp = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t=time.perf_counter(); "
            "import statsmodels.tsa.holtwinters; print(time.perf_counter()-t)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seasonal_kw = {"season_len": 96, "long_values": long, "long_t0": 0.0, "long_step_s": 900.0}
    return [
        f"- forecaster update (`forecast.step`), per sample: {per_sample(False):.1f} µs "
        f"without a seasonal profile, {per_sample(True):.1f} µs with one (median of 5 runs of "
        f"{n} samples)",
        f"- refit, Holt on 360 points: {fit_ms():.1f} ms; with the Holt-Winters additive seasonal "
        f"fit on 384 buckets (4 days of 15 min): {fit_ms(**seasonal_kw):.1f} ms (median of 5, "
        "one BLAS thread)",
        f"- importing statsmodels.tsa.holtwinters (once per refit child): "
        f"{float(imp.stdout):.2f} s",
    ]


# Round 1 (trend_z 2/3/4 x lead_s 300/600) settled trend_z = 3, lead_s = 600; round 2
# (beta_max 0.1/0.5 x confirm 3/6) showed beta_max does not matter and confirm 6 trades 2/30
# detections for fewer false alarms (kept 3); round 3 (alpha_max 0.2/0.4) kept alpha_max = 0.8.
# Round 4 (seeds 100-119 and the 6 TUNE_NAB files; baseline 1 h there: 39/100 detected, 11.5 min,
# 0.122 false alarms/series-day, so the target is <= 0.024) added the GC guard and confirm_frac:
#   before round 4 (confirm 3 ticks, no guard)   94/100, 18.5 min, 0.146
#   GC guard without re-levelling on a fall      84/100, 18.5 min, 0.065 (confirm_frac 0)
#   GC guard + re-level, confirm_frac 0.25        93/100, 17.0 min, 0.065
#   confirm_frac 0.5                              77/100, 14.5 min, 0.028
#   confirm_frac 0.6                              69/100, 13.5 min, 0.024
#   confirm_frac 0.75                             61/100, 12.0 min, 0.020
#   confirm_frac 1.0                              25/100, 12.5 min, 0.008
#   lead_s 300 (confirm_frac 0.25)                76/100, 12.5 min, 0.028
#   lead_s 300, confirm_frac 0.5                  37/100, 11.0 min, 0.020
#   confirm_frac 0.5, trend_z 4                   77/100, 14.5 min, 0.028 (trend_z does not bind)
# The rule was "most detections among settings meeting all three targets on the tuning set", which
# picks 0.6; but at 0.6 the unit test's noisy leak after a near-zero fit alarms only 550 s (< one
# horizon) ahead, so 0.5 (610 s) was kept: it misses the tuning-set false-alarm target (0.028).
GRID = {
    "confirm_frac": (0.5, 0.6),
}


def tune(jobs: int) -> None:
    """Print the tuning grid's results on the tuning seeds and files only."""
    keys = list(GRID)
    with multiprocessing.Pool(jobs) as pool:
        for combo in itertools.product(*(GRID[k] for k in keys)):
            overrides = dict(zip(keys, combo, strict=True))
            res = pool.map(run_one, tasks(TUNE_SEEDS, list(TUNE_NAB), overrides))
            h = summarise(res, "healthd")
            b = summarise(res, f"baseline {MAIN_WINDOW / 3600:g}h")
            print(
                overrides,
                f"det {h['detected']}/{h['n']} (base {b['detected']}) lead {h['lead_min']:.1f} "
                f"(base {b['lead_min']:.1f}) fa {h['fa_all']:.3f} (base {b['fa_all']:.3f})",
                flush=True,
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tune", action="store_true", help="run the tuning grid on the tuning set")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "forecast_eval.md"))
    args = ap.parse_args()
    if args.tune:
        tune(args.jobs)
        return 0
    started = time.perf_counter()
    score_nab = [s for s in nab_files() if s not in TUNE_NAB]
    with multiprocessing.Pool(args.jobs) as pool:
        scored = pool.map(run_one, tasks(SCORE_SEEDS, nab_files(), {}))
    held_out = [r for r in scored if r["kind"] == "trace" or r["name"] in score_nab]
    lines = [
        "# Forecaster evaluation",
        "",
        f"Measured {dt.date.today().isoformat()} with `python bench/forecast_eval.py "
        f"--jobs {args.jobs}` on {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}.",
        "",
        f"Settings: `ForecastSettings` defaults (tuned on the tuning set only), horizon H = "
        f"{TRACE_H:g} s on the traces (sampled every {traces.INTERVAL_S:g} s), {NAB_H:g} s on "
        "NAB (sampled every 300 s). Baseline: `predict_linear` over trailing windows of 0.5, 1 "
        "and 4 h, alarm when the value predicted H ahead >= limit. NAB limits: 100 for CPU "
        "series (percent), 1.25 x the series maximum otherwise.",
        "",
        "Honesty: tuned on trace seeds "
        f"{TUNE_SEEDS.start}-{TUNE_SEEDS.stop - 1} and the 6 tuning NAB files only. The trace "
        f"seeds {SCORE_SEEDS.start}-{SCORE_SEEDS.stop - 1} are fresh (never looked at before this "
        f"table; the previous round's seeds {SEEN_SEEDS.start}-{SEEN_SEEDS.stop - 1} are retired). "
        f"The {len(score_nab)} held-out NAB files were scored once before this round: they are "
        "*seen once*, not fresh. The main comparison is the 1 h baseline window (fixed before "
        "scoring); the target is detection >= baseline, median lead >= baseline, false alarms "
        "<= 1/5 of the baseline's. No horizon-scaled baseline window was added. Tuning rule: "
        "most detections among settings meeting all three targets on the tuning set (that was "
        "confirm_frac 0.6); 0.5 was kept instead because at 0.6 a unit test's noisy leak alarms "
        "less than one horizon ahead, so the chosen setting missed the false-alarm target on the "
        "tuning set (0.028 vs 0.024). Grid and results: comments above GRID in the script.",
        "",
        f"## Held-out set: {len(SCORE_SEEDS)} traces per kind (seeds {SCORE_SEEDS.start}-"
        f"{SCORE_SEEDS.stop - 1}) and the {len(score_nab)} NAB series not used for tuning",
        "",
        *table(held_out),
        "",
        "Targets on the held-out set:",
        "",
        *targets(held_out),
        "",
        "## Same, NAB on all 17 series (6 of them were used for tuning)",
        "",
        *table(scored),
        "",
        "## Per trace kind (held-out seeds): detected, median lead, false-alarm onsets before T-3H",
        "",
        *per_kind(scored),
        "",
        *per_nab(scored),
        "",
        "## Cost",
        "",
        *costs(),
        "",
        f"Settings used: `{asdict(ForecastSettings())}`",
        "",
        f"Evaluation wall time: {time.perf_counter() - started:.0f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
