"""Following the logs of containers that ask for it (``healthd.logs.error_pattern``).

Owns: one follower thread per such running container, reading its log stream through the
engine and counting the lines that match its pattern per minute (``core.logcount``, bounded
memory). No line is kept: only the counts and the last match, truncated. When new matches
arrive it puts a ``LogMatches`` on the daemon's queue (at most once a second per container)
so the daemon looks at the container again. Must never: decide or store a log line.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from healthd.core import logcount
from healthd.core.logcount import LogCounts
from healthd.observe import engine

log = logging.getLogger(__name__)

_MAX_LINE = 65536  # a longer "line" (no newline) is cut here: bounded memory per follower


@dataclass(frozen=True)
class LogMatches:
    """New matching lines were counted for container ``cid``."""

    cid: str
    at: float


class _Follower:
    def __init__(self, eng: engine.Engine, cid: str, pattern: str, keep: int,
                 out: queue.Queue[Any], clock: Callable[[], float]) -> None:
        self.engine, self.cid, self.keep, self.out, self.clock = eng, cid, keep, out, clock
        self.pattern = pattern
        self.regex = re.compile(pattern)
        self.counts = LogCounts()
        self.lock = threading.Lock()
        self.stream: Any = None
        self.stopped = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"logs-{cid[:12]}", daemon=True)

    def _run(self) -> None:
        try:
            chunks, self.stream = self.engine.logs(self.cid, self.clock())
            self._follow(chunks)
        except (engine.EngineUnavailable, engine.ContainerGone) as exc:
            if not self.stopped.is_set():
                log.info("stopped following the logs of %s: %s", self.cid[:12], exc)
        finally:
            self.done.set()

    def _follow(self, chunks: Any) -> None:
        buf, notified, pending = b"", 0.0, 0
        for chunk in chunks:
            if self.stopped.is_set():
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            buf = buf[-_MAX_LINE:]
            n, last = 0, ""
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                if self.regex.search(line):
                    n, last = n + 1, line
            if n:
                now = self.clock()
                with self.lock:
                    self.counts = logcount.add(self.counts, now, n, self.keep, last)
                pending += n
            if pending and time.monotonic() - notified >= 1.0:
                notified, pending = time.monotonic(), 0
                self.out.put(LogMatches(self.cid, self.clock()))

    def stop(self) -> None:
        self.stopped.set()
        stream = self.stream
        if stream is not None:
            try:
                stream.close()  # unblocks the thread's read
            except Exception:  # noqa: BLE001 - closing a dead stream may fail in many ways
                pass


class LogTail:
    """The followers, by container id."""

    def __init__(self, eng: engine.Engine, out: queue.Queue[Any], keep_minutes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine, self.out, self.keep, self.clock = eng, out, keep_minutes, clock
        self._followers: dict[str, _Follower] = {}

    def sync(self, wanted: Mapping[str, str]) -> None:
        """Follow exactly the running containers in ``wanted`` (id -> pattern); a follower
        whose stream ended (the container stopped) is started again while still wanted,
        from now on and with fresh counts: a new process is judged on its own lines."""
        for cid in list(self._followers):
            f = self._followers[cid]
            if cid not in wanted or wanted[cid] != f.pattern:
                f.stop()
                del self._followers[cid]
        for cid, pattern in wanted.items():
            old = self._followers.get(cid)
            if old is not None and not old.done.is_set():
                continue
            new = _Follower(self.engine, cid, pattern, self.keep, self.out, self.clock)
            self._followers[cid] = new
            new.thread.start()

    def counts(self, cid: str) -> LogCounts | None:
        """The counts of a followed container, None when it is not followed."""
        f = self._followers.get(cid)
        if f is None:
            return None
        with f.lock:
            return f.counts

    def stop(self) -> None:
        """Stop every follower."""
        for f in self._followers.values():
            f.stop()
        self._followers.clear()
