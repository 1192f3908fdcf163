"""Resource counters of one container, and the `Usage` computed from them.

Owns: parsing an engine stats API body (``GET /containers/{id}/stats``, cgroup v1 or v2) into
raw `Counters`, the memory working-set definition, limit interpretation and the CPU rate over
two of our own consecutive samples.
Must never: do I/O, read the clock, or raise anything but `StatsError` on odd input. The
cgroup-file reader (`healthd.cgroupfs`) produces the same `Counters`, so both sampling paths
share one definition of every number.

Definitions (kept identical to the docker CLI so `docker stats` and healthd agree):
- working set = usage minus inactive file cache (v1 ``total_inactive_file``, falling back to
  ``inactive_file``; v2 ``inactive_file``), and plain usage when that cache is not below usage.
- cpu_percent = CPU seconds used per wall second * 100 (100 = one core busy).
- cpu_fraction = cpu_percent / 100 / limit cores (the quota, else the host's cores).
One-shot stats bodies carry no useful ``precpu_stats``, so the CPU rate always comes from two
samples the caller took itself.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthd.core.model import Usage

# Limits at or above this are "no limit" sentinels: cgroup v1 writes LONG_MAX rounded down to
# a page (9223372036854771712), and nothing real comes near 2**62 bytes or pids.
UNLIMITED_AT = 2**62

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$"
)


class StatsError(ValueError):
    """A stats body (or counter file content) that cannot be read as counters."""


@dataclass(frozen=True)
class Counters:
    """Raw counters of one container at one instant, from either sampling path.

    Every field is None when the source did not report it (a stopped container's body has
    empty ``memory_stats``, v1 bodies carry no pids limit, ...).
    """

    t: float | None  # epoch seconds at which the counters were read; None if unknown
    cpu_total_ns: int | None = None  # cumulative CPU time of the container, ns
    mem_usage_bytes: int | None = None  # cgroup usage, page cache included
    mem_inactive_file_bytes: int | None = None  # reclaimable inactive file cache
    mem_limit_bytes: int | None = None  # as reported; None when it is a no-limit sentinel
    pids: int | None = None
    pids_limit: int | None = None  # as reported; None when unlimited
    online_cpus: int | None = None  # host cores the engine saw (API path only)
    cgroup_version: int | None = None  # 1 or 2 when recognisable
    source: str = "api"  # "api" or "cgroup"


def parse_timestamp(text: object) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp with up to nanosecond digits.

    Returns None for Go's zero time (``0001-01-01T00:00:00Z``, sent for a missing reading),
    for None and for the empty string. Raises `StatsError` for anything else unparsable.
    """
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise StatsError(f"timestamp is {type(text).__name__}, not a string: {text!r}")
    m = _RFC3339.match(text)
    if m is None:
        raise StatsError(f"unparsable timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year <= 1:
        return None
    frac, zone = m.group(7), m.group(8)
    try:
        t = float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    except (ValueError, OverflowError) as exc:
        raise StatsError(f"timestamp out of range: {text!r}") from exc
    if frac:
        # float keeps ~0.2 µs at today's epoch: more digits than that are noise anyway.
        t += int(frac[:9].ljust(9, "0")) / 1e9
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        t -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return t


def _section(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``body[key]`` as a mapping; {} when absent or null."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise StatsError(f"{key} is {type(value).__name__}, not an object")
    return value


def _count(section: Mapping[str, Any], key: str) -> int | None:
    """A non-negative integer counter below 2**64, None when absent or null."""
    value = section.get(key)
    if value is None:
        return None
    # bool is an int subclass; a boolean counter is corruption, not a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StatsError(f"{key} is {type(value).__name__}, not a number: {value!r}")
    if value < 0:
        raise StatsError(f"{key} is negative: {value!r}")
    # The kernel's and the engine's counters are unsigned 64-bit. NaN and the infinities
    # (json.loads accepts them) and anything larger are corruption: int() would raise on the
    # former, and the latter would overflow the float divisions of `usage`.
    if not value < 2**64:
        raise StatsError(f"{key} is not a 64-bit counter: {value!r}")
    return int(value)


def limit_or_none(value: int | None) -> int | None:
    """A reported limit, or None when it is absent, zero or a no-limit sentinel."""
    if value is None or value <= 0 or value >= UNLIMITED_AT:
        return None
    return value


def parse_api(body: object) -> Counters:
    """Counters from one engine stats API body (a decoded JSON object).

    Raises `StatsError` when the body is not an object or a field has the wrong type;
    missing sections or fields leave the matching counter None.
    """
    if not isinstance(body, Mapping):
        raise StatsError(f"stats body is {type(body).__name__}, not an object")
    mem = _section(body, "memory_stats")
    mem_stats = _section(mem, "stats")
    cpu = _section(body, "cpu_stats")
    cpu_usage = _section(cpu, "cpu_usage")
    pids = _section(body, "pids_stats")

    version: int | None = None
    if "total_inactive_file" in mem_stats or "hierarchical_memory_limit" in mem_stats:
        version = 1
    elif "anon" in mem_stats or "file" in mem_stats:
        version = 2
    inactive = _count(mem_stats, "total_inactive_file")
    if inactive is None:
        inactive = _count(mem_stats, "inactive_file")

    total_ns = _count(cpu_usage, "total_usage")
    # A stopped container reports a zeroed cpu_stats next to a zero "read" time.
    t = parse_timestamp(body.get("read"))
    if t is None and total_ns == 0:
        total_ns = None
    return Counters(
        t=t,
        cpu_total_ns=total_ns,
        mem_usage_bytes=_count(mem, "usage"),
        mem_inactive_file_bytes=inactive,
        mem_limit_bytes=limit_or_none(_count(mem, "limit")),
        pids=_count(pids, "current"),
        pids_limit=limit_or_none(_count(pids, "limit")),
        online_cpus=_count(cpu, "online_cpus") or None,
        cgroup_version=version,
        source="api",
    )


def working_set(usage_bytes: int | None, inactive_file_bytes: int | None) -> int | None:
    """Usage minus inactive file cache, bytes; None without a usage figure.

    Mirrors the docker CLI: when the inactive cache is not below usage (racy counters),
    report plain usage rather than zero or a negative number.
    """
    if usage_bytes is None:
        return None
    if inactive_file_bytes is not None and inactive_file_bytes < usage_bytes:
        return usage_bytes - inactive_file_bytes
    return usage_bytes


def cpu_limit_cores(
    nano_cpus: int | None = None, cpu_quota: int | None = None, cpu_period: int | None = None
) -> float | None:
    """Cores a container may use, from inspect's ``HostConfig``; None when unlimited.

    ``NanoCpus`` (``--cpus``) wins; else ``CpuQuota / CpuPeriod`` (µs / µs, period defaulting to
    the kernel's 100 000 µs); quota ≤ 0 means no quota.
    """
    if nano_cpus is not None and nano_cpus > 0:
        return nano_cpus / 1e9
    if cpu_quota is not None and cpu_quota > 0:
        period = cpu_period if cpu_period is not None and cpu_period > 0 else 100_000
        return cpu_quota / period
    return None


def cpu_rate(prev: Counters, cur: Counters) -> float | None:
    """CPU seconds used per wall second between two samples (1.0 = one core busy).

    None when either sample lacks CPU or time, when time did not advance, or when the
    counter went backwards (the container restarted: its cgroup is new).
    """
    if prev.cpu_total_ns is None or cur.cpu_total_ns is None:
        return None
    if prev.t is None or cur.t is None or cur.t <= prev.t:
        return None
    used_ns = cur.cpu_total_ns - prev.cpu_total_ns
    if used_ns < 0:
        return None
    return used_ns / ((cur.t - prev.t) * 1e9)


def _hint_limit(hint: int | None, reported: int | None) -> int | None:
    """Inspect's limit (≤ 0 = unlimited) when known, else the reported one."""
    if hint is None:
        return reported
    return hint if hint > 0 else None


def usage(
    cur: Counters,
    prev: Counters | None,
    *,
    now: float,
    mem_limit_bytes: int | None = None,
    pids_limit: int | None = None,
    cpu_limit_cores: float | None = None,
    host_cpus: int | None = None,
) -> Usage:
    """The `Usage` of one container from this sample and the previous one.

    now: epoch seconds stamped on the result (the sweep's time).
    mem_limit_bytes: inspect ``HostConfig.Memory``, the authority: ≤ 0 = unlimited, None =
      unknown (then the reported limit is used; the API reports host memory when unlimited).
    pids_limit: inspect ``HostConfig.PidsLimit``: ≤ 0 = unlimited, None = unknown.
    cpu_limit_cores: the container's CPU quota in cores; None = no quota, in which case the
      fraction is of ``host_cpus`` (falling back to the body's ``online_cpus``).
    CPU fields are None on a first sample (``prev`` None) or when the rate is undefined.
    """
    cpu_percent: float | None = None
    cpu_fraction: float | None = None
    rate = cpu_rate(prev, cur) if prev is not None else None
    if rate is not None:
        cpu_percent = rate * 100.0
        cores = cpu_limit_cores if cpu_limit_cores and cpu_limit_cores > 0 else None
        if cores is None:
            cpus = host_cpus or cur.online_cpus
            cores = float(cpus) if cpus else None
        if cores is not None:
            cpu_fraction = rate / cores
    return Usage(
        t=now,
        cpu_fraction=cpu_fraction,
        cpu_percent=cpu_percent,
        mem_bytes=working_set(cur.mem_usage_bytes, cur.mem_inactive_file_bytes),
        mem_limit_bytes=_hint_limit(mem_limit_bytes, cur.mem_limit_bytes),
        pids=cur.pids,
        pids_limit=_hint_limit(pids_limit, cur.pids_limit),
        source=cur.source,
    )
