"""healthd.cgroupfs over temp trees laid out like real cgroup v1 and v2 hierarchies.

File contents are real: the v1 files are what this machine's kernel showed for the container
recorded in tests/fixtures/docker-stats/engine_cgroupv1_limited.json at the same moment; the v2
files carry the numbers of otel_dockerstats_pids_stats_max_cgroupv2_stats.json in the kernel's
v2 formats. So the file path and the API path must give the same counters.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from healthd.observe import cgroupfs, stats
from healthd.observe.cgroupfs import CgroupReadError, ContainerGone

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "docker-stats"
CID = "bff8f3652621" + "0" * 52

V1_MEMORY_STAT = """\
cache 8388608
rss 49152
rss_huge 0
shmem 0
mapped_file 0
dirty 0
writeback 0
workingset_refault_anon 0
workingset_refault_file 0
swap 0
swapcached 0
pgpgin 1046
pgpgout 1026
pgfault 1370
pgmajfault 0
inactive_anon 45056
active_anon 4096
inactive_file 8388608
active_file 0
unevictable 0
hierarchical_memory_limit 67108864
hierarchical_memsw_limit 134217728
total_cache 8388608
total_rss 49152
total_rss_huge 0
total_shmem 0
total_mapped_file 0
total_dirty 0
total_writeback 0
total_workingset_refault_anon 0
total_workingset_refault_file 0
total_swap 0
total_swapcached 0
total_pgpgin 1046
total_pgpgout 1026
total_pgfault 1370
total_pgmajfault 0
total_inactive_anon 45056
total_active_anon 4096
total_inactive_file 8388608
total_active_file 0
total_unevictable 0
"""

V2_MEMORY_STAT = """\
anon 114688
file 1892352
kernel_stack 16384
pagetables 0
percpu 0
sock 0
shmem 0
file_mapped 1138688
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 110592
active_anon 4096
inactive_file 1892352
active_file 0
unevictable 0
slab_reclaimable 93752
slab_unreclaimable 72024
slab 165776
workingset_refault_anon 0
workingset_refault_file 0
pgfault 1029
pgmajfault 12
"""

V2_CPU_STAT = """\
usage_usec 10935
user_usec 5467
system_usec 5467
nr_periods 0
nr_throttled 0
throttled_usec 0
"""


def write(d: Path, files: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)


def v1_tree(root: Path, rel: str, limit: str = "67108864\n", pids_max: str = "50\n") -> Path:
    """A cgroup v1 mount with one container at ``rel`` under each controller."""
    for ctrl in ("memory", "cpu", "cpuacct", "pids"):
        (root / ctrl).mkdir(parents=True, exist_ok=True)
    (root / "memory" / "memory.usage_in_bytes").write_text("1234567890\n")
    write(root / "memory" / rel, {"memory.usage_in_bytes": "8945664\n",
                                  "memory.stat": V1_MEMORY_STAT,
                                  "memory.limit_in_bytes": limit})  # fmt: skip
    write(root / "cpuacct" / rel, {"cpuacct.usage": "28302273\n"})
    write(root / "pids" / rel, {"pids.current": "1\n", "pids.max": pids_max})
    return root


def v2_tree(root: Path, rel: str, mem_max: str = "2063048704\n", pids_max: str = "2192\n") -> Path:
    write(root, {"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n"})
    write(root / rel, {"memory.current": "2240512\n", "memory.stat": V2_MEMORY_STAT,
                       "memory.max": mem_max, "cpu.stat": V2_CPU_STAT,
                       "pids.current": "1\n", "pids.max": pids_max})  # fmt: skip
    return root


@pytest.fixture(autouse=True)
def kernfs_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A removed cgroup's open files answer ENODEV (kernfs), while a removed temp file stays
    readable through an open descriptor: make the temp trees behave like the kernel's."""
    real = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        if os.fstat(fd).st_nlink == 0:
            raise OSError(errno.ENODEV, "No such device")
        return real(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_probe_recognises_v1_v2_and_nothing(tmp_path: Path) -> None:
    v1 = v1_tree(tmp_path / "v1", f"docker/{CID}")
    v2 = v2_tree(tmp_path / "v2", f"system.slice/docker-{CID}.scope")
    assert (cgroupfs.version(str(v1)), cgroupfs.available(str(v1))) == (1, True)
    assert (cgroupfs.version(str(v2)), cgroupfs.available(str(v2))) == (2, True)
    assert not cgroupfs.available(str(tmp_path / "none"))


def test_v1_counters_equal_the_api_body_recorded_at_the_same_moment(tmp_path: Path) -> None:
    root = v1_tree(tmp_path, f"docker/{CID}")
    dirs = cgroupfs.find(CID, root=str(root))
    assert dirs.version == 1 and dirs.cpu.startswith(str(root / "cpuacct"))
    c = cgroupfs.read(dirs, t=42.0)
    api = stats.parse_api(json.loads((FIXTURES / "engine_cgroupv1_limited.json").read_text()))
    for field in ("mem_usage_bytes", "mem_inactive_file_bytes", "mem_limit_bytes", "pids",
                  "pids_limit", "cpu_total_ns", "cgroup_version"):  # fmt: skip
        assert getattr(c, field) == getattr(api, field), field
    assert (c.t, c.source) == (42.0, "cgroup")
    assert stats.usage(c, None, now=42.0).mem_bytes == 557056


def test_v2_counters_equal_the_v2_fixture(tmp_path: Path) -> None:
    root = v2_tree(tmp_path, f"system.slice/docker-{CID}.scope")
    c = cgroupfs.read(cgroupfs.find(CID, root=str(root)), t=1.0)
    body = (FIXTURES / "otel_dockerstats_pids_stats_max_cgroupv2_stats.json").read_text()
    api = stats.parse_api(json.loads(body))
    for field in ("mem_usage_bytes", "mem_inactive_file_bytes", "mem_limit_bytes", "pids",
                  "pids_limit", "cpu_total_ns", "cgroup_version"):  # fmt: skip
        assert getattr(c, field) == getattr(api, field), field
    assert stats.working_set(c.mem_usage_bytes, c.mem_inactive_file_bytes) == 348160


def test_unlimited_sentinels_read_as_none(tmp_path: Path) -> None:
    v1 = v1_tree(tmp_path / "v1", f"docker/{CID}", limit="9223372036854771712\n",
                 pids_max="max\n")  # fmt: skip
    c1 = cgroupfs.read(cgroupfs.find(CID, root=str(v1)), t=0.0)
    v2 = v2_tree(tmp_path / "v2", f"docker/{CID}", mem_max="max\n", pids_max="max\n")
    c2 = cgroupfs.read(cgroupfs.find(CID, root=str(v2)), t=0.0)
    assert (c1.mem_limit_bytes, c1.pids_limit) == (None, None)
    assert (c2.mem_limit_bytes, c2.pids_limit) == (None, None)


@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
def test_without_limits_the_limit_files_are_not_read_and_usage_is_the_same(
        tmp_path: Path, version: int) -> None:
    root = (v1_tree if version == 1 else v2_tree)(tmp_path, f"docker/{CID}")
    dirs = cgroupfs.find(CID, root=str(root))
    full = cgroupfs.read(dirs, t=5.0)
    for name in ("memory.limit_in_bytes", "memory.max", "pids.max"):
        for f in root.rglob(name):
            f.unlink()  # not read: their absence does not matter
    lean = cgroupfs.read(dirs, t=5.0, limits=False)
    assert (lean.mem_limit_bytes, lean.pids_limit) == (None, None)
    assert lean == dataclasses.replace(full, mem_limit_bytes=None, pids_limit=None)
    # The sampler passes inspect's limits, which win over the cgroup's: the same Usage.
    prev = dataclasses.replace(full, t=0.0, cpu_total_ns=0)
    for hints in ({"mem_limit_bytes": 2**26, "pids_limit": 100},
                  {"mem_limit_bytes": 0, "pids_limit": 0}):
        assert stats.usage(lean, prev, now=5.0, host_cpus=2, **hints) == stats.usage(
            full, prev, now=5.0, host_cpus=2, **hints)
    with pytest.raises(ContainerGone):
        cgroupfs.read(dirs, t=5.0)  # the full read does need them


@pytest.mark.parametrize(
    ("version", "parent", "rel"),
    [(1, "", f"docker/{CID}"), (1, "", f"system.slice/docker-{CID}.scope"),
     (1, "/custom", f"custom/{CID}"), (2, "", f"docker/{CID}"),
     (2, "", f"system.slice/docker-{CID}.scope"),
     (2, "my-app.slice", f"my.slice/my-app.slice/docker-{CID}.scope")],
    ids=["v1-cgroupfs", "v1-systemd", "v1-custom-parent", "v2-cgroupfs", "v2-systemd",
         "v2-systemd-custom-slice"],
)  # fmt: skip
def test_find_follows_each_driver_layout(tmp_path: Path, version: int, parent: str,
                                         rel: str) -> None:  # fmt: skip
    root = (v1_tree if version == 1 else v2_tree)(tmp_path, rel)
    dirs = cgroupfs.find(CID, root=str(root), cgroup_parent=parent)
    assert dirs.memory.endswith(rel)
    assert cgroupfs.read(dirs, t=0.0).pids == 1


def test_expand_slice() -> None:
    assert cgroupfs.expand_slice("a-b-c.slice") == "a.slice/a-b.slice/a-b-c.slice"
    assert cgroupfs.expand_slice("system.slice") == "system.slice"
    assert cgroupfs.expand_slice("-.slice") == "-.slice"
    assert cgroupfs.expand_slice("plain") == "plain"


def test_unknown_container_is_gone(tmp_path: Path) -> None:
    root = v1_tree(tmp_path, f"docker/{CID}")
    with pytest.raises(ContainerGone):
        cgroupfs.find("f" * 64, root=str(root))


def test_vanished_container_raises_gone_and_leaves_the_cache(tmp_path: Path) -> None:
    root = v1_tree(tmp_path, f"docker/{CID}")
    reader = cgroupfs.Reader(str(root))
    assert reader.read(CID, 1.0).pids == 1
    for ctrl in ("memory", "cpuacct", "pids"):
        shutil.rmtree(root / ctrl / "docker")
    with pytest.raises(ContainerGone):
        reader.read(CID, 2.0)
    # Resolved afresh when it comes back (a restart may make a new cgroup).
    v1_tree(tmp_path, f"system.slice/docker-{CID}.scope")
    assert reader.read(CID, 3.0).pids == 1
    assert reader.dirs(CID).memory.endswith(".scope")


def test_reader_keeps_files_open_and_reads_fresh_content(tmp_path: Path) -> None:
    root = v1_tree(tmp_path, f"docker/{CID}")
    before = open_fds()
    reader = cgroupfs.Reader(str(root))
    assert reader.read(CID, 1.0, limits=False).pids == 1
    assert reader.open_files == 4 and open_fds() == before + 4
    (root / "pids" / "docker" / CID / "pids.current").write_text("7\n")
    assert reader.read(CID, 2.0, limits=False).pids == 7  # the kernel regenerates content
    assert reader.read(CID, 3.0).pids_limit == 50  # the limit files join the kept ones
    assert reader.open_files == 6
    reader.retain([])
    assert reader.open_files == 0 and open_fds() == before


def test_a_restarted_container_is_read_from_its_new_cgroup_at_once(tmp_path: Path) -> None:
    root = v1_tree(tmp_path, f"docker/{CID}")
    reader = cgroupfs.Reader(str(root))
    reader.read(CID, 1.0)
    for ctrl in ("memory", "cpuacct", "pids"):
        shutil.rmtree(root / ctrl / "docker")
    v1_tree(tmp_path, f"docker/{CID}")  # the same path, a new cgroup
    (root / "pids" / "docker" / CID / "pids.current").write_text("3\n")
    assert reader.read(CID, 2.0).pids == 3  # as an open/read/close would see it
    assert reader.open_files == 6


def test_beyond_max_open_files_are_read_by_open_read_close(tmp_path: Path) -> None:
    root = v2_tree(tmp_path, f"docker/{CID}")
    other = "a" * 64
    v2_tree(tmp_path, f"docker/{other}")
    before = open_fds()
    capped, free = cgroupfs.Reader(str(root), max_open=5), cgroupfs.Reader(str(root))
    for cid in (CID, other):
        assert capped.read(cid, 1.0) == free.read(cid, 1.0)
    assert capped.open_files == 5 and free.open_files == 12
    capped.close()
    free.close()
    assert open_fds() == before


def test_garbage_content_is_a_read_error_not_a_crash(tmp_path: Path) -> None:
    root = v1_tree(tmp_path, f"docker/{CID}")
    (root / "pids" / "docker" / CID / "pids.current").write_text("lots\n")
    with pytest.raises(CgroupReadError, match=r"pids\.current"):
        cgroupfs.read(cgroupfs.find(CID, root=str(root)), t=0.0)
    (root / "pids" / "docker" / CID / "pids.current").write_text("1\n")
    stat = V1_MEMORY_STAT.replace("total_inactive_file 8388608", "total_inactive_file x")
    (root / "memory" / "docker" / CID / "memory.stat").write_text(stat)
    with pytest.raises(CgroupReadError, match="total_inactive_file"):
        cgroupfs.read(cgroupfs.find(CID, root=str(root)), t=0.0)


def test_non_hierarchical_v1_stat_falls_back_to_inactive_file(tmp_path: Path) -> None:
    root = v1_tree(tmp_path, f"docker/{CID}")
    flat = "".join(line + "\n" for line in V1_MEMORY_STAT.splitlines()
                   if not line.startswith("total_"))  # fmt: skip
    (root / "memory" / "docker" / CID / "memory.stat").write_text(flat)
    assert cgroupfs.read(cgroupfs.find(CID, root=str(root)), t=0.0).mem_inactive_file_bytes == (
        8388608
    )


def test_retain_bounds_the_cache(tmp_path: Path) -> None:
    other = "a" * 64
    root = v1_tree(tmp_path, f"docker/{CID}")
    v1_tree(root, f"docker/{other}")
    reader = cgroupfs.Reader(str(root))
    reader.read(CID, 0.0)
    reader.read(other, 0.0)
    reader.retain([other])
    assert reader.cached == {other}
