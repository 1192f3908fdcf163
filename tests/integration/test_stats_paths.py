"""The cgroup-file path and the stats-API path agree, with each other and with `docker stats`.

Runs busybox containers with memory, pids and CPU limits on the throwaway engine and samples
them through both `Sampler` paths.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from healthd.core.model import Usage
from healthd.observe import cgroupfs, stats
from healthd.observe.sampler import Sampler, StatsTarget
from tests.engine import Containers, Engine, healthd_engine, wait_for

pytestmark = pytest.mark.engine

MiB = 1024 * 1024
_UNITS = {"B": 1, "KiB": 1024, "MiB": MiB, "GiB": 1024 * MiB, "kB": 1000, "MB": 1e6, "GB": 1e9}


def target_of(engine: Engine, cid: str) -> StatsTarget:
    """What the daemon would build from inspect."""
    data: dict[str, Any] = engine.client.api.inspect_container(cid)
    host = data["HostConfig"]
    return StatsTarget(
        id=data["Id"],
        name=data["Name"].lstrip("/"),
        mem_limit_bytes=host.get("Memory") or None,
        cpu_limit_cores=stats.cpu_limit_cores(
            host.get("NanoCpus"), host.get("CpuQuota"), host.get("CpuPeriod")
        ),
        pids_limit=host.get("PidsLimit") or None,
        cgroup_parent=host.get("CgroupParent") or "",
    )


def cli_bytes(text: str) -> float:
    """``20.5MiB`` → bytes."""
    m = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]+)", text.strip())
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def cli_stats(engine: Engine) -> dict[str, dict[str, str]]:
    out = engine.cli("stats", "--no-stream", "--format", "{{json .}}").stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r["Name"]: r for r in rows}


def cpu_ns(cid: str) -> int:
    return int(Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage").read_text())


def mem_usage(cid: str) -> int:
    return int(Path(f"/sys/fs/cgroup/memory/docker/{cid}/memory.usage_in_bytes").read_text())


@pytest.fixture
def workload(engine: Engine, containers: Containers) -> dict[str, StatsTarget]:
    """A memory holder (tmpfs data + page cache), a pids holder and a CPU burner."""
    if cgroupfs.version() != 1:
        pytest.skip("these helpers read cgroup v1 paths; this host is not cgroup v1")
    mem = containers.run(
        "mem-20m-tmpfs-8m-cache",
        "sh", "-c",
        "dd if=/dev/zero of=/tmp/f bs=1M count=20 2>/dev/null"
        " && dd if=/dev/zero of=/cache bs=1M count=8 2>/dev/null && exec sleep 1000",
        opts=["--memory", "64m", "--tmpfs", "/tmp:size=32m", "--pids-limit", "50"],
    )  # fmt: skip
    pids = containers.run(
        "pids-4-of-20", "sh", "-c", "sleep 1000 & sleep 1000 & sleep 1000 & wait",
        opts=["--pids-limit", "20", "--memory", "32m"],
    )  # fmt: skip
    burn = containers.run(
        "cpu-burn-half-core", "sh", "-c", "while :; do :; done",
        opts=["--cpus", "0.5", "--memory", "32m"],
    )  # fmt: skip
    wait_for(lambda: mem_usage(mem) >= 28 * MiB, 20, what="20 MiB tmpfs + 8 MiB cache written")
    wait_for(lambda: int(Path(f"/sys/fs/cgroup/pids/docker/{pids}/pids.current").read_text()) == 4,
             10, what="4 pids in the pids holder")  # fmt: skip
    return {k: target_of(engine, cid) for k, cid in (("mem", mem), ("pids", pids), ("burn", burn))}


def test_cgroup_and_api_paths_agree_with_each_other_and_docker_stats(
    engine: Engine, workload: dict[str, StatsTarget]
) -> None:
    targets = list(workload.values())
    by_cgroup = Sampler(healthd_engine(engine), mode="cgroup")
    by_api = Sampler(healthd_engine(engine), mode="api")
    try:
        first_c = by_cgroup.sweep(targets, now=1.0)
        first_a = by_api.sweep(targets, now=1.0)
        assert all(u.cpu_fraction is None for u in [*first_c.values(), *first_a.values()])
        start = cpu_ns(workload["burn"].id)
        # Half a core for ~1 s: wait for the counter rather than the clock.
        wait_for(lambda: cpu_ns(workload["burn"].id) - start >= 600_000_000, 20,
                 what="the burner to use 0.6 CPU s")  # fmt: skip
        c = by_cgroup.sweep(targets, now=2.0)
        a = by_api.sweep(targets, now=2.0)
        cli = cli_stats(engine)
    finally:
        by_api.close()

    report: list[str] = []
    for key, t in workload.items():
        uc, ua = c[t.id], a[t.id]
        assert (uc.source, ua.source) == ("cgroup", "api")
        assert uc.mem_bytes is not None and ua.mem_bytes is not None
        assert abs(uc.mem_bytes - ua.mem_bytes) <= max(256 * 1024, 0.02 * uc.mem_bytes), key
        assert uc.mem_limit_bytes == ua.mem_limit_bytes == t.mem_limit_bytes
        assert uc.pids == ua.pids and uc.pids_limit == ua.pids_limit == t.pids_limit
        assert uc.cpu_fraction is not None and ua.cpu_fraction is not None
        assert abs(uc.cpu_fraction - ua.cpu_fraction) <= 0.15, key
        row = cli[t.name]
        cli_used, cli_limit = (cli_bytes(x) for x in row["MemUsage"].split("/"))
        assert abs(cli_used - uc.mem_bytes) <= max(256 * 1024, 0.02 * uc.mem_bytes), key
        assert cli_limit == pytest.approx(t.mem_limit_bytes, rel=0.01)
        assert int(row["PIDs"]) == uc.pids
        report.append(
            f"{key}: mem cgroup={uc.mem_bytes} api={ua.mem_bytes} cli={row['MemUsage']}"
            f" pids={uc.pids}/{uc.pids_limit} cpu cgroup={uc.cpu_fraction:.3f}"
            f" api={ua.cpu_fraction:.3f} cli={row['CPUPerc']}"
        )
    print("\n" + "\n".join(report))

    mem, burn = c[workload["mem"].id], c[workload["burn"].id]
    # tmpfs pages are charged to the writer's memory cgroup; the page cache of /cache is not
    # in the working set (it sits in inactive_file).
    assert 20 * MiB <= (mem.mem_bytes or 0) <= 26 * MiB
    assert c[workload["pids"].id].pids == 4 and c[workload["pids"].id].pids_limit == 20
    # The quota caps the burner at half a core; a busy CI host may give it less, never more.
    assert 0.5 <= (burn.cpu_fraction or 0) <= 1.1
    assert 25.0 <= (burn.cpu_percent or 0) <= 55.0
    assert 25.0 <= (a[workload["burn"].id].cpu_percent or 0) <= 55.0
    assert 25.0 <= float(cli[workload["burn"].name]["CPUPerc"].rstrip("%")) <= 55.0
    assert c[workload["pids"].id].cpu_fraction == pytest.approx(0.0, abs=0.02)


@pytest.mark.parametrize("mode", ["cgroup", "api"])
def test_container_removed_after_listing_is_skipped(
    engine: Engine, containers: Containers, mode: str
) -> None:
    alive = target_of(engine, containers.run("should-be-sampled", "sleep", "1000"))
    gone = target_of(engine, containers.run("should-vanish-before-sweep", "sleep", "1000"))
    exited = target_of(engine, containers.run("should-be-skipped-exited", "true"))
    wait_for(lambda: engine.client.api.inspect_container(exited.id)["State"]["Status"] == "exited",
             10, what="the short container to exit")  # fmt: skip
    sampler = Sampler(healthd_engine(engine), mode=mode)
    try:
        sampler.sweep([alive, gone], now=1.0)  # caches gone's cgroup dir / CPU history
        engine.client.api.remove_container(gone.id, force=True)
        out: dict[str, Usage] = sampler.sweep([alive, gone, exited], now=2.0)
    finally:
        sampler.close()
    assert set(out) == {alive.id}
    assert out[alive.id].pids == 1


def test_auto_mode_prefers_cgroup_files_and_falls_back_to_api(
    engine: Engine, containers: Containers, tmp_path: Path
) -> None:
    containers.run("keeps-one-running", "sleep", "1000")
    assert Sampler(healthd_engine(engine)).path == "cgroup"
    no_cgroups = Sampler(healthd_engine(engine), cgroup_root=str(tmp_path))
    assert no_cgroups.path == "api"
    # Readable but foreign layout: the running container does not resolve there.
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.usage_in_bytes").write_text("0\n")
    assert Sampler(healthd_engine(engine), cgroup_root=str(tmp_path)).path == "api"
