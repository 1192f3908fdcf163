"""Keeps the engine's events stream alive and feeds a queue.

Owns: the events thread: subscribe, read, and on a dropped connection or an engine
restart, reconnect with back-off and resume with ``since=`` the last event handed over,
so no event in the gap is lost (duplicates at the cursor are dropped).
Must never: decide; it only forwards Events and a RECONNECTED marker.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from healthd.observe.containers import Event
from healthd.observe.engine import EngineUnavailable

log = logging.getLogger(__name__)

RECONNECTED = "reconnected"
DISCONNECTED = "disconnected"


def backoff_delay(attempt: int, base_s: float = 0.25, max_s: float = 30.0) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): doubling, capped."""
    return float(min(max_s, base_s * (2 ** min(attempt, 30))))


class Watcher:
    """Background reader of container events."""

    def __init__(
        self,
        subscribe: Callable[[int | None], tuple[Any, Any]],
        out: queue.Queue[Any],
        since_ns: int | None,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._subscribe = subscribe
        self._out = out
        self.cursor_ns = since_ns
        self._seen_at_cursor: set[tuple[str, str]] = set()
        self._max_backoff = max_backoff_s
        self._stop = threading.Event()
        self._stream: Any = None
        self.connected = False
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> None:
        """Start reading in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the stream."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass  # already closed by the engine going away
        self._thread.join(timeout=5)

    def _accept(self, ev: Event) -> bool:
        """Drop events already handed over before a reconnect."""
        key = (ev.id, ev.action)
        if self.cursor_ns is not None:
            if ev.time_ns < self.cursor_ns:
                return False
            if ev.time_ns == self.cursor_ns and key in self._seen_at_cursor:
                return False
        if ev.time_ns != self.cursor_ns:
            self._seen_at_cursor = set()
        self.cursor_ns = ev.time_ns
        self._seen_at_cursor.add(key)
        return True

    def _run(self) -> None:
        attempt = 0
        first = True
        while not self._stop.is_set():
            try:
                events, self._stream = self._subscribe(self.cursor_ns)
                self.connected = True
                if not first:
                    log.info("events stream re-established, resuming from cursor")
                    self._out.put(RECONNECTED)
                first = False
                attempt = 0
                for ev in events:
                    if self._stop.is_set():
                        return
                    if ev is not None and self._accept(ev):
                        self._out.put(ev)
            except EngineUnavailable as exc:
                if self._stop.is_set():
                    return
                if self.connected:
                    self._out.put(DISCONNECTED)
                self.connected = False
                delay = backoff_delay(attempt, max_s=self._max_backoff)
                log.warning("engine unavailable (%s); reconnecting in %.2f s", exc, delay)
                attempt += 1
                first = False
                self._stop.wait(delay)
