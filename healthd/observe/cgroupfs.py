"""Container counters read straight from the cgroup filesystem.

Owns: finding a container's cgroup directories (cgroup v1 and v2, cgroupfs and systemd
drivers, custom ``CgroupParent``) and reading the raw counters the engine's stats API would
report, as `healthd.stats.Counters`.
Must never: write to the cgroup filesystem, talk to the engine, or let an OSError escape: a
container whose cgroup is gone raises `ContainerGone`, any other read failure `CgroupReadError`.

Cost: a resolved directory and its file paths are cached per container id, and `Reader`
keeps the counter files open, so a sweep is one ``pread`` per counter file (six files, four
without the limits) with no globbing, directory listing, path walk or path joining.
"""

from __future__ import annotations

import errno
import functools
import os
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from healthd.observe.stats import Counters, limit_or_none

DEFAULT_ROOT = "/sys/fs/cgroup"

# The cgroup of a vanished container disappears (ENOENT), or its files stop answering
# (ENODEV) while the kernel tears it down.
_GONE_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.ESRCH})
_READ_SIZE = 65536  # memory.stat is ~1-2 KiB; one read() gets it whole


class CgroupfsError(Exception):
    """Base of this module's errors."""


class ContainerGone(CgroupfsError):
    """The container has no cgroup (any more): removed, stopped, or never started."""


class CgroupReadError(CgroupfsError):
    """A cgroup file exists but could not be read or parsed (permissions, odd content)."""


@dataclass(frozen=True)
class CgroupDirs:
    """Where one container's counters live. v2 puts every controller in one directory."""

    version: int  # 1 or 2
    memory: str
    cpu: str  # cpuacct on v1
    pids: str

    @functools.cached_property
    def files(self) -> tuple[str, str, str, str, str, str]:
        """Paths of (memory usage, memory.stat, memory limit, CPU counter, pids, pids limit),
        joined once per container rather than on every read."""
        j = os.path.join
        if self.version == 1:
            return (j(self.memory, "memory.usage_in_bytes"), j(self.memory, "memory.stat"),
                    j(self.memory, "memory.limit_in_bytes"), j(self.cpu, "cpuacct.usage"),
                    j(self.pids, "pids.current"), j(self.pids, "pids.max"))
        return (j(self.memory, "memory.current"), j(self.memory, "memory.stat"),
                j(self.memory, "memory.max"), j(self.cpu, "cpu.stat"),
                j(self.pids, "pids.current"), j(self.pids, "pids.max"))


def version(root: str = DEFAULT_ROOT) -> int | None:
    """1 when v1 controllers are mounted under ``root`` (hybrid counts as v1), 2 for a unified
    hierarchy, None when neither is readable."""
    if os.access(os.path.join(root, "memory", "memory.usage_in_bytes"), os.R_OK):
        return 1
    if os.access(os.path.join(root, "cgroup.controllers"), os.R_OK):
        return 2
    return None


def available(root: str = DEFAULT_ROOT) -> bool:
    """True when a cgroup hierarchy with the memory controller is readable under ``root``."""
    return version(root) is not None


def expand_slice(slice_name: str) -> str:
    """systemd's on-disk path of a slice: ``a-b.slice`` → ``a.slice/a-b.slice``."""
    if not slice_name.endswith(".slice") or slice_name == "-.slice":
        return slice_name
    stem = slice_name[: -len(".slice")]
    parts = stem.split("-")
    return "/".join("-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def candidates(container_id: str, cgroup_parent: str = "") -> list[str]:
    """Relative cgroup paths a container may have, most likely first.

    cgroupfs driver: ``<parent or docker>/<id>``; systemd driver: ``<parent slice or
    system.slice>/docker-<id>.scope``. Both layouts are tried whatever the driver, because the
    driver is a daemon setting we cannot see from here.
    """
    parent = cgroup_parent.strip("/")
    paths: list[str] = []
    if parent.endswith(".slice"):
        paths.append(f"{expand_slice(parent)}/docker-{container_id}.scope")
    elif parent:
        paths.append(f"{parent}/{container_id}")
    paths += [f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"]
    return paths


def find(container_id: str, *, root: str = DEFAULT_ROOT, cgroup_parent: str = "") -> CgroupDirs:
    """Resolve a running container's cgroup directories. Raises `ContainerGone` if none exist.

    container_id: the full 64-hex id (cgroup dirs are named by the full id).
    """
    v = version(root)
    for rel in candidates(container_id, cgroup_parent):
        if v == 1:
            memory = os.path.join(root, "memory", rel)
            if os.path.isdir(memory):
                cpu_ctrl = "cpuacct" if os.path.isdir(os.path.join(root, "cpuacct")) else "cpu"
                return CgroupDirs(
                    version=1,
                    memory=memory,
                    cpu=os.path.join(root, cpu_ctrl, rel),
                    pids=os.path.join(root, "pids", rel),
                )
        elif v == 2:
            unified = os.path.join(root, rel)
            if os.path.isdir(unified):
                return CgroupDirs(version=2, memory=unified, cpu=unified, pids=unified)
    raise ContainerGone(f"no cgroup for container {container_id[:12]} under {root}")


def _error(path: str, exc: OSError) -> CgroupfsError:
    """This module's error for an OSError on ``path``."""
    if exc.errno in _GONE_ERRNOS:
        return ContainerGone(f"{path}: {exc.strerror}")
    return CgroupReadError(f"{path}: {exc.strerror}")


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise _error(path, exc) from exc


def _read(path: str) -> bytes:
    """One file's content in one open/read/close."""
    fd = _open(path)
    try:
        return os.read(fd, _READ_SIZE)
    except OSError as exc:
        raise _error(path, exc) from exc
    finally:
        os.close(fd)


def _counter(value: int, path: str, what: str) -> int:
    """``value`` when it is an unsigned 64-bit number, as every counter file holds.

    Anything else is not a reading: the API path rejects the same values (`stats.StatsError`),
    and a negative or huge count would poison the fractions and forecasts made from it.
    """
    if not 0 <= value < 2**64:
        raise CgroupReadError(f"{path}: {what} is not a 64-bit counter: {value}")
    return value


def _int(raw: bytes, path: str) -> int | None:
    """A single-value counter file: an integer, or None for ``max`` (unlimited)."""
    text = raw.strip()
    if text == b"max":
        return None
    try:
        value = int(text)
    except ValueError as exc:
        raise CgroupReadError(f"{path}: not an integer: {text[:40]!r}") from exc
    return _counter(value, path, "value")


def _key(raw: bytes, key: bytes, path: str) -> int | None:
    """The value of ``key`` in a flat-keyed file (memory.stat, cpu.stat); None if absent."""
    # Search with the leading newline so "inactive_file" does not match "total_inactive_file".
    probe = b"\n" + key + b" "
    start = raw.find(probe)
    if start < 0:
        if not raw.startswith(key + b" "):
            return None
        start = 0
    else:
        start += 1
    start += len(key) + 1
    end = raw.find(b"\n", start)
    value = raw[start:] if end < 0 else raw[start:end]
    try:
        number = int(value)
    except ValueError as exc:
        raise CgroupReadError(f"{path}: {key.decode()} is not an integer: {value!r}") from exc
    return _counter(number, path, key.decode())


def read(dirs: CgroupDirs, t: float, limits: bool = True,
         read_file: Callable[[str], bytes] = _read) -> Counters:
    """The raw counters of one container from its cgroup files.

    t: epoch seconds to stamp on the counters (the caller reads the clock right before).
    limits: False skips the memory and pids limit files (those fields stay None), for a
      caller that takes limits from inspect: two of the six reads.
    read_file: a file's content by path (`Reader` passes one that keeps files open).
    Raises `ContainerGone` when the cgroup vanished, `CgroupReadError` on unreadable content.
    """
    usage_path, stat_path, limit_path, cpu_path, pids_path, pids_max_path = dirs.files
    usage = _int(read_file(usage_path), usage_path)
    stat = read_file(stat_path)
    if dirs.version == 1:
        inactive = _key(stat, b"total_inactive_file", stat_path)
        if inactive is None:
            inactive = _key(stat, b"inactive_file", stat_path)
    else:
        inactive = _key(stat, b"inactive_file", stat_path)
    limit = _int(read_file(limit_path), limit_path) if limits else None
    if dirs.version == 1:
        cpu_ns = _int(read_file(cpu_path), cpu_path)
    else:
        usec = _key(read_file(cpu_path), b"usage_usec", cpu_path)
        cpu_ns = None if usec is None else _counter(usec * 1000, cpu_path, "usage_usec in ns")
    return Counters(
        t=t,
        cpu_total_ns=cpu_ns,
        mem_usage_bytes=usage,
        mem_inactive_file_bytes=inactive,
        mem_limit_bytes=limit_or_none(limit),
        pids=_int(read_file(pids_path), pids_path),
        pids_limit=limit_or_none(_int(read_file(pids_max_path), pids_max_path)) if limits else None,
        cgroup_version=dirs.version,
        source="cgroup",
    )


def default_max_open() -> int:
    """Files a `Reader` may keep open: half the process's soft limit on open files, leaving
    the rest to the engine's sockets, the ledger, the HTTP server and the logs."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 0
    return 65536 if soft == resource.RLIM_INFINITY else max(0, soft // 2)


class Reader:
    """Reads counters by container id, caching each container's resolved directories and
    keeping its counter files open.

    A kept file is read again with ``pread`` at offset 0 (the kernel regenerates a cgroup
    file's content on every read from its start): one system call instead of three, and no
    path walk; on this project's machines a fifth of the cost of open/read/close. When a
    cgroup is removed its open files answer ENODEV, also after a new cgroup took its path (a
    restarted container keeps its id); such a file is closed and read afresh by path, so a
    read sees what an open/read/close would. At most ``max_open`` files are kept (default
    `default_max_open`); beyond that, files are opened for each read as before.
    Not thread-safe: one sweep at a time.
    """

    def __init__(self, root: str = DEFAULT_ROOT, max_open: int | None = None) -> None:
        self.root = root
        self.max_open = default_max_open() if max_open is None else max_open
        self._dirs: dict[str, CgroupDirs] = {}
        self._held: dict[str, dict[str, int]] = {}  # container id -> path -> open fd
        self._open = 0

    def dirs(self, container_id: str, cgroup_parent: str = "") -> CgroupDirs:
        """The container's directories, resolved once. Raises `ContainerGone`."""
        found = self._dirs.get(container_id)
        if found is None:
            found = find(container_id, root=self.root, cgroup_parent=cgroup_parent)
            self._dirs[container_id] = found
        return found

    def read(self, container_id: str, t: float, cgroup_parent: str = "",
             limits: bool = True) -> Counters:
        """Counters of one container (``limits``: as in `read`). Raises `ContainerGone` (and
        forgets it) or `CgroupReadError`."""
        try:
            held = self._held.setdefault(container_id, {})
            return read(self.dirs(container_id, cgroup_parent), t, limits,
                        functools.partial(self._read_held, held))
        except ContainerGone:
            # A restarted container keeps its id but may get a fresh cgroup; resolve again
            # next time rather than trusting a dead cache entry.
            self._forget(container_id)
            raise

    def _read_held(self, held: dict[str, int], path: str) -> bytes:
        fd = held.get(path)
        if fd is not None:
            try:
                return os.pread(fd, _READ_SIZE, 0)
            except OSError:
                # Its cgroup is gone (ENODEV); the path may name a new one: read it afresh.
                del held[path]
                self._open -= 1
                os.close(fd)
        if self._open >= self.max_open:
            return _read(path)
        fd = _open(path)
        try:
            data = os.pread(fd, _READ_SIZE, 0)
        except OSError as exc:
            os.close(fd)
            raise _error(path, exc) from exc
        held[path] = fd
        self._open += 1
        return data

    def _forget(self, container_id: str) -> None:
        self._dirs.pop(container_id, None)
        for fd in self._held.pop(container_id, {}).values():
            os.close(fd)
            self._open -= 1

    @property
    def cached(self) -> frozenset[str]:
        """Ids whose directories are cached."""
        return frozenset(self._dirs)

    @property
    def open_files(self) -> int:
        """Counter files kept open."""
        return self._open

    def retain(self, container_ids: Iterable[str]) -> None:
        """Forget cached directories and close the files of containers not in
        ``container_ids`` (bounded memory and descriptors)."""
        keep = set(container_ids)
        for cid in [c for c in self._dirs.keys() | self._held.keys() if c not in keep]:
            self._forget(cid)

    def close(self) -> None:
        """Close every kept file."""
        for cid in list(self._held):
            self._forget(cid)
