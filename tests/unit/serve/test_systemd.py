"""healthd.serve.systemd: sd_notify messages, the watchdog cadence and the STATUS= line."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from healthd.serve.systemd import Heartbeat, Notifier, describe, watchdog_interval
from healthd.store.ledger import HistoryRow


class Recorder(Notifier):
    """A notifier that keeps what it would send."""

    def __init__(self) -> None:
        super().__init__(None)
        self.sent: list[tuple[str, ...]] = []

    @property
    def enabled(self) -> bool:
        return True

    def send(self, *fields: str) -> bool:
        if fields:
            self.sent.append(fields)
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def row(outcome: str, at: float = 100.0) -> HistoryRow:
    return HistoryRow(1, at, "api-1", "restart", "crashed.critical", outcome, "", None, None)


def test_first_beat_is_ready_with_a_ping_and_status() -> None:
    rec, clock = Recorder(), Clock()
    beat = Heartbeat(rec, lambda: "watching 2 containers", 5.0, clock)
    beat()
    assert rec.sent == [("READY=1", "WATCHDOG=1", "STATUS=watching 2 containers")]
    assert beat.ready


def test_pings_every_interval_and_not_between() -> None:
    rec, clock = Recorder(), Clock()
    beat = Heartbeat(rec, lambda: "same", 5.0, clock)
    beat()
    pinged_at = []
    for second in range(1, 31):  # a main loop turning every second for 30 s
        rec.sent.clear()
        clock.t += 1.0
        beat()
        if any("WATCHDOG=1" in m for m in rec.sent):
            pinged_at.append(second)
    assert pinged_at == [5, 10, 15, 20, 25, 30]


def test_status_is_sent_only_when_it_changes() -> None:
    rec, clock = Recorder(), Clock()
    text = ["watching 1 container"]
    beat = Heartbeat(rec, lambda: text[0], None, clock)
    beat()
    clock.t += 10.0
    beat()
    assert rec.sent == [("READY=1", "STATUS=watching 1 container")]
    text[0] = "watching 2 containers"
    clock.t += 1.0
    beat()
    assert rec.sent == [("READY=1", "STATUS=watching 1 container")]  # not recomputed yet
    clock.t += 5.0
    beat()
    assert rec.sent[-1] == ("STATUS=watching 2 containers",)


def test_without_a_notify_socket_nothing_is_computed() -> None:
    called = []
    beat = Heartbeat(Notifier(None), lambda: called.append(1) or "x", 1.0)
    beat()
    beat.stopping()
    assert called == [] and not beat.ready


def test_stopping_sends_stopping() -> None:
    rec = Recorder()
    Heartbeat(rec, lambda: "", None).stopping()
    assert rec.sent[0][0] == "STOPPING=1"


@pytest.mark.parametrize(("env", "want"), [
    ({}, None),
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 1.0),
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
], ids=["unset", "half-of-usec", "our-pid", "other-pid", "zero", "garbage"])
def test_watchdog_interval(env: dict[str, str], want: float | None) -> None:
    assert watchdog_interval(env, os.getpid()) == want


@pytest.mark.parametrize(("watched", "rows", "want"), [
    (0, [], "watching 0 containers; no action taken recently"),
    (1, [row("skipped")], "watching 1 container; no action taken recently"),
    (3, [row("skipped"), row("succeeded", at=40.0)],
     "watching 3 containers; last action: restart api-1 (crashed.critical, succeeded) 60 s ago"),
    (3, [row("failed", at=100.0 - 600)],
     "watching 3 containers; last action: restart api-1 (crashed.critical, failed) 10 min ago"),
], ids=["nothing", "only-held", "newest-acted", "minutes"])
def test_describe(watched: int, rows: list[HistoryRow], want: str) -> None:
    assert describe(watched, rows, now=100.0) == want


def test_notifier_sends_one_datagram_to_a_path(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        n = Notifier.from_env({"NOTIFY_SOCKET": path})
        assert n.enabled and n.send("READY=1", "STATUS=two\nlines")
        assert server.recv(4096) == b"READY=1\nSTATUS=two lines"
        n.close()


def test_notifier_speaks_to_the_abstract_namespace() -> None:
    name = f"healthd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert n.send("WATCHDOG=1")
        assert server.recv(4096) == b"WATCHDOG=1"
        n.close()


def test_notifier_without_a_listener_fails_quietly(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "nobody"))
    assert n.send("READY=1") is False and n.send("READY=1") is False
    n.close()


@pytest.mark.parametrize("value", ["", "relative/path", "vsock:2:1"])
def test_notifier_is_inert_without_a_unix_socket(value: str) -> None:
    assert not Notifier.from_env({"NOTIFY_SOCKET": value}).enabled
