"""systemd's notify protocol (sd_notify) over ``$NOTIFY_SOCKET``, standard library only.

Owns: READY=1 once healthd watches (the main loop's first turn, after the first sweep),
STATUS= lines (containers watched, last action), WATCHDOG=1 at half of ``$WATCHDOG_USEC``
and STOPPING=1. The pings are sent from the daemon's main loop, which calls the
``Heartbeat`` once per turn (at least once a second): a wedged loop stops them, and
systemd's ``WatchdogSec=`` restarts healthd.
Must never: block the main loop (one non-blocking datagram per message) or fail the
daemon: outside systemd it does nothing, and a message that cannot be sent is logged once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

log = logging.getLogger(__name__)

STATUS_EVERY_S = 5.0  # how often the STATUS= line is recomputed (sent only when it changes)


class Notifier:
    """Sends sd_notify messages to one socket; does nothing when there is none."""

    def __init__(self, address: str | None) -> None:
        """address: ``$NOTIFY_SOCKET``: a path, or ``@name`` for the abstract namespace."""
        self.address = address or None
        self._sock: socket.socket | None = None
        self._warned = False
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET`` (inert when unset or not a unix socket)."""
        address = environ.get("NOTIFY_SOCKET", "")
        return cls(address if address.startswith(("/", "@")) else None)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to talk to."""
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=value`` each) as one message; True when it went out."""
        if self._sock is None or self.address is None or not fields:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        message = "\n".join(f.replace("\n", " ") for f in fields).encode()
        try:
            self._sock.sendto(message, target)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
                self._warned = True
            return False
        return True

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled
    advises; None when no watchdog is set, or when ``$WATCHDOG_PID`` names another process.
    """
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if usec <= 0 or (owner and owner != str(pid)):
        return None
    return usec / 2e6


class _Row(Protocol):
    """What ``describe`` reads of a ledger row (``store.ledger.HistoryRow``)."""

    @property
    def at(self) -> float: ...
    @property
    def container(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def outcome(self) -> str: ...


def describe(watched: int, rows: Iterable[_Row], now: float) -> str:
    """The STATUS= line: containers watched and the newest action taken (not held back).

    rows: ledger rows, newest first (``Ledger.history``).
    """
    noun = "container" if watched == 1 else "containers"
    last = next((r for r in rows if r.outcome != "skipped"), None)
    if last is None:
        return f"watching {watched} {noun}; no action taken recently"
    ago = max(0.0, now - last.at)
    when = f"{ago:.0f} s" if ago < 120 else f"{ago / 60:.0f} min"
    return (f"watching {watched} {noun}; last action: {last.action} {last.container}"
            f" ({last.rule}, {last.outcome}) {when} ago")


class Heartbeat:
    """What the daemon's main loop calls once per turn (``heartbeat()``).

    The first call sends READY=1 (healthd has swept once and is watching); later calls
    send WATCHDOG=1 every ``interval_s`` and a new STATUS= line when it changed.
    """

    def __init__(
        self,
        notifier: Notifier,
        status: Callable[[], str],
        interval_s: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """status: makes the STATUS= text (called at most every STATUS_EVERY_S seconds).

        interval_s: seconds between watchdog pings; None without a watchdog.
        """
        self.notifier, self.status, self.interval_s, self.clock = (
            notifier, status, interval_s, clock)
        self.ready = False
        self._pinged = float("-inf")
        self._described = 0.0
        self._status: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], status: Callable[[], str]) -> Heartbeat:
        """A heartbeat for systemd's ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC``."""
        return cls(Notifier.from_env(environ), status, watchdog_interval(environ, os.getpid()))

    def __call__(self) -> None:
        if not self.notifier.enabled:
            return
        now = self.clock()
        fields: list[str] = []
        if not self.ready:
            fields.append("READY=1")
            self.ready = True
        if self.interval_s is not None and now - self._pinged >= self.interval_s:
            fields.append("WATCHDOG=1")
            self._pinged = now
        if self._status is None or now - self._described >= STATUS_EVERY_S:
            self._described = now
            text = self.status()
            if text != self._status:
                fields.append(f"STATUS={text}")
                self._status = text
        self.notifier.send(*fields)

    def waiting(self, what: str) -> None:
        """STATUS= while healthd cannot start watching yet (the engine is not there)."""
        self.notifier.send(f"STATUS={what}")

    def stopping(self) -> None:
        """STOPPING=1: healthd is shutting down (sent once SIGTERM arrives)."""
        self.notifier.send("STOPPING=1", "STATUS=stopping: finishing actions in flight")
