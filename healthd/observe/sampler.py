"""Periodic resource sampling of the watched containers, by cgroup files or by the stats API.

Owns: choosing the sampling path (``"cgroup"`` or ``"api"``), one sweep over the targets, and
the previous CPU counters per container that turn two samples into a CPU rate.
Must never: talk to docker-py (the `healthd.engine.Engine` passed in does), raise out of
`Sampler.sweep` for a single container's trouble, or keep state for containers no longer
targeted.

The cgroup path reads four small files per container, kept open between sweeps (see
`healthd.cgroupfs`; the limits come from inspect, not from the cgroup); the API path
sends one one-shot ``/stats`` request per container through a bounded thread pool. Both yield
`healthd.stats.Counters`, so the numbers mean the same whichever path is used.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from healthd.core.model import Usage
from healthd.observe import cgroupfs, engine, stats

log = logging.getLogger(__name__)

MODES = ("auto", "cgroup", "api")


@dataclass(frozen=True)
class StatsTarget:
    """One container to sample, with the limits inspect reported for it.

    Inspect is the authority on limits (the stats API reports the host's memory as the limit of
    an unlimited container), so None or ≤ 0 means unlimited here.
    mem_limit_bytes: ``HostConfig.Memory``, bytes.
    cpu_limit_cores: cores of CPU quota (`healthd.stats.cpu_limit_cores`); None = no quota.
    pids_limit: ``HostConfig.PidsLimit``.
    cgroup_parent: ``HostConfig.CgroupParent`` ("" for the daemon's default).
    """

    id: str  # the full 64-hex id
    name: str
    mem_limit_bytes: int | None = None
    cpu_limit_cores: float | None = None
    pids_limit: int | None = None
    cgroup_parent: str = ""


class Sampler:
    """Samples containers' resource usage; keeps the last CPU reading per container.

    eng: the `healthd.engine.Engine` (used by the API path, and once at construction by
      ``mode="auto"`` to probe a running container); its errors are already healthd's own.
    mode: "auto" (cgroup files when readable and a container resolves, else API), "cgroup" or
      "api". The chosen path is in `path`; auto may fall back to "api" once, on the first sweep,
      when no running container existed to probe at construction.
    concurrency: concurrent API requests (size the engine client's connection pool to match:
      more workers than connections only queue).
    host_cpus: cores the host offers, the CPU fraction's denominator without a quota.
    clock: epoch-seconds clock stamped on cgroup readings (their CPU rate's time base).
    """

    def __init__(
        self,
        eng: Any,
        *,
        mode: str = "auto",
        concurrency: int = 8,
        cgroup_root: str = cgroupfs.DEFAULT_ROOT,
        host_cpus: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency}")
        self.engine: Any = eng
        self.host_cpus = host_cpus or os.cpu_count() or 1
        self.clock = clock
        self.concurrency = concurrency
        self._reader = cgroupfs.Reader(cgroup_root)
        self._prev: dict[str, stats.Counters] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._verify_on_first_sweep = False
        self.path = mode if mode != "auto" else self._choose(cgroup_root)

    def _choose(self, root: str) -> str:
        """Auto mode: "cgroup" when the files are readable and a running container resolves."""
        if not cgroupfs.available(root):
            log.info("sampler: cgroup fs not readable under %s, using the stats API", root)
            return "api"
        try:
            running = self.engine.first_running()
        except engine.EngineUnavailable as exc:
            log.info("sampler: cannot list containers to probe cgroups (%s)", exc)
            running = None
        if running is None:
            self._verify_on_first_sweep = True
            return "cgroup"
        cid, parent = running
        if self._resolves(cid, parent):
            return "cgroup"
        log.info("sampler: container %s has no cgroup under %s, using the API", cid[:12], root)
        return "api"

    def _resolves(self, container_id: str, cgroup_parent: str) -> bool:
        try:
            self._reader.dirs(container_id, cgroup_parent)
        except cgroupfs.ContainerGone:
            return False
        return True

    def sweep(self, targets: Iterable[StatsTarget], now: float) -> dict[str, Usage]:
        """Sample every target once; return `Usage` by container id.

        now: epoch seconds stamped on every returned `Usage`.
        Containers that vanished or failed to answer are absent from the result (logged);
        nothing raises. CPU fields are None on a container's first sample.
        """
        wanted = {t.id: t for t in targets}
        self._forget_except(wanted)
        if self._verify_on_first_sweep and wanted:
            self._verify_on_first_sweep = False
            first = next(iter(wanted.values()))
            if not self._resolves(first.id, first.cgroup_parent):
                log.info("sampler: %s has no cgroup dir, switching to the API", first.name)
                self.path = "api"
        if self.path == "cgroup":
            readings = self._read_cgroups(wanted.values())
        else:
            readings = self._read_api(wanted.values())
        out: dict[str, Usage] = {}
        for cid, counters in readings.items():
            target = wanted[cid]
            out[cid] = stats.usage(
                counters,
                self._prev.get(cid),
                now=now,
                mem_limit_bytes=target.mem_limit_bytes or 0,
                pids_limit=target.pids_limit or 0,
                cpu_limit_cores=target.cpu_limit_cores,
                host_cpus=self.host_cpus,
            )
            self._prev[cid] = counters
        for cid in wanted.keys() - readings.keys():
            # No reading: the container is gone or stopped (a restart makes a new cgroup whose
            # CPU counter starts again), so its old counters cannot anchor a rate.
            self._prev.pop(cid, None)
        return out

    def _forget_except(self, wanted: dict[str, StatsTarget]) -> None:
        """Drop CPU history and cached dirs of containers no longer targeted."""
        for cid in [c for c in self._prev if c not in wanted]:
            del self._prev[cid]
        self._reader.retain(wanted)

    def _read_cgroups(self, targets: Iterable[StatsTarget]) -> dict[str, stats.Counters]:
        out: dict[str, stats.Counters] = {}
        for target in targets:
            try:
                # Limits come from inspect (the target's), which `stats.usage` prefers to
                # any read from the cgroup: the two limit files are not read at all.
                out[target.id] = self._reader.read(target.id, self.clock(), target.cgroup_parent,
                                                   limits=False)
            except cgroupfs.ContainerGone as exc:
                log.debug("sampler: skip %s, cgroup gone: %s", target.name, exc)
            except cgroupfs.CgroupReadError as exc:
                log.warning("sampler: skip %s, cannot read its cgroup: %s", target.name, exc)
        return out

    def _read_api(self, targets: Iterable[StatsTarget]) -> dict[str, stats.Counters]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="healthd-stats")
        todo = list(targets)
        results = self._pool.map(self._fetch_one, todo)
        return {t.id: c for t, c in zip(todo, results, strict=True) if c is not None}

    def _fetch_one(self, target: StatsTarget) -> stats.Counters | None:
        """One container's counters from the API, or None (logged) when it cannot be had."""
        try:
            counters = stats.parse_api(self.engine.stats(target.id))
        except engine.ContainerGone:
            log.debug("sampler: skip %s, container gone", target.name)
            return None
        except engine.EngineUnavailable as exc:
            log.warning("sampler: skip %s, stats request failed: %s", target.name, exc)
            return None
        except stats.StatsError as exc:
            log.warning("sampler: skip %s, odd stats body: %s", target.name, exc)
            return None
        if counters.t is None:
            # A stopped container answers with a zero read time and empty memory stats.
            log.debug("sampler: skip %s, not running (no reading)", target.name)
            return None
        return counters

    def close(self) -> None:
        """Stop the API worker threads and close the kept cgroup files; a later sweep starts
        or opens them again. Not while a sweep runs."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._reader.close()
