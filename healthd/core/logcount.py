"""Per-minute counts of matching log lines, in bounded memory (pure).

Owns: the count of a container's error-log lines per wall-clock minute, kept for the last
``keep`` minutes only, the rate over a window read from them, and the truncation of the
last match kept as evidence. Must never: read logs, store a line or read the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

EVIDENCE_CHARS = 120  # the last match is kept as evidence, at most this long


@dataclass(frozen=True)
class LogCounts:
    """Matches per minute (minute index = epoch seconds // 60), oldest first, plus the
    last match (truncated) and when it was seen."""

    minutes: tuple[tuple[int, int], ...] = ()
    last_match: str = ""
    last_at: float = 0.0


def add(counts: LogCounts, at: float, n: int, keep: int, last: str = "") -> LogCounts:
    """``n`` more matches at epoch ``at``; at most ``keep`` minutes are kept.

    last: the newest matching line (it is truncated here; "" keeps the previous one).
    """
    minute = int(at // 60)
    buckets = dict(counts.minutes)
    if n:
        buckets[minute] = buckets.get(minute, 0) + n
    kept = tuple(sorted((m, c) for m, c in buckets.items() if m > minute - keep))
    if last:
        return LogCounts(kept, truncate(last), at)
    return LogCounts(kept, counts.last_match, counts.last_at)


def per_minute(counts: LogCounts, now: float, window_s: float) -> float:
    """Matches per minute over the last ``window_s`` seconds (whole minutes, the current
    one included, so a burst shows at once rather than a minute late)."""
    minute = int(now // 60)
    span = max(1, round(window_s / 60))
    n = sum(c for m, c in counts.minutes if minute - span < m <= minute)
    return n / span


def truncate(line: str, limit: int = EVIDENCE_CHARS) -> str:
    """One line of evidence: control characters out, at most ``limit`` characters."""
    clean = "".join(ch if ch.isprintable() else " " for ch in line.strip())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"
