"""healthd.observe.memory: what events leave in a container's record, events and inspect
bodies (recorded from a real dockerd, tests/fixtures/engine/) in, values out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from healthd.observe.containers import Event, from_event
from healthd.observe.memory import Memory

FIXTURES = Path(__file__).parents[3] / "tests" / "fixtures" / "engine"
BODY: dict[str, Any] = json.loads((FIXTURES / "inspect_should-restart-unhealthy.json").read_text())
CID = str(BODY["Id"])
T = 1_796_000_000.0


def event(action: str, at: float, **attrs: str) -> Event:
    ev = from_event({"Type": "container", "Action": action, "timeNano": int(at * 1e9),
                     "Actor": {"ID": CID, "Attributes": {"name": "api", **attrs}}})
    assert ev is not None
    return ev


def fold(*events: Event) -> Memory:
    m = Memory(own_ids=frozenset())
    m.apply_inspect(CID, BODY, is_self=False)
    for ev in events:
        m.on_event(ev)
    m.apply_inspect(CID, BODY, is_self=False)
    return m


def test_a_stop_signal_marks_the_container_as_being_stopped_from_its_first_signal() -> None:
    # docker stop: the stop signal, then SIGKILL when the timeout runs out.
    c = fold(event("kill", T, signal="15"), event("kill", T + 10, signal="9")).tracked[CID].state
    assert (c.stopped_on_purpose, c.stop_requested_at) == (True, T)


def test_a_reload_signal_is_not_a_stop() -> None:
    for sig in ("1", "10", "12", "HUP", "SIGUSR2"):
        c = fold(event("kill", T, signal=sig)).tracked[CID].state
        assert (c.stopped_on_purpose, c.stop_requested_at) == (False, 0.0), sig


def test_a_start_ends_the_stop() -> None:
    m = fold(event("kill", T, signal="15"), event("die", T + 1, exitCode="143"),
             event("start", T + 2))
    c = m.tracked[CID].state
    assert (c.stopped_on_purpose, c.stop_requested_at) == (False, 0.0)
    assert list(m.tracked[CID].deaths) == [], "a stop's die is not a crash"


def test_a_die_after_a_reload_signal_counts_as_a_crash() -> None:
    m = fold(event("kill", T, signal="1"), event("die", T + 5, exitCode="1"))
    assert list(m.tracked[CID].deaths) == [T + 5]
