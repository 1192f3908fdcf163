"""Summarise a ``py-spy record --format raw --threads`` profile of the daemon.

Reads the raw (collapsed) stacks that ``bench/watch_cost.py --profile`` writes, and the
``.threads`` file next to them (CPU seconds per native thread id over the same window, from
``/proc/<pid>/task``), and prints: CPU and samples per thread; samples by area of the daemon
(forecasts, the container list, the stats sweep, decisions...); the functions with the most
own samples; the functions with the most samples including what
they call; and, for each sample, the deepest healthd function on its stack (what healthd code,
with everything it calls, costs). Samples are taken only while a thread holds the GIL, so time
in system calls that release it (the cgroup reads' kernel side) shows in the threads' CPU,
not in the samples.
Line numbers are dropped: a function is ``name (file)``.

    python bench/profile_summary.py bench/results/profile/now.raw [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
_THREAD = re.compile(r"^thread \((0x[0-9a-fA-F]+|\d+)\)(?:: (.*))?$")


def _func(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    return f"{m.group(1)} ({m.group(2)})" if m else frame.strip()


def parse(path: Path) -> tuple[list[tuple[str, list[str], int]], dict[str, str]]:
    """(thread id, frames outermost first, count) per line, and thread id -> name."""
    stacks, names = [], {}
    for line in path.read_text().splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            continue
        parts = head.split(";")
        tid, frames = "?", parts
        m = _THREAD.match(parts[0])
        if m:
            tid = str(int(m.group(1), 0))
            names[tid] = m.group(2) or names.get(tid, "")
            frames = parts[1:]
        stacks.append((tid, [_func(f) for f in frames], int(count)))
    return stacks, names


# Where a sample's time goes, by the first rule (in this order) one of its frames matches;
# names cover the older layouts too (healthd/forecast.py, Daemon._evaluate): the baseline's.
AREAS = (
    ("forecasts (Foresight.observe, host forecasts)", ("Foresight.",)),
    ("container list (Engine.list: HTTP and JSON)", ("Engine.list ",)),
    ("stats sweep (cgroup files, Usage)", ("Sampler.sweep ",)),
    ("topology (Stacks.rebuild)", ("Stacks.rebuild ",)),
    ("decisions (Decider.evaluate, service health)", ("Decider.evaluate ",
                                                      "Decider.refresh_service ",
                                                      "Daemon._evaluate ",
                                                      "Daemon._refresh_service ")),
    ("rest of the sweep (Daemon._apply_sweep)", ("Daemon._apply_sweep ",)),
    ("rest of the observer thread", ("Observer.",)),
    ("HTTP server", ("serve_forever ",)),
)


def area(frames: list[str]) -> str:
    """The `AREAS` name of a sample, or "other"."""
    for name, marks in AREAS:
        if any(f.startswith(m) for f in frames for m in marks):
            return name
    return "other"


def _table(title: str, counts: Counter[str], total: int, top: int,
           what: str = "function") -> list[str]:
    out = [f"\n## {title}\n", f"| samples | % | {what} |", "|---:|---:|---|"]
    for name, n in counts.most_common(top):
        out.append(f"| {n} | {100 * n / max(total, 1):.1f} | `{name}` |")
    return out


def summarise(path: Path, top: int) -> str:
    """The summary as Markdown."""
    stacks, names = parse(path)
    total = sum(n for _, _, n in stacks)
    cpu: dict[str, float] = {}
    threads_file = path.with_suffix(".threads")
    if threads_file.exists():
        for line in threads_file.read_text().splitlines():
            tid, secs = line.split()
            cpu[tid] = float(secs)
    per_thread: Counter[str] = Counter()
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    healthd: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for tid, frames, n in stacks:
        per_thread[tid] += n
        areas[area(frames)] += n
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
        ours = [f for f in frames if "(healthd/" in f]
        healthd[ours[-1] if ours else (frames[0] if frames else "?")] += n
    out = [f"# {path.name}: {total} samples holding the GIL",
           "\n## Threads (CPU from /proc over the window; samples holding the GIL)\n",
           "| thread | name | CPU s | samples |", "|---|---|---:|---:|"]
    for tid in sorted(set(per_thread) | set(cpu), key=lambda t: -cpu.get(t, 0.0)):
        if cpu.get(tid, 0.0) == 0.0 and per_thread[tid] == 0:
            continue
        out.append(f"| {tid} | {names.get(tid, '')} | {cpu.get(tid, 0.0):.2f} | "
                   f"{per_thread[tid]} |")
    out += _table("Areas (first match on the stack)", areas, total, len(AREAS) + 1, "area")
    out += _table("Own samples (leaf function)", own, total, top)
    out += _table("Inclusive samples (function and what it calls)", incl, total, top)
    out += _table("Deepest healthd function on the stack", healthd, total, top)
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("raw", type=Path, nargs="+")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    for path in args.raw:
        print(summarise(path, args.top))


if __name__ == "__main__":
    main()
