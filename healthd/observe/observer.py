"""The periodic observation sweep, in a thread of its own.

Owns: every slow read of a sweep — the container list, inspects of containers whose list
row changed, the stats sweep and the host readings — done off the main loop and handed
over as one ``Sweep`` value. The engine answers a list or an inspect only when it can take
the containers' locks, which it holds while it restarts one; doing these reads on the main
loop would make a just-arrived event wait for someone else's restart.
Must never: change the daemon's state or decide; it only reads and reports.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from healthd.core.model import Usage
from healthd.observe import engine, host
from healthd.observe.containers import Summary
from healthd.observe.sampler import Sampler, StatsTarget

log = logging.getLogger(__name__)
_IMAGES_EVERY_S = 60.0


@dataclass(frozen=True)
class Sweep:
    """What one sweep saw, at epoch ``at``."""

    at: float
    # None when the engine could not be listed, or was not listed this sweep (``listed``)
    summaries: list[Summary] | None
    # id -> (inspect JSON or None when gone, the daemon's epoch of it when the sweep began)
    inspected: dict[str, tuple[dict[str, Any] | None, int]] = field(default_factory=dict)
    usages: dict[str, Usage] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)  # the daemon's, when the sweep began
    memory: host.HostMemory | None = None
    disk: host.DiskUsage | None = None
    images: dict[str, str] | None = None  # tag -> image id; None when not listed this sweep
    duration_s: float = 0.0
    listed: bool = True  # False: the list was not due (events carried the changes)


def list_due(now: float, listed_at: float | None, resync_s: float, streaming: bool,
             woken: bool) -> bool:
    """Whether a sweep at ``now`` reads the container list: always without the events
    stream, when woken, or never listed; else once ``resync_s`` passed since the last
    list (``listed_at``). A clock stepped back lists at once rather than wait the step out."""
    if woken or listed_at is None or resync_s <= 0 or not streaming:
        return True
    return not 0 <= now - listed_at < resync_s


@dataclass(frozen=True)
class Known:
    """What the daemon knows of the containers, as the observer needs it to plan a sweep."""

    fingerprints: dict[str, tuple[str, str | None]]
    epochs: dict[str, int]
    targets: list[StatsTarget]


class Observer:
    """Runs a sweep every ``interval_s`` (or at once when woken) and queues the result.

    The container list is read every ``resync_s`` while ``streaming()`` says the events
    stream is connected (each event is inspected as it comes, so the list only catches a
    change no event told of), and on every sweep while it is not, or after a wake. Listing
    200 containers was a sixth of an idle sweep's CPU, every 5 s, for nothing new.
    """

    def __init__(
        self,
        eng: engine.Engine,
        sampler: Sampler,
        known: Callable[[], Known],
        out: queue.Queue[Any],
        interval_s: float,
        docker_root: str | None,
        clock: Callable[[], float] = time.time,
        resync_s: float = 0.0,
        streaming: Callable[[], bool] = lambda: False,
    ) -> None:
        self.engine, self.sampler, self.known, self.out = eng, sampler, known, out
        self.interval_s = interval_s
        self.docker_root = docker_root
        self.clock = clock
        self.resync_s = resync_s
        self.streaming = streaming
        self._images_at = 0.0  # monotonic time of the last image list
        self._listed_at: float | None = None  # clock() of the last successful list
        self._relist = False  # woken: list on the next sweep whatever resync_s says
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="observe", daemon=True)

    def start(self) -> None:
        """Sweep in the background."""
        self._thread.start()

    def wake(self) -> None:
        """Sweep now, with a full list (after a reconnect, say), not at the next interval."""
        self._relist = True
        self._wake.set()

    def stop(self) -> None:
        """Stop after the current sweep."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.out.put(self.sweep())
            left = self.interval_s - (time.monotonic() - started)
            self._wake.wait(max(0.0, left))
            self._wake.clear()

    def sweep(self) -> Sweep:
        """One full observation; never raises for the engine's or a container's trouble."""
        started = time.perf_counter()
        now = self.clock()
        known = self.known()
        listed = self._list_due(now)
        summaries: list[Summary] | None = None
        if listed:
            try:
                summaries = self.engine.list()
                self._listed_at = now
            except engine.EngineUnavailable as exc:
                log.warning("cannot list containers: %s", exc)
        inspected: dict[str, tuple[dict[str, Any] | None, int]] = {}
        for s in summaries or []:
            if known.fingerprints.get(s.id) == s.fingerprint:
                continue
            epoch = known.epochs.get(s.id, 0)
            try:
                inspected[s.id] = (self.engine.inspect(s.id), epoch)
            except engine.ContainerGone:
                inspected[s.id] = (None, epoch)
            except engine.EngineUnavailable as exc:
                log.warning("skipping %s this round: %s", s.id[:12], exc)
        usages = self.sampler.sweep(known.targets, now)
        return Sweep(at=now, summaries=summaries, inspected=inspected, usages=usages,
                     epochs=known.epochs,
                     memory=host.memory(), disk=self._disk(), images=self._images(),
                     duration_s=time.perf_counter() - started, listed=listed)

    def _list_due(self, now: float) -> bool:
        relist, self._relist = self._relist, False  # a wake during this list asks again
        return list_due(now, self._listed_at, self.resync_s, self.streaming(), relist)

    def _images(self) -> dict[str, str] | None:
        """Tags and the images they name, once a minute: a new image under an old tag is
        news for a failing container, not something to hurry for."""
        if time.monotonic() - self._images_at < _IMAGES_EVERY_S:
            return None
        try:
            tags = self.engine.image_tags()
        except engine.EngineUnavailable as exc:
            log.info("cannot list images: %s", exc)
            return None
        self._images_at = time.monotonic()
        return tags

    def _disk(self) -> host.DiskUsage | None:
        if self.docker_root is None:
            try:
                self.docker_root = str(self.engine.info().get("DockerRootDir") or "")
            except engine.EngineUnavailable:
                return None
        return host.disk(self.docker_root) if self.docker_root else None
