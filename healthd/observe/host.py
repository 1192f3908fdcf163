"""Host-wide resources: memory and the disk holding Docker's data root.

Owns: reading host memory and the data root's filesystem usage through psutil.
Must never: talk to the engine (the caller passes ``DockerRootDir`` from ``client.info()``) or
raise for an unreadable path: from a sidecar the daemon's data root is usually not mounted, so
the caller's fallback path is tried and then None is returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class HostMemory:
    """Host memory, bytes. used = total - available (page cache that can be dropped is free)."""

    used_bytes: int
    total_bytes: int

    @property
    def fraction(self) -> float:
        """Used over total, 0..1."""
        return self.used_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class DiskUsage:
    """One filesystem's usage, bytes, as ``df`` shows it for ``path``."""

    path: str  # the path actually measured (the data root or the fallback)
    used_bytes: int
    free_bytes: int  # available to unprivileged users (root's reserve excluded)
    total_bytes: int

    @property
    def fraction(self) -> float:
        """Used over used + free, 0..1: df's Use%, which counts the root reserve as full."""
        room = self.used_bytes + self.free_bytes
        return self.used_bytes / room if room else 0.0


def memory() -> HostMemory:
    """The host's memory now (from /proc/meminfo)."""
    vm = psutil.virtual_memory()
    return HostMemory(used_bytes=int(vm.total - vm.available), total_bytes=int(vm.total))


def disk(path: str) -> DiskUsage | None:
    """Usage of the filesystem holding ``path``; None when the path is not readable from here."""
    try:
        du = psutil.disk_usage(path)
    except OSError:
        return None
    return DiskUsage(
        path=path, used_bytes=int(du.used), free_bytes=int(du.free), total_bytes=int(du.total)
    )


def data_root_disk(docker_root_dir: str | None, fallback: str | None = None) -> DiskUsage | None:
    """Usage of Docker's data root filesystem, trying ``fallback`` when the root is unreadable.

    docker_root_dir: ``client.info()["DockerRootDir"]``, a path in the daemon's mount namespace.
    fallback: where that filesystem is visible from here (a sidecar's bind mount), if anywhere.
    """
    for path in (docker_root_dir, fallback):
        if path:
            found = disk(path)
            if found is not None:
                return found
    return None
