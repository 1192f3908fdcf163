"""What the other nodes' healthd see: their tasks' pressure and their host, over HTTP.

Owns: the report format (``report_json`` / ``report_from``, pure) and the thread that asks
every other node's healthd for it (``GET http://<node addr>:<peer port>/swarm/report``
with ``Authorization: Bearer <daemon.token>``) every ``relist_s``. A peer that does not
answer in ``peer_timeout_s``, answers with an error, or whose last answer is older than
three rounds is absent from ``reports()``: unknown, never idle.
Must never: decide, or send the token anywhere but to the nodes the Swarm lists.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from healthd.core.scale import ReplicaPressure
from healthd.core.swarm import HostReport

log = logging.getLogger(__name__)

PATH = "/swarm/report"


@dataclass(frozen=True)
class PeerReport:
    """One node's answer: its running tasks' pressure (by task id) and its host."""

    node: str
    tasks: Mapping[str, ReplicaPressure]
    host: HostReport | None
    at: float  # when it was received (this node's clock)


def report_json(node: str, tasks: Mapping[str, ReplicaPressure], host: HostReport | None,
                at: float) -> dict[str, Any]:
    """The body this node serves on ``/swarm/report``."""
    return {
        "node": node, "at": at,
        "tasks": {tid: {"cpu": p.cpu, "memory": p.memory, "forecast_alarm": p.forecast_alarm}
                  for tid, p in tasks.items()},
        "host": None if host is None else {"exhausted": host.exhausted, "why": host.why,
                                           "ok_since": host.ok_since},
    }


def _fraction(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def report_from(body: Any, at: float) -> PeerReport | None:
    """A peer's body parsed; None when it is not a report."""
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), dict):
        return None
    tasks = {str(tid): ReplicaPressure(str(tid), cpu=_fraction(t.get("cpu")),
                                       memory=_fraction(t.get("memory")),
                                       forecast_alarm=t.get("forecast_alarm") is True)
             for tid, t in body["tasks"].items() if isinstance(t, dict)}
    h = body.get("host")
    host = None
    if isinstance(h, dict) and isinstance(h.get("exhausted"), bool):
        host = HostReport(h["exhausted"], str(h.get("why") or ""), _fraction(h.get("ok_since")))
    return PeerReport(str(body.get("node", "")), tasks, host, at)


class Peers:
    """Asks the other nodes' healthd for their reports, in a thread of its own."""

    def __init__(self, token: str | None, port: int, timeout_s: float, interval_s: float,
                 clock: Callable[[], float]) -> None:
        self.token, self.port, self.timeout_s, self.interval_s, self.clock = (
            token, port, timeout_s, interval_s, clock)
        self._targets: dict[str, str] = {}  # node id -> address
        self._got: dict[str, PeerReport] = {}
        self._failed: dict[str, str] = {}  # node id -> why its last ask failed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="peers")
        self._thread = threading.Thread(target=self._loop, name="peers", daemon=True)

    def start(self) -> None:
        """Start asking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop asking."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def set_targets(self, targets: Mapping[str, str]) -> None:
        """The other nodes to ask: node id -> its Swarm address (host, no port)."""
        with self._lock:
            self._targets = dict(targets)
            for gone in [n for n in self._got if n not in targets]:
                del self._got[gone]

    def reports(self) -> dict[str, PeerReport]:
        """The fresh answers by node id (at most three rounds old)."""
        now = self.clock()
        with self._lock:
            return {n: r for n, r in self._got.items()
                    if now - r.at <= 3 * self.interval_s + self.timeout_s}

    def failures(self) -> dict[str, str]:
        """Why the last ask of each unanswering node failed."""
        with self._lock:
            return dict(self._failed)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                targets = dict(self._targets)
            list(self._pool.map(lambda item: self._ask(*item), targets.items()))
            self._stop.wait(self.interval_s)

    def _ask(self, node: str, addr: str) -> None:
        host = f"[{addr}]" if ":" in addr else addr
        req = urllib.request.Request(f"http://{host}:{self.port}{PATH}")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                body = json.loads(r.read(4_000_000))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            why = str(getattr(exc, "reason", exc))
            with self._lock:
                self._got.pop(node, None)
                if self._failed.get(node) != why:
                    log.warning("peer %s (%s) did not answer: %s; its tasks are unknown",
                                node[:12], addr, why)
                self._failed[node] = why
            return
        rep = report_from(body, self.clock())
        with self._lock:
            if rep is None:
                self._got.pop(node, None)
                self._failed[node] = "not a report"
            else:
                self._got[node] = rep
                self._failed.pop(node, None)
