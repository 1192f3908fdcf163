"""The steering commands' pure parts: the --watch redraw loop, how pending decisions and
pauses read in ``healthd status``, and the commands' registration and argument errors."""

from __future__ import annotations

import io

from click.testing import CliRunner

from healthd import cli_control
from healthd.cli import main
from healthd.serve.status import render_status

NOW = 1_700_010_000.0
SNAP = {"now": NOW, "engine_connected": True, "stats_path": "cgroup", "containers": [],
        "pending": [{"id": "3f9c02ab", "action": "restart", "target": "api",
                     "rule": "crashed.critical", "explain": "restart api: rule crashed.critical",
                     "created": NOW - 60, "expires": NOW + 3540}],
        "maintenance": [{"target": "shop", "reason": "deploy", "who": "alice",
                         "since": NOW - 120, "until": None}]}


def test_status_lists_pending_decisions_with_the_command_and_pauses() -> None:
    text = render_status(SNAP)
    assert "PAUSED shop: deploy (by alice, 2 min ago, until resumed)" in text
    line = next(x for x in text.splitlines() if x.startswith("3f9c02ab"))
    assert line.split() == ["3f9c02ab", "restart", "api", "crashed.critical", "59", "min",
                            "healthd", "approve", "3f9c02ab"]


def test_status_without_them_says_nothing_about_them() -> None:
    text = render_status({**SNAP, "pending": [], "maintenance": []})
    assert "PENDING" not in text and "PAUSED" not in text


def test_watch_redraws_in_place_and_shows_an_error_instead_of_ending() -> None:
    out = io.StringIO()
    answers = iter(["table one", RuntimeError("healthd restarting"), "table three"])
    slept: list[float] = []

    def render() -> str:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    assert cli_control.watch(render, 2.0, errors=(RuntimeError,), out=out,
                             sleep=slept.append, rounds=3) == 0
    frames = out.getvalue().split(cli_control.CLEAR)[1:]
    assert len(frames) == 3 and slept == [2.0, 2.0]
    assert frames[0].endswith("table one\n") and "error: healthd restarting" in frames[1]


def test_ctrl_c_ends_the_watch_with_exit_0() -> None:
    def interrupted(_s: float) -> None:
        raise KeyboardInterrupt

    assert cli_control.watch(lambda: "t", 1.0, out=io.StringIO(), sleep=interrupted) == 0


def test_the_commands_are_on_the_group() -> None:
    assert {"approve", "reject", "pause", "resume"} <= set(main.commands)


def test_pause_refuses_a_bad_duration_before_asking_anyone() -> None:
    done = CliRunner().invoke(main, ["pause", "shop", "--for", "soon", "--url",
                                     "http://127.0.0.1:9"], env={"HEALTHD_CONFIG": ""})
    assert done.exit_code == 2 and "--for: 'soon' is not a duration" in done.output


def test_a_daemon_that_does_not_answer_is_an_error_not_a_traceback() -> None:
    done = CliRunner().invoke(main, ["approve", "abcd", "--url", "http://127.0.0.1:9"],
                              env={"HEALTHD_CONFIG": ""})
    assert done.exit_code == 1 and "cannot reach healthd" in done.output
