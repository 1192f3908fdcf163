"""Smoke tests of the throwaway engine harness itself."""

from __future__ import annotations

import pytest

from tests.engine import (
    Containers,
    Engine,
    EngineStartError,
    WaitTimeout,
    engine_unavailable,
    ping,
    wait_for,
)


@pytest.mark.engine
def test_runs_a_container_from_the_test_image(engine: Engine) -> None:
    out = engine.cli("run", "--rm", "--network", "none", engine.image, "echo", "hello")
    assert out.stdout.strip() == "hello"
    assert engine.client.ping()
    assert engine.docker_host.startswith("unix:///tmp/")


@pytest.mark.engine
def test_containers_fixture_removes_what_it_made(engine: Engine, containers: Containers) -> None:
    cid = containers.run("should-be-removed", "sleep", "1000")
    assert engine.client.containers.get(cid).status == "running"
    containers.remove_all()
    assert not engine.client.api.containers(all=True, filters={"id": cid})


@pytest.mark.engine
def test_restart_keeps_dirs_and_answers_again(engine: Engine) -> None:
    old_pid = engine.proc.pid if engine.proc else None
    engine.restart()
    assert engine.proc is not None and engine.proc.pid != old_pid
    assert ping(engine.sock)
    # The image lives in the same data-root, so it survives the restart.
    out = engine.cli("run", "--rm", "--network", "none", engine.image, "true")
    assert out.returncode == 0


def test_wait_for_returns_the_value_and_names_the_condition_on_timeout() -> None:
    values = iter([0, 0, 7])
    assert wait_for(lambda: next(values), timeout=5, interval=0.001) == 7
    with pytest.raises(WaitTimeout, match="the sky to fall"):
        wait_for(lambda: False, timeout=0.05, interval=0.01, what="the sky to fall")


def test_missing_dockerd_is_a_start_error_not_a_hang(tmp_path: object) -> None:
    eng = Engine(dockerd="/nonexistent/dockerd")
    try:
        with pytest.raises(EngineStartError, match="not found"):
            eng.start()
    finally:
        eng.stop()
    assert not eng.root.exists()


def test_unavailable_engine_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI"):
        engine_unavailable("no dockerd")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no dockerd"):
        engine_unavailable("no dockerd")
