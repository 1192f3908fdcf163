"""Active probes (HTTP, TCP) and the bounded pool that runs them and the scrapes.

Owns: the ``Pool`` that runs one job per key (container and kind) at its own interval in a
fixed number of worker threads, never two at once for one key and never more than the
workers at once in all (a due job waits for a free worker rather than queueing behind a
hung one), handing each job's value to the daemon's queue; and the probe functions.
Must never: decide or change the daemon's state; a probe failing is a value, not an error.
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

log = logging.getLogger(__name__)

_BODY_BYTES = 65536  # of a probe's answer, read for expect_body and then dropped
# No proxy for probes: http_proxy in healthd's environment must not reroute 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ProbeResult:
    """One probe of container ``cid`` at epoch ``at``: its verdict, latency and what it saw."""

    cid: str
    at: float
    ok: bool
    latency_s: float
    detail: str  # "HTTP 200", "HTTP 500", "timed out after 2 s", "connection refused"


def _why(exc: BaseException, timeout_s: float) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout_s:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return str(reason)[:120] or type(reason).__name__


def http(url: str, timeout_s: float, expect_status: tuple[int, ...],
         expect_body: str | None) -> tuple[bool, str]:
    """GET ``url``: (ok, detail). ok when the status is expected (any 2xx/3xx by default)
    and the body matches ``expect_body``."""
    try:
        with _OPENER.open(url, timeout=timeout_s) as resp:
            status = int(resp.status)
            body = resp.read(_BODY_BYTES) if expect_body else b""
    except urllib.error.HTTPError as exc:
        status, body = exc.code, b""
        exc.close()
    except (OSError, ValueError) as exc:  # URLError is an OSError; ValueError: bad URL
        return False, _why(exc, timeout_s)
    ok = status in expect_status if expect_status else 200 <= status < 400
    detail = f"HTTP {status}"
    if ok and expect_body and re.search(expect_body, body.decode("utf-8", "replace")) is None:
        return False, f"{detail}, body does not match {expect_body!r}"
    return ok, detail


def tcp(host: str, port: int, timeout_s: float) -> tuple[bool, str]:
    """Connect to ``host:port`` and close: (ok, detail)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, "connected"
    except OSError as exc:
        return False, _why(exc, timeout_s)


def timed(cid: str, check: Callable[[], tuple[bool, str]], timeout_s: float,
          clock: Callable[[], float]) -> ProbeResult:
    """Run one probe and time it; an answer slower than the timeout counts as a failure
    (the socket timeout bounds each read, not a trickling answer as a whole)."""
    at = clock()
    started = time.monotonic()
    ok, detail = check()
    took = time.monotonic() - started
    if ok and took > timeout_s:
        ok, detail = False, f"answered in {took:.1f} s, over its {timeout_s:g} s timeout"
    return ProbeResult(cid, at, ok, took, detail)


@dataclass(frozen=True)
class Job:
    """Something to run every ``interval_s``: ``run`` returns the value to queue (or None)."""

    interval_s: float
    run: Callable[[], Any]


class Pool:
    """Runs jobs by key at their intervals in ``workers`` threads; results go to ``out``."""

    def __init__(self, workers: int, out: queue.Queue[Any]) -> None:
        self.workers = workers
        self.out = out
        self._jobs: dict[Hashable, Job] = {}
        self._due: dict[Hashable, float] = {}
        self._busy: set[Hashable] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="probe")
        self._thread = threading.Thread(target=self._run, name="probe-schedule", daemon=True)
        self.skipped_busy = 0  # due runs skipped because the last one had not finished

    def start(self) -> None:
        """Schedule in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; running jobs finish within their timeouts (not waited for)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def set_jobs(self, jobs: Mapping[Hashable, Job]) -> None:
        """Replace the job set: new keys run at once, gone keys stop, others keep their slot."""
        with self._lock:
            now = time.monotonic()
            for key in list(self._jobs):
                if key not in jobs:
                    del self._jobs[key]
                    self._due.pop(key, None)
            for key, job in jobs.items():
                self._jobs[key] = job
                self._due.setdefault(key, now)
        self._wake.set()

    @property
    def busy(self) -> int:
        """Jobs running right now."""
        return len(self._busy)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = sorted((t, k) for k, t in self._due.items() if t <= now)
                for _, key in due:
                    if len(self._busy) >= self.workers:
                        break  # all workers taken: the rest wait for a free one, in order
                    job = self._jobs[key]
                    self._due[key] = now + job.interval_s
                    if key in self._busy:
                        self.skipped_busy += 1  # never pile up behind a hung target
                        continue
                    self._busy.add(key)
                    fut = self._executor.submit(job.run)
                    fut.add_done_callback(partial(self._done, key))
                nxt = min(self._due.values(), default=now + 1.0)
            self._wake.wait(max(0.01, min(1.0, nxt - time.monotonic())))
            self._wake.clear()

    def _done(self, key: Hashable, fut: Future[Any]) -> None:
        with self._lock:
            self._busy.discard(key)
        self._wake.set()  # a worker is free: due jobs may go
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.warning("signal job %s failed: %s", key, exc)
            return
        value = fut.result()
        if value is not None:
            self.out.put(value)
