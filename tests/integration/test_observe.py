"""Observation on a real engine: between two full container lists ([watch] resync_s),
every change healthd must know of arrives by its event and is inspected at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd

pytestmark = pytest.mark.engine

MIB = 1024 * 1024


def lists(h: Healthd) -> float:
    """healthd_container_lists_total from /metrics."""
    for line in h.get("/metrics").decode().splitlines():
        if line.startswith("healthd_container_lists_total "):
            return float(line.split()[-1])
    raise AssertionError("healthd_container_lists_total missing from /metrics")


def test_between_lists_each_change_arrives_by_its_event(
    engine: Engine, containers: Containers, tmp_path: Path
) -> None:
    # One list at start, then none for an hour: what healthd sees below came by events.
    h = Healthd(engine, tmp_path, cfg={"watch": {"resync_s": 3600.0}}).start()
    try:
        cid = containers.run("followed-by-events", "sleep", "1000", opts=("--memory", "64m"))
        name = containers.name_of(cid)

        def row(who: str = name) -> dict[str, Any] | None:
            return next((c for c in h.status()["containers"] if c["name"] == who), None)

        def shows(status: str, who: str = name) -> bool:
            r = row(who)
            return r is not None and r["status"] == status

        wait_for(lambda: shows("running"), 15, what=f"a new container seen\n{h.log()}")
        engine.cli("pause", name)
        wait_for(lambda: shows("paused"), 15, what=f"the pause seen\n{h.log()}")
        engine.cli("unpause", name)
        wait_for(lambda: shows("running"), 15, what=f"the unpause seen\n{h.log()}")

        def limit() -> int | None:
            r = row()
            return r["usage"]["mem_limit_bytes"] if r and r["usage"] else None

        wait_for(lambda: limit() == 64 * MIB, 15, what=f"the 64 MiB limit\n{h.log()}")
        engine.cli("update", "--memory", "96m", "--memory-swap", "96m", name)
        wait_for(lambda: limit() == 96 * MIB, 15, what=f"the updated limit\n{h.log()}")

        created = containers.name("created-not-started")
        engine.cli("create", "--network", "none", "--name", created, engine.image, "sleep", "9")
        wait_for(lambda: shows("created", created), 15, what=f"a created container\n{h.log()}")
        engine.cli("rm", "-f", name)
        wait_for(lambda: row() is None, 15, what=f"the removed container gone\n{h.log()}")

        h.wait_sweeps(6)
        assert lists(h) == 1, "the list is read once at start, then every resync_s only"
    finally:
        h.kill()
