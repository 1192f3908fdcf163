"""Where a probe or a scrape goes: the container's own address or published port, put into
the URL or host:port its labels give.

Owns: the placeholders ``{address}`` (the container's address on its first network that has
one: on a network healthd shares, it can reach it) and ``{published:PORT}`` /
``{published:PORT/udp}`` (``host:port`` where the engine published that container port; an
all-interfaces binding is reached on loopback). A container's address, and a port published
without a fixed host port (``-p 8080`` or ``-P``), change with every start: a literal URL in a
label goes stale, a placeholder is filled in again from each inspect.
Must never: touch the engine or the network (the values come from ``ContainerState``).
"""

from __future__ import annotations

import ipaddress
import re

from healthd.core import labels as lb
from healthd.core.model import ContainerState

# The labels whose values name a target; the others never hold a placeholder.
TARGET_LABELS = (lb.PROBE_HTTP, lb.PROBE_TCP, lb.METRICS_URL)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PUBLISHED = re.compile(r"published:(\d{1,5})(?:/(tcp|udp|sctp))?")


class Unresolved(ValueError):
    """A placeholder that this container cannot fill in; the message says why."""


def _host(ip: str) -> str:
    """``ip`` as the host part of a URL or host:port (IPv6 in brackets)."""
    try:
        return f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    except ValueError:
        return ip


def _fill(name: str, c: ContainerState) -> str:
    if name == "address":
        if not c.addresses:
            raise Unresolved(f"{{address}}: the container has no address on a network "
                             f"(network mode {c.network_mode or 'default'})")
        return _host(c.addresses[0])
    m = _PUBLISHED.fullmatch(name)
    if m is None:
        raise Unresolved(f"{{{name}}}: unknown placeholder; expected {{address}} or "
                         "{published:PORT} (or {published:PORT/udp})")
    key = f"{int(m.group(1))}/{m.group(2) or 'tcp'}"
    for port, host_ip, host_port in c.published:
        if port == key:
            # Published on every interface (0.0.0.0 or ::): loopback reaches it too.
            host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host_ip, host_ip)
            return f"{_host(host)}:{host_port}"
    raise Unresolved(f"{{{name}}}: container port {key} is not published")


def expand(c: ContainerState) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """``c``'s labels with the placeholders in its target labels filled in, and a problem
    for each label that could not be (that label is left out, so it is skipped, not probed
    at a wrong address)."""
    if not any(k in TARGET_LABELS and "{" in v for k, v in c.labels):
        return c.labels, ()
    out: list[tuple[str, str]] = []
    problems: list[str] = []
    for k, v in c.labels:
        if k in TARGET_LABELS and "{" in v:
            try:
                v = _PLACEHOLDER.sub(lambda m: _fill(m.group(1), c), v)
            except Unresolved as exc:
                problems.append(f"label {k}={v!r} skipped: {exc}")
                continue
        out.append((k, v))
    return tuple(out), tuple(problems)
