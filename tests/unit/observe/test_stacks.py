"""healthd.observe.stacks: the topology is rebuilt when what it is built from changes, only then."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from healthd.core import settings
from healthd.core.model import ContainerState
from healthd.observe.containers import Limits
from healthd.observe.memory import Tracked
from healthd.observe.stacks import Stacks

CFG = settings.Config()


def tracked(cid: str, service: str, workdir: Path | None = None, **labels: str) -> Tracked:
    base = {"com.docker.compose.project": "shop", "com.docker.compose.service": service,
            "com.docker.compose.container-number": "1"}
    if workdir is not None:
        base["com.docker.compose.project.config_files"] = "docker-compose.yml"
        base["com.docker.compose.project.working_dir"] = str(workdir)
    base.update(labels)
    state = ContainerState(id=cid, name=f"shop-{service}-1", labels=tuple(sorted(base.items())))
    return Tracked(state=state, limits=Limits(None, None, None), inspected=True)


def test_an_idle_sweep_keeps_the_topology_and_a_change_rebuilds_it() -> None:
    s = Stacks(CFG)
    web = tracked("w", "web", **{"healthd.depends_on": "api"})
    api = tracked("a", "api")
    s.rebuild([web, api])
    first = s.topology
    assert first.upstreams("shop/web") == (("shop/api", ("shop/api",)),)
    # Same values in fresh objects (a re-inspect that changed nothing): the same topology.
    s.rebuild([dataclasses.replace(web), dataclasses.replace(api)])
    assert s.topology is first
    # New labels, a new container, a container gone, a new network mode: rebuilt.
    web.state = dataclasses.replace(web.state, labels=tuple(
        (k, v) for k, v in web.state.labels if k != "healthd.depends_on"))
    s.rebuild([web, api])
    assert s.topology is not first and s.topology.upstreams("shop/web") == ()
    second = s.topology
    s.rebuild([web, api, tracked("d", "db")])
    assert s.topology.services() == ("shop/api", "shop/db", "shop/web")
    s.rebuild([web, api])
    assert s.topology == second
    api.state = dataclasses.replace(api.state, network_mode="container:w")
    s.rebuild([web, api])
    assert s.topology.upstreams("shop/api") == (("shop/web", ("shop/web",)),)


def test_an_edited_compose_file_rebuilds_the_topology(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  web:\n    depends_on: [api]\n  api: {}\n")
    s = Stacks(CFG)
    items = [tracked("w", "web", tmp_path), tracked("a", "api", tmp_path)]
    s.rebuild(items)
    first = s.topology
    assert first.upstreams("shop/web") == (("shop/api", ("shop/api",)),)
    s.rebuild(items)
    assert s.topology is first
    compose.write_text("services:\n  web: {}\n  api:\n    depends_on: [web]\n")
    st = compose.stat()
    os.utime(compose, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    s.rebuild(items)
    assert s.topology.upstreams("shop/web") == ()
    assert s.topology.upstreams("shop/api") == (("shop/web", ("shop/web",)),)
    compose.unlink()
    s.rebuild(items)
    assert s.topology.upstreams("shop/api") == ()
    assert any("cannot read" in p for p in s.problems())
