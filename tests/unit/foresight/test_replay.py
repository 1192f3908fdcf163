"""``healthd replay``: CSV parsing, line-numbered errors and the JSON it prints."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from healthd.foresight import replay
from healthd.foresight.settings import ForecastSettings

KEYS = {"t", "value", "eta_s", "lower_s", "upper_s", "alarm"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1396310400", 1396310400.0),
        ("1396310400.5", 1396310400.5),
        ("2014-04-01 00:00:00", 1396310400.0),
        ("2014-04-01T00:00:00Z", 1396310400.0),
        ("2014-04-01T02:00:00+02:00", 1396310400.0),
        (" 2014-04-01 00:05:00 ", 1396310700.0),
    ],
    ids=["epoch", "epoch-fraction", "nab-form-utc", "iso-z", "iso-offset", "whitespace"],
)
def test_parse_timestamp_accepts_epoch_and_utc_datetimes(text, expected):
    assert replay.parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2014-13-01 00:00:00", "nan", ""], ids=str)
def test_parse_timestamp_rejects_garbage(text):
    with pytest.raises(ValueError, match="timestamp"):
        replay.parse_timestamp(text)


def _write(tmp_path, text):
    p = tmp_path / "series.csv"
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_read_csv_skips_the_header_and_blank_lines(tmp_path):
    path = _write(tmp_path, "timestamp,value\n2014-04-01 00:00:00,1.5\n\n1396310700,2\n")
    assert list(replay.read_csv(path)) == [(1396310400.0, 1.5), (1396310700.0, 2.0)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2014-04-01 00:10:00,lots", "value 'lots'"),
        ("soon,3", "timestamp 'soon'"),
        ("1396311000", "expected 'timestamp,value'"),
        ("1396311000,inf", "not finite"),
    ],
    ids=["bad-value", "bad-timestamp", "one-column", "infinite"],
)
def test_read_csv_names_the_line_of_a_bad_row(tmp_path, line, message):
    path = _write(tmp_path, f"timestamp,value\n1396310400,1\n1396310700,1\n{line}\n")
    with pytest.raises(replay.ReplayError) as info:
        list(replay.read_csv(path))
    assert f"{path}:4:" in str(info.value)
    assert message in str(info.value)


def test_read_csv_can_skip_bad_rows_with_a_message(tmp_path):
    path = _write(tmp_path, "1396310400,1\nbroken\n1396310700,2\n")
    err = io.StringIO()
    assert list(replay.read_csv(path, skip_bad=True, err=err)) == [
        (1396310400.0, 1.0),
        (1396310700.0, 2.0),
    ]
    assert f"{path}:2" in err.getvalue()


def _leak_csv(tmp_path, n=400, step=10.0):
    t0 = 1.7e9
    rows = [f"{t0 + i * step:.0f},{0.3 + 0.6 * i / n:.6f}" for i in range(n)]
    return _write(tmp_path, "timestamp,value\n" + "\n".join(rows) + "\n")


def test_main_prints_one_json_object_per_row_with_the_documented_keys(tmp_path):
    path = _leak_csv(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    rc = replay.main(path, 1.0, None, None, "memory", out, err=err)
    assert rc == 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 400
    assert all(set(r) == KEYS for r in records)
    assert records[0]["t"] == 1.7e9
    assert records[0]["eta_s"] is None
    assert any(r["alarm"] for r in records)
    assert "memory" in err.getvalue()


def test_main_reports_a_bad_line_and_exits_non_zero_without_a_traceback(tmp_path):
    path = _write(tmp_path, "timestamp,value\n1396310400,1\n1396310700,x\n")
    out, err = io.StringIO(), io.StringIO()
    rc = replay.main(path, 10.0, None, None, "cpu", out, err=err)
    assert rc == 1
    assert f"{path}:3" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert len(out.getvalue().splitlines()) == 1  # rows before the bad one were printed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0.0}, "--limit"),
        ({"resource": "disk"}, "--resource"),
        ({"interval_s": -1.0}, "--interval"),
        ({"horizon_s": 0.0}, "horizon_s"),
    ],
    ids=["zero-limit", "unknown-resource", "negative-interval", "zero-horizon"],
)
def test_main_rejects_bad_arguments_with_exit_code_2(tmp_path, kwargs, message):
    args = {"limit": 1.0, "interval_s": None, "horizon_s": None, "resource": "pids"}
    args.update(kwargs)
    err = io.StringIO()
    rc = replay.main(_leak_csv(tmp_path), out=io.StringIO(), err=err, **args)
    assert rc == 2
    assert message in err.getvalue()


def test_main_reports_a_missing_file(tmp_path):
    err = io.StringIO()
    assert (
        replay.main(str(tmp_path / "nope.csv"), 1.0, None, None, "memory", io.StringIO(), err=err)
        == 1
    )
    assert "cannot read" in err.getvalue()


def test_replay_with_an_interval_feeds_only_rows_that_far_apart():
    rows = [(1.7e9 + i * 10.0, 0.5) for i in range(60)]
    stats: dict[str, int] = {}
    out = list(replay.replay(rows, 1.0, ForecastSettings(), 30.0, stats))
    assert len(out) == 60  # still one record per row
    assert stats["fed"] == 20


def test_replay_refits_on_schedule():
    settings = ForecastSettings(fit_min_samples=20, refit_every_s=100.0)
    rng = np.random.default_rng(0)
    rows = [(1.7e9 + i * 10.0, 0.5 + 0.01 * rng.normal()) for i in range(60)]
    stats: dict[str, int] = {}
    list(replay.replay(rows, 1.0, settings, None, stats))
    assert (stats["refits"], stats["refit_failures"]) == (5, 0)  # at samples 20, 30, 40, 50, 60


def test_replay_keeps_going_when_a_fit_fails():
    settings = ForecastSettings(fit_min_samples=20, refit_every_s=100.0)
    rows = [(1.7e9 + i * 10.0, 0.5) for i in range(40)]  # constant: nothing to fit
    stats: dict[str, int] = {}
    out = list(replay.replay(rows, 1.0, settings, None, stats))
    assert len(out) == 40
    assert stats["refit_failures"] >= 1
    assert not any(r["alarm"] for r in out)
