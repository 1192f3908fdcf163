"""Parse the engine's container JSON (inspect, list, events) into values (pure).

Owns: the mapping from Docker API shapes to ContainerState and small event records.
Must never: call the engine. Odd or missing fields give defaults, never a KeyError.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from healthd.core import churn
from healthd.core.model import ContainerState

_ZERO_TIME = "0001-01-01T00:00:00Z"
_FRACTION = re.compile(r"\.(\d+)")
_EXIT_CODE = re.compile(r"-?[0-9]{1,10}")


def parse_time(s: object) -> float:
    """RFC 3339 with nanoseconds (as the engine writes it) to epoch seconds; 0.0 if unset,
    unparsable or not a string at all."""
    if not isinstance(s, str) or not s or s.startswith("0001-01-01"):
        return 0.0
    frac = 0.0
    m = _FRACTION.search(s)
    if m:
        frac = float("0." + m.group(1))
        s = s[: m.start()] + s[m.end():]
    s = s.replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return 0.0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp() + frac


def _int(value: Any) -> int:
    """An integer field; 0 when absent, null or not a number the engine would send (a bool,
    NaN, infinities, anything outside 64 bits, a string that is not an integer)."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return 0
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value if -(2**63) <= value < 2**63 else 0


def _d(obj: Any, key: str) -> dict[str, Any]:
    v = obj.get(key) if isinstance(obj, dict) else None
    return v if isinstance(v, dict) else {}


def from_inspect(
    data: dict[str, Any],
    deaths: tuple[float, ...] = (),
    stopped_on_purpose: bool = False,
    is_self: bool = False,
    stop_requested_at: float = 0.0,
) -> ContainerState:
    """A ContainerState from ``GET /containers/{id}/json`` plus healthd's event memory."""
    state = _d(data, "State")
    health = _d(state, "Health")
    config = _d(data, "Config")
    host = _d(data, "HostConfig")
    policy = _d(host, "RestartPolicy")
    check = _d(config, "Healthcheck")
    log = health.get("Log") or []
    last_output = ""
    if isinstance(log, list) and log and isinstance(log[-1], dict):
        last_output = str(log[-1].get("Output") or "")
    labels = _d(config, "Labels")
    return ContainerState(
        id=str(data.get("Id", "")),
        name=str(data.get("Name", "")).lstrip("/"),
        image=str(config.get("Image", "")),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        status=str(state.get("Status", "unknown")),
        exit_code=_int(state.get("ExitCode")),
        oom_killed=bool(state.get("OOMKilled")),
        health=str(health["Status"]) if health.get("Status") else None,
        health_failing_streak=_int(health.get("FailingStreak")),
        health_last_output=last_output,
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        restart_count=_int(data.get("RestartCount")),
        restart_policy=str(policy.get("Name") or "no") or "no",
        restart_policy_max=_int(policy.get("MaximumRetryCount")),
        healthcheck_start_period_s=_int(check.get("StartPeriod")) / 1e9,
        stopped_on_purpose=stopped_on_purpose,
        stop_requested_at=stop_requested_at,
        deaths=deaths,
        is_self=is_self,
        network_mode=str(host.get("NetworkMode") or ""),
        image_id=str(data.get("Image") or ""),
        created_at=parse_time(data.get("Created")),
        addresses=_addresses(_d(data, "NetworkSettings")),
        published=_published(_d(data, "NetworkSettings")),
    )


def _addresses(net: dict[str, Any]) -> tuple[str, ...]:
    """The container's IPv4 then IPv6 addresses, networks in name order (stable across
    inspects, so ``{address}`` does not flip between two networks)."""
    networks = _d(net, "Networks")
    v4, v6 = [], []
    for name in sorted(networks):
        n = networks[name]
        if isinstance(n, dict):
            v4.append(str(n.get("IPAddress") or ""))
            v6.append(str(n.get("GlobalIPv6Address") or ""))
    return tuple(a for a in v4 + v6 if a)


def _published(net: dict[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """``NetworkSettings.Ports`` as (container port, host IP, host port); unpublished
    exposed ports (a null binding list) and malformed entries are left out."""
    out = []
    for port, bindings in sorted(_d(net, "Ports").items()):
        for b in bindings if isinstance(bindings, list) else ():
            host_port = _int(b.get("HostPort")) if isinstance(b, dict) else 0
            if isinstance(b, dict) and 0 < host_port < 65536:
                out.append((str(port), str(b.get("HostIp") or ""), host_port))
    return tuple(out)


@dataclass(frozen=True)
class Summary:
    """One row of ``GET /containers/json?all=1``: enough to notice a change cheaply."""

    id: str
    name: str
    state: str
    health: str | None

    @property
    def fingerprint(self) -> tuple[str, str | None]:
        """What, when changed, calls for a fresh inspect."""
        return (self.state, self.health)


def from_list(row: dict[str, Any]) -> Summary:
    """Parse one list row; health is read from the Status text, e.g. 'Up 5 min (unhealthy)'."""
    status = str(row.get("Status") or "")
    health = None
    for text, value in (("(unhealthy)", "unhealthy"), ("(healthy)", "healthy"),
                        ("(health: starting)", "starting")):
        if text in status:
            health = value
            break
    names = row.get("Names")
    return Summary(
        id=str(row.get("Id", "")),
        name=str(names[0]).lstrip("/") if isinstance(names, list) and names else "",
        state=str(row.get("State") or "unknown"),
        health=health,
    )


@dataclass(frozen=True)
class Event:
    """A container event from the engine's stream."""

    time_ns: int
    action: str  # e.g. "die", "health_status: unhealthy"
    id: str
    name: str
    exit_code: int | None = None
    signal: str | None = None
    group: str = ""  # compose project or swarm/<service> from its labels ("" for neither)

    @property
    def time(self) -> float:
        """Event time in epoch seconds."""
        return self.time_ns / 1e9

    @property
    def verb(self) -> str:
        """The action without its detail: 'health_status: unhealthy' -> 'health_status'."""
        return self.action.split(":", 1)[0].strip()


def from_event(raw: dict[str, Any]) -> Event | None:
    """Parse one events-stream message; None for non-container or malformed messages."""
    if raw.get("Type", "container") != "container":
        return None
    actor = _d(raw, "Actor")
    attrs = _d(actor, "Attributes")
    cid = str(actor.get("ID") or raw.get("id") or "")
    action = str(raw.get("Action") or raw.get("status") or "")
    if not cid or not action:
        return None
    time_ns = raw.get("timeNano")
    # A bool is an int to Python, NaN and the infinities are floats: none is a time, and
    # neither is a value beyond 64-bit nanoseconds (Event.time would overflow).
    if isinstance(time_ns, bool) or not isinstance(time_ns, int) or not 0 <= time_ns < 2**63:
        secs = raw.get("time")  # older engines send seconds only
        if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not 0 <= secs < 2**33:
            return None
        time_ns = int(secs * 1_000_000_000)
    code = attrs.get("exitCode")
    return Event(
        time_ns=time_ns,
        action=action,
        id=cid,
        name=str(attrs.get("name", "")),
        # str.isdigit() also takes '²' and other digits int() refuses: ASCII digits only.
        exit_code=int(code) if isinstance(code, str) and _EXIT_CODE.fullmatch(code) else None,
        signal=str(attrs["signal"]) if "signal" in attrs else None,
        group=churn.group_of((str(k), str(v)) for k, v in attrs.items()) or "",
    )


@dataclass(frozen=True)
class Limits:
    """A container's resource limits from inspect; None where unlimited."""

    mem_bytes: int | None
    cpu_cores: float | None
    pids: int | None


def limits_from_inspect(data: dict[str, Any]) -> Limits:
    """Memory, CPU (cores) and pids limits from ``HostConfig``."""
    host = _d(data, "HostConfig")
    mem = _int(host.get("Memory"))
    nano = _int(host.get("NanoCpus"))
    quota, period = _int(host.get("CpuQuota")), _int(host.get("CpuPeriod"))
    # --cpu-quota alone leaves CpuPeriod 0: the kernel's default period (100 ms) applies.
    period = period if period > 0 else 100_000
    cores = nano / 1e9 if nano > 0 else (quota / period if quota > 0 else None)
    pids = _int(host.get("PidsLimit"))
    return Limits(mem if mem > 0 else None, cores, pids if pids > 0 else None)


def image_tags(rows: Any) -> dict[str, str]:
    """``GET /images/json`` rows to {tag: image id}; odd rows are skipped."""
    out: dict[str, str] = {}
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or not isinstance(row.get("Id"), str):
            continue
        for tag in row.get("RepoTags") or []:
            if isinstance(tag, str) and tag != "<none>:<none>":
                out[tag] = row["Id"]
    return out
