"""The command line as an operator types it (click's runner, in process; no engine)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from healthd.cli import _status_line, main
from healthd.core.model import Action, Decision, Outcome
from healthd.store.ledger import Ledger, LedgerError

REPO = Path(__file__).resolve().parents[2]


def test_check_config_accepts_the_documented_example() -> None:
    result = CliRunner().invoke(main, ["check-config", str(REPO / "config.toml")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(": ok")


def test_check_config_names_each_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[guards]\ncooldown_s = -1\n[forecast]\nhorizon_s = "soon"\n')
    result = CliRunner().invoke(main, ["check-config", str(bad)])
    assert result.exit_code == 2
    assert "guards.cooldown_s" in result.output and "forecast.horizon_s" in result.output


def test_check_config_prints_autoheal_variables_with_their_source(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[guards]\ngrace_s = 5.0\n")
    env = {"AUTOHEAL_CONTAINER_LABEL": "all", "AUTOHEAL_GRACE_PERIOD": "30",
           "POST_RESTART_SCRIPT": "/x.sh"}
    result = CliRunner().invoke(main, ["check-config", str(cfg)], env=env)
    assert result.exit_code == 0, result.output
    assert "watch.mode = 'opt-out'  (AUTOHEAL_CONTAINER_LABEL=all)" in result.output
    assert ("guards.grace_s = 5.0  (config.toml, wins over AUTOHEAL_GRACE_PERIOD=30)"
            in result.output)
    assert "warning: docker-autoheal variables healthd cannot honour" in result.output
    assert "POST_RESTART_SCRIPT" in result.output


def test_check_config_without_a_file_checks_the_autoheal_variables() -> None:
    result = CliRunner().invoke(main, ["check-config"],
                                env={"AUTOHEAL_UNHEALTHY_THRESHOLD": "zero"})
    assert result.exit_code == 2
    assert ("environment: AUTOHEAL_UNHEALTHY_THRESHOLD: 'zero' is not valid; allowed: a whole "
            "number of health checks >= 1") in result.output


def test_check_config_effective_without_autoheal_shows_defaults() -> None:
    result = CliRunner().invoke(main, ["check-config", "--effective"])
    assert result.exit_code == 0, result.output
    assert "guards.cooldown_s = 30.0  (default)" in result.output


def test_replay_prints_one_json_object_per_row(tmp_path: Path) -> None:
    csv = tmp_path / "mem.csv"
    csv.write_text("timestamp,value\n" + "".join(f"{1_700_000_000 + 5 * i},{100 + i}\n"
                                                for i in range(50)))
    result = CliRunner().invoke(main, ["replay", str(csv), "--limit", "1000"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 50
    assert set(rows[0]) == {"t", "value", "eta_s", "lower_s", "upper_s", "alarm"}


def test_history_reads_the_ledger_while_the_daemon_is_down(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    led = Ledger(str(path))
    led.record(Decision(Action.RESTART, "cid", "api", "crashed.critical",
                        evidence=("exited with code 3",), at=1000.0), Outcome.SUCCEEDED)
    led.close()
    result = CliRunner().invoke(main, ["history", "--state", str(path)])
    assert result.exit_code == 0, result.output
    assert "restart api: rule crashed.critical; exited with code 3" in result.output
    as_json = json.loads(CliRunner().invoke(main, ["history", "--state", str(path),
                                                   "--json"]).output)
    assert as_json[0]["outcome"] == "succeeded"


def test_history_without_a_state_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["history", "--state", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert "no state file" in result.output


def test_history_says_how_far_back_it_reaches(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    led = Ledger(str(path))
    led.record(Decision(Action.RESTART, "cid", "api", "crashed.critical", at=1000.0),
               Outcome.SUCCEEDED)
    led.close()
    result = CliRunner().invoke(main, ["history", "--state", str(path)],
                                env={"HEALTHD_LEDGER_RETENTION_DAYS": "7"})
    assert result.exit_code == 0, result.output
    since = datetime.fromtimestamp(1000.0).strftime("%Y-%m-%d %H:%M")
    assert result.output.splitlines()[0] == f"history since {since} (7 days kept)"


def test_history_of_a_corrupt_state_file_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(os.urandom(4096))
    result = CliRunner().invoke(main, ["history", "--state", str(path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"error: state file {path} is not a healthd state file")
    assert path.stat().st_size == 4096


def test_status_without_a_daemon_is_a_clear_error() -> None:
    # Port 9 (discard) on loopback: nothing of ours listens there.
    result = CliRunner().invoke(main, ["status", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach healthd" in result.output


def test_notify_without_test_says_what_it_can_do() -> None:
    result = CliRunner().invoke(main, ["notify"])
    assert result.exit_code == 2
    assert "healthd notify --test" in result.output


def test_notify_test_without_targets_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[daemon]\nstate = "{tmp_path / "state.db"}"\n')
    result = CliRunner().invoke(main, ["notify", "--test", "--config", str(cfg)])
    assert result.exit_code == 1
    assert "no [[notify]] targets" in result.output


def test_the_systemd_status_line_survives_a_state_file_that_cannot_be_read(
        tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    store = Ledger(str(tmp_path / "not-a-dir" / "state.db"))  # cannot be opened: runs in memory
    with pytest.raises(LedgerError):
        store.history(50)  # as documented; the main loop's status line must not pass it on
    line = _status_line(store, 3, 1000.0)
    assert line == "watching 3 containers; no action taken recently; state file unreadable"
    store.close()
