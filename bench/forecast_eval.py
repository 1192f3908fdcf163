"""Evaluate healthd's exhaustion forecaster against Prometheus-style ``predict_linear``.

Run from the repository root:  python bench/forecast_eval.py [--jobs 2] [--tune] [--set k=v ...]

Three data sets, each at horizons H of 10, 30 and 60 minutes:
  synthetic  bench/traces.py: leaks of five shapes (linear, accelerating, stepwise, GC sawtooth
             with a rising floor, leak on a cycle of 20 min to 1 day) and three quiet kinds that
             peak at 85-97 % of the limit (a cycle, a GC sawtooth, a cache that fills then stays
             flat); wide parameter ranges, sampled every 5 s to 5 min (at most H/5).
  nab        the 17 real, non-exhausting NAB AWS CloudWatch series (bench/data/nab-aws, 5 min
             samples): CPU against 100 %, others against 1.25 x their maximum.
  alibaba    24 real machine-memory series of the Alibaba 2018 cluster trace (10 s samples,
             ~6 days each, capped at 98 %), read from ../shared/data/alibaba-mem (research terms:
             never copied into the repository); each arrival at 98 % is an exhaustion.
Both methods see the same inputs: healthd through ``healthd.foresight.replay.replay`` (the
daemon's own step / refit / alarm code), the baseline as least squares over a trailing window W,
alarming when the value predicted H ahead is >= the limit (``predict_linear(x[W], H) >= limit``,
no ``for:`` clause), for W = H (the main comparison), 1 h and 4 h.

Honesty: tuning (``--tune``) sees only TUNE_SEEDS, TUNE_NAB and the Alibaba machines not in
ALIBABA_HELD_OUT. The table is computed on SCORE_SEEDS (never used for tuning), and reports the
held-out NAB files and Alibaba machines separately from the tuning ones.

Metrics, per exhaustion at time T (first sample at the limit after >= 3H below it):
  detected   an alarm is on at some tick in [T-3H, T-H]: announced at least one horizon ahead
  lead       T minus the first alarming tick in [T-3H, T), median over detected exhaustions
  false/day  alarm onsets (off -> on) per series-day, outside [T-3H, T] of any exhaustion and
             outside the time at the limit and one H after it
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
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

from healthd.foresight import cycles, forecast, refit, replay  # noqa: E402
from healthd.foresight.settings import ForecastSettings  # noqa: E402

NAB_DIR = ROOT / "bench" / "data" / "nab-aws"
ALIBABA_DIR = Path(os.environ.get("HEALTHD_ALIBABA_DIR", ROOT.parent / "shared" / "data"
                                  / "alibaba-mem"))
ALIBABA_LIMIT = 98.0  # the source caps utilisation at 98 %
TUNE_NAB = (
    "ec2_cpu_utilization_24ae8d",
    "ec2_cpu_utilization_825cc2",
    "ec2_disk_write_bytes_1ef3de",
    "ec2_network_in_257a54",
    "elb_request_count_8c0756",
    "rds_cpu_utilization_cc0c53",
)
# Chosen before any look at the data (every third machine in name order), never tuned on.
ALIBABA_HELD_OUT = ("m_1008", "m_1022", "m_1039", "m_1053", "m_1072", "m_1082", "m_1096", "m_102")
TUNE_SEEDS = range(1000, 1006)  # issue 9 rounds: the new generator's tuning seeds
SCORE_SEEDS = range(2000, 2010)  # never used for tuning: the final table only
HORIZONS = (600.0, 1800.0, 3600.0)
BASE_WINDOWS = ("H", 3600.0, 4 * 3600.0)
SETS = ("synthetic", "nab", "alibaba")


def nab_files() -> list[str]:
    return sorted(p.stem for p in NAB_DIR.glob("*.csv"))


def alibaba_files() -> list[str]:
    return sorted(p.name.removesuffix(".csv.gz") for p in ALIBABA_DIR.glob("m_*.csv.gz"))


def load_nab(stem: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(t, v, limit): CPU series against 100 (%), others against 1.25 x their own maximum."""
    rows = list(replay.read_csv(str(NAB_DIR / f"{stem}.csv")))
    t = np.array([r[0] for r in rows])
    v = np.array([r[1] for r in rows])
    limit = 100.0 if "cpu" in stem else 1.25 * float(v.max())
    return t, v, limit


def load_alibaba(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    with gzip.open(ALIBABA_DIR / f"{name}.csv.gz", "rt", encoding="utf-8") as fh:
        next(fh)
        arr = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    order = np.argsort(arr[:, 0], kind="stable")
    return arr[order, 0], arr[order, 1], ALIBABA_LIMIT


def baseline_alarms(t: np.ndarray, v: np.ndarray, limit: float, window_s: float, h: float) -> Any:
    """predict_linear(x[window_s], h) >= limit at every tick, vectorised with cumulative sums."""
    x = (t - t[0]) / 3600.0  # hours: keeps the cumulative sums well conditioned
    c = [np.concatenate(([0.0], np.cumsum(a))) for a in (np.ones_like(x), x, v, x * x, x * v)]
    hi = np.arange(1, len(t) + 1)
    lo = np.searchsorted(t, t - window_s, side="left")
    n, sx, sy, sxx, sxy = (a[hi] - a[lo] for a in c)
    den = n * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(den > 1e-12 * n * n, (n * sxy - sx * sy) / den, 0.0)
    mean_x, mean_y = sx / n, sy / n
    pred = mean_y + slope * (x + h / 3600.0 - mean_x)
    return (n >= 2) & (pred >= limit)


def healthd_alarms(t: np.ndarray, v: np.ndarray, limit: float, s: ForecastSettings) -> Any:
    out = replay.replay(zip(t.tolist(), v.tolist(), strict=True), limit, s, None)
    return np.array([r["alarm"] for r in out], dtype=bool)


def score(t: np.ndarray, v: np.ndarray, limit: float, alarm: Any, h: float) -> dict[str, Any]:
    """Detections, leads and false-alarm onsets of one series (see the module docstring)."""
    at = v >= limit
    starts = np.flatnonzero(at & ~np.concatenate(([False], at[:-1])))
    excused = at.copy()
    det: list[bool] = []
    leads: list[float] = []
    at_idx = np.flatnonzero(at)
    for i in starts:
        ti = float(t[i])
        excused |= (t >= ti - 3 * h) & (t <= ti)
        prev = at_idx[at_idx < i]
        last_at = float(t[prev[-1]]) if prev.size else None
        if ti - float(t[0]) < 3 * h or (last_at is not None and ti - last_at < 3 * h):
            continue  # too close to the start or to the previous exhaustion to be scored
        win = (t >= ti - 3 * h) & (t <= ti - h)
        hit = bool(alarm[win].any())
        det.append(hit)
        if hit:
            early = (t >= ti - 3 * h) & (t < ti) & alarm
            leads.append(ti - float(t[early][0]))
    if at_idx.size:  # an alarm within H after being at the limit is not a false one
        prev_at = np.searchsorted(t[at_idx], t, side="right") - 1
        ok = prev_at >= 0
        excused[ok] |= t[ok] - t[at_idx[prev_at[ok]]] <= h
    onsets = alarm & ~np.concatenate(([False], alarm[:-1]))
    step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    return {
        "fa": int((onsets & ~excused).sum()),
        "days": float((~excused).sum()) * step / 86400.0,
        "det": det,
        "leads": leads,
    }


def method_names() -> list[str]:
    return ["healthd"] + [f"base W={w if w == 'H' else f'{w / 3600:g}h'}" for w in BASE_WINDOWS]


def run_one(task: tuple[str, str, int, float, dict[str, Any]]) -> dict[str, Any]:
    """One series at one horizon through healthd and every baseline window; picklable."""
    kind, name, seed, h, overrides = task
    if kind == "synthetic":
        tr = traces.make(name, seed, h)
        t, v, limit = tr.t, tr.v, tr.limit
    elif kind == "nab":
        t, v, limit = load_nab(name)
    else:
        t, v, limit = load_alibaba(name)
    s = replace(ForecastSettings(horizon_s=h), **overrides)
    res: dict[str, Any] = {"kind": kind, "name": name, "seed": seed, "h": h}
    started = time.perf_counter()
    res["healthd"] = score(t, v, limit, healthd_alarms(t, v, limit, s), h)
    res["secs"] = time.perf_counter() - started
    for w, m in zip(BASE_WINDOWS, method_names()[1:], strict=True):
        win = h if w == "H" else float(w)
        res[m] = score(t, v, limit, baseline_alarms(t, v, limit, win, h), h)
    return res


def tasks(seeds: range, nab: list[str], ali: list[str], horizons: tuple[float, ...],
          overrides: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for h in horizons:
        out += [("alibaba", m, 0, h, overrides) for m in ali]
        out += [("synthetic", k, s, h, overrides) for k in traces.KINDS for s in seeds]
        out += [("nab", stem, 0, h, overrides) for stem in nab]
    return out


def summary(rs: list[dict[str, Any]], m: str) -> dict[str, Any]:
    det = [d for r in rs for d in r[m]["det"]]
    leads = [x for r in rs for x in r[m]["leads"]]
    days = sum(r[m]["days"] for r in rs)
    return {
        "hit": sum(det),
        "n": len(det),
        "lead": statistics.median(leads) / 60 if leads else float("nan"),
        "fa": sum(r[m]["fa"] for r in rs) / days if days else float("nan"),
    }


def cell(s: dict[str, Any]) -> str:
    det = f"{s['hit']}/{s['n']} ({100 * s['hit'] / s['n']:.0f}%)" if s["n"] else "-"
    lead = f"{s['lead']:.0f}" if s["n"] and s["hit"] else "-"
    return f"{det}, {lead} min, {s['fa']:.2f}/d"


def verdict(rs: list[dict[str, Any]]) -> str:
    """The issue's targets against the W = H baseline: det >= 95 %, lead >=, FA <= 1/5."""
    h, b = summary(rs, "healthd"), summary(rs, method_names()[1])
    out = []
    if h["n"]:
        out.append("det ok" if h["hit"] >= 0.95 * h["n"] else "det NO")
        out.append("lead ok" if h["hit"] and h["lead"] >= b["lead"] else "lead NO")
    out.append("FA ok" if h["fa"] <= b["fa"] / 5 else "FA NO")
    return " ".join(out)


def tables(results: list[dict[str, Any]]) -> list[str]:
    """One row per data set (and per synthetic kind) and horizon: method cells and targets."""
    ms = method_names()
    head = ["| set | H | " + " | ".join(ms) + " | targets vs W=H |",
            "|---" * (len(ms) + 3) + "|"]
    groups: list[tuple[str, Any]] = [
        ("synthetic, all leaks + quiet", lambda r: r["kind"] == "synthetic"),
        ("NAB held-out (11)", lambda r: r["kind"] == "nab" and r["name"] not in TUNE_NAB),
        ("NAB tuning (6)", lambda r: r["kind"] == "nab" and r["name"] in TUNE_NAB),
        ("Alibaba held-out (8)", lambda r: r["kind"] == "alibaba"
         and r["name"] in ALIBABA_HELD_OUT),
        ("Alibaba tuning (16)", lambda r: r["kind"] == "alibaba"
         and r["name"] not in ALIBABA_HELD_OUT),
    ]
    groups += [(f"synthetic {k}", lambda r, k=k: r["kind"] == "synthetic" and r["name"] == k)
               for k in traces.KINDS]
    lines = list(head)
    for label, pred in groups:
        for h in sorted({r["h"] for r in results}):
            rs = [r for r in results if r["h"] == h and pred(r)]
            if not rs:
                continue
            cells = " | ".join(cell(summary(rs, m)) for m in ms)
            lines.append(f"| {label} | {h / 60:g} min | {cells} | {verdict(rs)} |")
    return lines


def costs() -> list[str]:
    """Per-sample step cost (µs of CPU) and refit costs (ms), median of 5 runs each."""
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
            # CPU time, not wall time: on a shared machine the wall clock also counts the
            # time other processes held the core (that made 31 µs read as 97 µs once).
            t0 = time.process_time()
            for i in range(1, n):
                st, _ = forecast.step(st, 10.0 * i, v[i], 1.0, s)
            runs.append((time.process_time() - t0) / (n - 1) * 1e6)
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
    k = np.arange(s.cycle_buckets)
    fine = 0.5 + 0.1 * np.sin(2 * np.pi * k / 60) + rng.normal(0, 0.01, k.size)  # 2 h cycle

    def cycle_ms() -> float:
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            cycles.learn(fine, 0.0, s.cycle_bucket_s, s.cycle_min_s, s.cycle_max_s,
                         s.cycle_strength)
            runs.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(runs)

    return [
        f"- forecaster update (`forecast.step`), per sample: {per_sample(False):.1f} µs "
        f"without a seasonal profile, {per_sample(True):.1f} µs with one (median of 5 runs of "
        f"{n} samples)",
        f"- refit, Holt on 360 points: {fit_ms():.1f} ms; with the Holt-Winters additive seasonal "
        f"fit on 384 buckets (4 days of 15 min): {fit_ms(**seasonal_kw):.1f} ms (median of 5, "
        "one BLAS thread)",
        f"- cycle search (`cycles.learn`, in the refit) on {s.cycle_buckets} buckets of "
        f"{s.cycle_bucket_s:g} s: {cycle_ms():.1f} ms (median of 5)",
        f"- importing statsmodels.tsa.holtwinters (once per refit child): "
        f"{float(imp.stdout):.2f} s",
    ]


def parse_set(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        k, _, v = item.partition("=")
        default = getattr(ForecastSettings(), k)
        out[k] = type(default)(v)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tune", action="store_true", help="tuning set only, no file written")
    ap.add_argument("--set", nargs="*", default=[], help="ForecastSettings overrides, k=v")
    ap.add_argument("--horizons", default=",".join(f"{h:g}" for h in HORIZONS))
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--sets", default=",".join(SETS),
                    help="comma-separated data sets to run (tuning runs of one set are faster)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "forecast_eval.md"))
    args = ap.parse_args()
    overrides = parse_set(args.set)
    horizons = tuple(float(x) for x in args.horizons.split(","))
    sets = set(args.sets.split(","))
    if not sets <= set(SETS):
        ap.error(f"--sets: unknown {sorted(sets - set(SETS))}; known: {', '.join(SETS)}")
    ali = alibaba_files() if "alibaba" in sets else []
    if "alibaba" in sets and not ali:
        print(f"note: {ALIBABA_DIR} not found: the Alibaba data set is skipped", file=sys.stderr)
    started = time.perf_counter()
    if args.tune:
        todo = tasks(TUNE_SEEDS if "synthetic" in sets else range(0),
                     list(TUNE_NAB) if "nab" in sets else [],
                     [m for m in ali if m not in ALIBABA_HELD_OUT], horizons, overrides)
    else:
        todo = tasks(SCORE_SEEDS if "synthetic" in sets else range(0),
                     nab_files() if "nab" in sets else [], ali, horizons, overrides)
    with multiprocessing.Pool(min(args.jobs, 2)) as pool:
        results = pool.map(run_one, todo, chunksize=1)
    body = tables(results)
    if args.tune:
        print(overrides)
        print("\n".join(body))
        print(f"wall {time.perf_counter() - started:.0f} s")
        return 0
    slow = max(results, key=lambda r: r["secs"])
    lines = [
        "# Forecaster evaluation",
        "",
        f"Measured {dt.date.today().isoformat()} with `python bench/forecast_eval.py "
        f"--jobs {args.jobs}` on {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}.",
        "",
        "Each cell: exhaustions detected at least one horizon ahead / scored (%), median lead "
        "(min, capped at 3 H), false-alarm onsets per series-day. `targets` compares healthd "
        "with the W = H baseline: detection >= 95 %, median lead >= the baseline's, false "
        "alarms <= 1/5 of the baseline's. Method and honesty rules: the script's docstring. "
        f"Synthetic: seeds {SCORE_SEEDS.start}-{SCORE_SEEDS.stop - 1} (never tuned on), "
        f"{len(SCORE_SEEDS)} per kind and horizon; the quiet kinds count false alarms only.",
        "",
        *body,
        "",
        "## Cost",
        "",
        *([] if args.no_cost else costs()),
        f"- slowest replay: {slow['kind']} {slow['name']} at H = {slow['h']:g} s, "
        f"{slow['secs']:.1f} s",
        "",
        f"Settings used: `{asdict(replace(ForecastSettings(), **overrides))}` (horizon_s per row)",
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
