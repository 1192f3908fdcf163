"""healthd.watcher: the reconnect back-off and the cursor that drops replayed events.

Only the pure parts: ``backoff_delay`` and ``Watcher._accept`` (the Watcher is built with a
dummy subscribe callable and a plain queue, and never started).
"""

from __future__ import annotations

import queue
from typing import Any

import pytest

from healthd.observe.containers import Event
from healthd.observe.watcher import Watcher, backoff_delay

DELAYS = [(0, 0.25), (1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (8, 30.0),
          (1000, 30.0)]


@pytest.mark.parametrize(("attempt", "delay"), DELAYS, ids=[f"attempt-{a}" for a, _ in DELAYS])
def test_backoff_doubles_and_caps(attempt: int, delay: float) -> None:
    got = backoff_delay(attempt)
    assert got == delay
    assert isinstance(got, float)


def test_backoff_base_and_cap_are_arguments() -> None:
    assert [backoff_delay(a, base_s=1.0, max_s=5.0) for a in range(5)] == [1, 2, 4, 5, 5]


def _no_subscribe(since_ns: int | None) -> tuple[Any, Any]:
    raise AssertionError("a unit test must not subscribe")


def watcher(since_ns: int | None = None) -> Watcher:
    out: queue.Queue[Event | str] = queue.Queue()
    return Watcher(_no_subscribe, out, since_ns)


def ev(t: int, action: str = "die", cid: str = "c1") -> Event:
    return Event(time_ns=t, action=action, id=cid, name="api")


def test_accepts_new_events_and_moves_the_cursor() -> None:
    w = watcher()
    assert w._accept(ev(100))
    assert w.cursor_ns == 100
    assert w._accept(ev(200, "start"))
    assert w.cursor_ns == 200


def test_drops_events_older_than_the_cursor() -> None:
    w = watcher(since_ns=1000)
    assert not w._accept(ev(999))
    assert w.cursor_ns == 1000


def test_drops_a_duplicate_at_the_cursor() -> None:
    w = watcher()
    assert w._accept(ev(100, "die"))
    assert not w._accept(ev(100, "die"))


def test_accepts_a_different_event_at_the_same_time() -> None:
    w = watcher()
    assert w._accept(ev(100, "die", "c1"))
    assert w._accept(ev(100, "die", "c2"))  # other container
    assert w._accept(ev(100, "oom", "c1"))  # other action
    assert not w._accept(ev(100, "oom", "c1"))


def test_event_exactly_at_the_starting_cursor_is_accepted() -> None:
    # nothing has been handed over yet at since_ns, so nothing there is a duplicate
    assert watcher(since_ns=1000)._accept(ev(1000))


def test_reconnect_replay_hands_over_only_what_was_missed() -> None:
    w = watcher()
    first = [ev(1, "start"), ev(2, "die", "c1"), ev(2, "die", "c2")]
    assert [w._accept(e) for e in first] == [True, True, True]
    # the engine replays from since=cursor after a reconnect
    replay = [ev(2, "die", "c1"), ev(2, "die", "c2"), ev(2, "die", "c3"), ev(3, "start"),
              ev(1, "start")]
    assert [w._accept(e) for e in replay] == [False, False, True, True, False]
    assert w.cursor_ns == 3


def test_seen_set_is_reset_when_time_moves_on() -> None:
    w = watcher()
    assert w._accept(ev(5, "die"))
    assert w._accept(ev(6, "die"))
    assert not w._accept(ev(6, "die"))
    assert w._seen_at_cursor == {("c1", "die")}
