"""``healthd demo`` on the test engine: it starts its labelled stack and a healthd with the
dashboard, Ctrl-C leaves nothing labelled behind, and after a SIGKILL the next start
removes what the killed run left."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthd import demo_stack
from tests.engine import Engine, wait_for

pytestmark = pytest.mark.engine

WANT = {demo_stack.container_name(p.service) for p in demo_stack.PARTS}


class DemoProc:
    """One ``healthd demo`` process and what it printed."""

    def __init__(self, engine: Engine, workdir: Path) -> None:
        self.engine = engine
        self.out = workdir / f"demo-{len(list(workdir.iterdir()))}.log"
        with open(self.out, "wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "healthd", "demo"], stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "DOCKER_HOST": engine.docker_host, "PYTHONUNBUFFERED": "1"})

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def url(self) -> str:
        m = wait_for(lambda: re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/", self.text()), 60,
                     what=f"the demo's guide\n{self.text()}")
        return m.group(1)

    def finish(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)


def labelled(engine: Engine, value: str | None = None) -> set[str]:
    """Names of containers carrying healthd.demo (=value)."""
    flt = f"{demo_stack.LABEL}={value}" if value else demo_stack.LABEL
    out = engine.cli("ps", "-a", "--filter", f"label={flt}", "--format", "{{.Names}}").stdout
    return set(out.split())


@pytest.fixture
def demos(engine: Engine) -> Iterator[list[DemoProc]]:
    made: list[DemoProc] = []
    yield made
    for d in made:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
    left = labelled(engine)
    if left:
        engine.cli("rm", "-f", *left, check=False)


def test_demo_starts_its_stack_and_ctrl_c_removes_everything(
    engine: Engine, demos: list[DemoProc], tmp_path: Path
) -> None:
    d = DemoProc(engine, tmp_path)
    demos.append(d)
    url = d.url()
    assert labelled(engine) >= WANT, d.text()
    with urllib.request.urlopen(url + "/", timeout=5) as resp:
        assert b"/ui/app.js" in resp.read()
    # healthd watches the demo's containers (and only those: it runs opt-in).
    with urllib.request.urlopen(url + "/status", timeout=5) as resp:
        seen = {c["name"] for c in json.loads(resp.read())["containers"]}
    assert seen <= labelled(engine) and seen
    d.proc.send_signal(signal.SIGINT)
    assert d.finish() == 0, d.text()
    assert labelled(engine) == set(), d.text()
    vols = engine.cli("volume", "ls", "-q", "--filter",
                      f"label={demo_stack.LABEL}").stdout.split()
    assert vols == []
    assert "removed" in d.text()


def test_the_next_demo_removes_what_a_sigkilled_one_left(
    engine: Engine, demos: list[DemoProc], tmp_path: Path
) -> None:
    first = DemoProc(engine, tmp_path)
    demos.append(first)
    first.url()
    old = labelled(engine)
    run_id = re.search(r"healthd demo (\S+):", first.text())
    assert run_id and labelled(engine, run_id.group(1)) == old
    first.proc.kill()
    first.proc.wait()
    assert labelled(engine, run_id.group(1)), "SIGKILL leaves the containers behind"
    second = DemoProc(engine, tmp_path)
    demos.append(second)
    second.url()
    assert "leftover object(s) of an earlier healthd demo" in second.text()
    assert labelled(engine, run_id.group(1)) == set()
    assert labelled(engine) >= WANT
    second.proc.send_signal(signal.SIGINT)
    assert second.finish() == 0, second.text()
    assert labelled(engine) == set()
