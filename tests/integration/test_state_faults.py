"""healthd keeps healing when its own state file fails: full, read-only, corrupt.

The state file lives on a 2 MiB tmpfs of the test's own (we are root), filled with ``dd``
or remounted read-only; healthd's config and log stay outside it. Each mount is undone in
its fixture, whatever the test did. Retention under churn runs with a one-minute guard window
(the edge cases are unit-tested in tests/unit/store/test_retention.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.engine

CRASH_ONCE = "if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; sleep 0.3; exit 3"


@pytest.fixture
def small_fs(tmp_path: Path, healthds: list[Healthd]) -> Iterator[Path]:
    """A 2 MiB tmpfs for the state file; unmounted after healthd is gone (it depends on
    ``healthds``, so it is torn down after it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "statefs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        for h in healthds:
            h.kill()
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def fill(mnt: Path, name: str = "filler") -> Path:
    """Fill the file system to the last byte; returns the filler to delete."""
    filler = mnt / name
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True,
                   check=False)  # ends with "No space left on device", as meant
    return filler


def remount(mnt: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True,
                   capture_output=True)


def start(engine: Engine, workdir: Path, made: list[Healthd], state: Path,
          webhook: str | None = None) -> Healthd:
    h = Healthd(engine, workdir)
    h.state = state  # on the small file system; config and log stay in workdir
    if webhook is not None:  # sent at once
        h.add_notify({"name": "ops", "kind": "webhook", "url": webhook, "group_wait_s": 0.0,
                      "group_interval_s": 0.0, "retry_min_s": 0.05})
    made.append(h)
    return h.start()


def ledger_of(h: Healthd) -> dict[str, Any]:
    return dict(h.status()["ledger"])


def metric(h: Healthd, name: str) -> float:
    for line in h.get("/metrics").decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name} in /metrics")


def healed(engine: Engine, h: Healthd, name: str) -> bool:
    """healthd restarted ``name`` (from /status, which holds it whether written or not)
    and it runs again."""
    row = next((r for r in h.status()["containers"] if r["name"] == name), None)
    running = engine.client.api.inspect_container(name)["State"]["Running"]
    return bool(row and row["last_action_outcome"] == "succeeded" and running)


def history(state: Path, container: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "healthd", "history", "--state", str(state), "--container",
         container, "--json"], capture_output=True, text=True, timeout=60, env={**os.environ})
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def sent_restarts(state: Path, container: str) -> list[str]:
    return [r["outcome"] for r in history(state, container)
            if r["action"] == "restart" and r["outcome"] != "skipped"]


def crash_and_heal(engine: Engine, containers: Containers, h: Healthd, hint: str) -> str:
    cid = containers.run(hint, "sh", "-c", CRASH_ONCE)
    name = containers.name_of(cid)
    wait_for(lambda: healed(engine, h, name), 60, what=f"{name} healed\n{h.log()}")
    return name


def test_disk_full_while_running_heals_and_writes_the_rows_once_there_is_room(
    engine: Engine, containers: Containers, healthds: list[Healthd], small_fs: Path,
    tmp_path: Path,
) -> None:
    state = small_fs / "state.db"
    rx = Receiver().up()
    h = start(engine, tmp_path, healthds, state, webhook=rx.url)
    containers.run("bystander", "sleep", "1000")  # events: the cursor is saved every sweep
    wait_for(lambda: ledger_of(h)["up"], 30, what="the ledger up")
    fillers = [fill(small_fs)]

    def noticed() -> dict[str, Any] | None:
        led = ledger_of(h)
        if led["up"]:
            # The notice spool shares the file system: when it gives up a file and frees
            # its space first, the ledger's next write fits. Take that space too.
            fillers.append(fill(small_fs, f"filler{len(fillers)}"))
            return None
        return led

    down = wait_for(noticed, 30, what=f"the ledger to notice the full disk\n{h.log()}")
    assert "full" in down["error"], down
    assert metric(h, "healthd_ledger_up") == 0.0
    name = crash_and_heal(engine, containers, h, "should-restart-while-disk-full")
    assert ledger_of(h)["pending"] >= 1
    assert "history is NOT being persisted" in h.log()
    for filler in fillers:
        filler.unlink()
    wait_for(lambda: ledger_of(h)["up"], 30, what=f"the ledger back up\n{h.log()}")
    assert ledger_of(h)["pending"] == 0 and metric(h, "healthd_ledger_up") == 1.0
    assert sent_restarts(state, name) == ["succeeded"]
    assert "takes writes again" in h.log()
    # The notifiers were told, once when history stopped being persisted, once when it
    # was again (the notice spool lives beside the state file: it held them in memory).
    said = wait_for(lambda: (lambda ns: ns if len(ns) >= 2 else None)(
        [n for b in rx.bodies() for n in b["notices"] if n["container"] == "healthd"]), 30,
        what=f"two notices about the state file\n{h.log()}")
    assert [(n["kind"], n["rule"]) for n in said] == [
        ("state_file", "state_file.not_persisted"), ("resolved", "state_file.not_persisted")]
    assert "NOT persisted" in said[0]["summary"] and "full" in said[0]["summary"]
    rx.close()
    assert h.stop() == 0


def test_disk_full_at_start_runs_degraded_and_heals(
    engine: Engine, containers: Containers, healthds: list[Healthd], small_fs: Path,
    tmp_path: Path,
) -> None:
    state = small_fs / "state.db"
    filler = fill(small_fs)
    h = start(engine, tmp_path, healthds, state)
    led = ledger_of(h)
    assert not led["up"] and "cannot open" in led["error"], led
    name = crash_and_heal(engine, containers, h, "should-restart-on-degraded-start")
    filler.unlink()
    wait_for(lambda: ledger_of(h)["up"], 30, what=f"the ledger opened at last\n{h.log()}")
    assert sent_restarts(state, name) == ["succeeded"]
    assert h.stop() == 0


def test_read_only_state_dir_runs_degraded_and_heals(
    engine: Engine, containers: Containers, healthds: list[Healthd], small_fs: Path,
    tmp_path: Path,
) -> None:
    # A file system with healthd's file open for writing cannot be remounted read-only,
    # so this is the start-up case: the directory is read-only before healthd runs.
    state = small_fs / "state.db"
    remount(small_fs, "ro")
    h = start(engine, tmp_path, healthds, state)
    led = ledger_of(h)
    assert not led["up"] and "cannot open" in led["error"], led
    assert "history is NOT being persisted" in h.log()
    name = crash_and_heal(engine, containers, h, "should-restart-with-read-only-state")
    status = subprocess.run([sys.executable, "-m", "healthd", "status", "--url", h.url],
                            capture_output=True, text=True, timeout=60, env={**os.environ})
    assert "history NOT persisted since" in status.stdout, status
    remount(small_fs, "rw")
    wait_for(lambda: ledger_of(h)["up"], 30, what=f"the ledger writable\n{h.log()}")
    assert sent_restarts(state, name) == ["succeeded"]
    assert h.stop() == 0


def test_corrupt_state_file_is_set_aside_and_healthd_heals_as_on_a_first_run(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path,
) -> None:
    first = start(engine, tmp_path, healthds, tmp_path / "state.db")
    containers.run("bystander", "sleep", "1000")
    first.wait_sweeps(2)  # the events cursor is saved
    assert first.stop() == 0
    # Dies while healthd is down. With the cursor it would be healed; with a corrupt
    # state file healthd cannot know when it last watched, so it is before-watch.
    cid = containers.run("should-not-restart-died-before-watch", "sh", "-c", "exit 3")
    before = containers.name_of(cid)
    wait_for(lambda: not engine.client.api.inspect_container(before)["State"]["Running"], 30,
             what="the container dead")
    state = tmp_path / "state.db"
    state.write_bytes(os.urandom(4096))
    bad = subprocess.run([sys.executable, "-m", "healthd", "history", "--state", str(state)],
                         capture_output=True, text=True, timeout=60, env={**os.environ})
    assert bad.returncode == 2 and "not a healthd state file" in bad.stderr, bad
    assert "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
    h = start(engine, tmp_path, healthds, state)
    aside = ledger_of(h)["set_aside"]
    assert aside and Path(aside).read_bytes()[:16] != b"SQLite format 3\x00"
    assert Path(aside).name.startswith("state.db.corrupt-") and Path(aside).name.endswith("Z")
    assert "is corrupt" in h.log() and "set aside" in h.log()
    name = crash_and_heal(engine, containers, h, "should-restart-after-set-aside")
    assert sent_restarts(state, name) == ["succeeded"]
    h.wait_sweeps(3)
    assert sent_restarts(state, before) == []
    assert h.stop() == 0


def test_retention_prunes_under_churn_and_a_cooldown_from_before_the_prune_holds(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path
) -> None:
    # Guards that read a minute back (the host-wide rate's window, the shortest there is),
    # and a ledger that keeps 3 rows beyond that.
    window = 60.0
    h = Healthd(engine, tmp_path, cfg={
        "ledger": {"retention_rows": 3},
        "guards": {"cooldown_s": window, "budget_window_s": window, "alert_repeat_s": window}})
    healthds.append(h)
    h.start()
    churned = [crash_and_heal(engine, containers, h, f"churn-{i}") for i in range(5)]
    assert all(sent_restarts(h.state, n) == ["succeeded"] for n in churned)
    time.sleep(window + 1)  # the churn's rows leave the guards' window
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    # Dies when told to, twice: once to be restarted, once more inside its cooldown.
    cid = containers.run("should-restart-once-then-hold", "sh", "-c",
                         "t=first; [ -e /ran ] && t=again; touch /ran;"
                         " while [ ! -e /ctl/$t ]; do sleep 0.1; done; exit 3",
                         opts=("-v", f"{ctl}:/ctl"))
    name = containers.name_of(cid)
    (ctl / "first").touch()
    wait_for(lambda: healed(engine, h, name), 60, what=f"{name} healed\n{h.log()}")
    # The sweeps prune the churn's rows beyond the newest 3 (outside the window, oldest
    # first), never this one.
    wait_for(lambda: all(sent_restarts(h.state, n) == [] for n in churned[:3]), 30,
             what=f"the churn's oldest rows pruned\n{h.log()}")
    assert sent_restarts(h.state, name) == ["succeeded"]
    (ctl / "again").touch()
    held = wait_for(lambda: [r for r in history(h.state, name)
                             if r["outcome"] == "skipped" and "cooldown" in r["explanation"]],
                    30, what=f"the second death held by the cooldown\n{h.log()}")
    assert held and sent_restarts(h.state, name) == ["succeeded"]
    assert not engine.client.api.inspect_container(name)["State"]["Running"]
    assert h.stop() == 0
