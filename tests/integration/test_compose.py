"""compose/docker-compose.yml end to end: healthd in its container, beside the example
stack, heals a service whose healthcheck fails and one that exits 3, never acts on itself,
and `docker-compose down -v` leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine import Engine, in_ci, wait_for
from tests.image import Built
from tests.integration.compose_stack import Stack

pytestmark = pytest.mark.engine


@pytest.fixture
def stack(engine: Engine, healthd_image: Built, tmp_path: Path) -> Iterator[Stack]:
    if shutil.which("docker-compose") is None:
        if in_ci():
            pytest.fail("docker-compose missing: scripts/setup --test installs it")
        pytest.skip("docker-compose not installed (Debian package docker-compose)")
    s = Stack(engine, healthd_image.tag, tmp_path)
    try:
        yield s
    finally:
        try:
            s.down()
        except AssertionError:
            engine.remove_all_containers()


def _history(stack: Stack) -> list[dict[str, Any]]:
    out = stack.engine.cli("exec", stack.container("healthd"), "healthd", "history", "--json",
                           "--limit", "200").stdout
    return list(json.loads(out))


def _acted(stack: Stack, service: str, rule: str) -> list[dict[str, Any]]:
    name = stack.container(service)
    return [r for r in _history(stack) if r["container"] == name and r["rule"] == rule
            and r["action"] == "restart" and r["outcome"] == "succeeded"]


def test_sidecar_heals_the_stack_and_down_leaves_nothing(stack: Stack) -> None:
    ready_s = stack.up()
    print(f"\ndocker-compose up -d to healthd /healthz 200: {ready_s:.2f} s")
    hd = stack.inspect("healthd")
    assert hd["Config"]["User"] == "healthd" and hd["HostConfig"]["NetworkMode"] == "host"
    wait_for(lambda: stack.inspect("healthd")["State"]["Health"]["Status"] == "healthy", 60,
             what=f"healthd's own healthcheck\n{stack.logs()}")
    wait_for(lambda: stack.inspect("app")["State"]["Health"]["Status"] == "healthy", 60,
             what="the example app healthy")
    app_started = stack.inspect("app")["State"]["StartedAt"]
    worker_started = stack.inspect("worker")["State"]["StartedAt"]

    # Break both: the app's healthcheck fails, the worker exits with code 3.
    stack.engine.cli("exec", stack.container("app"), "rm", "/tmp/ok")
    stack.engine.cli("exec", stack.container("worker"), "touch", "/tmp/crash")

    wait_for(lambda: _acted(stack, "app", "unhealthy.critical")
             or _acted(stack, "app", "unhealthy.degraded"), 90,
             what=f"healthd restarting the unhealthy app\n{stack.logs()}")
    wait_for(lambda: _acted(stack, "worker", "crashed.critical")
             or _acted(stack, "worker", "crashed.degraded"), 90,
             what=f"healthd restarting the crashed worker\n{stack.logs()}")
    wait_for(lambda: stack.inspect("app")["State"]["Health"]["Status"] == "healthy", 60,
             what="the app healthy again after its restart")
    assert stack.inspect("app")["State"]["StartedAt"] != app_started
    worker = stack.inspect("worker")["State"]
    assert worker["Running"] and worker["StartedAt"] != worker_started

    # healthd never acted on its own container, which was never restarted.
    own = stack.container("healthd")
    assert [r for r in _history(stack) if r["container"] == own] == []
    assert stack.inspect("healthd")["State"]["StartedAt"] == hd["State"]["StartedAt"]
    assert stack.inspect("healthd")["RestartCount"] == 0

    before = stack.objects()
    assert len(before["containers"]) == 3 and len(before["volumes"]) == 1
    assert before["networks"] == []  # network_mode everywhere: Compose made no network
    stack.down()
    assert stack.objects() == {"containers": [], "volumes": [], "networks": []}
