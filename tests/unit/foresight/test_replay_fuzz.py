"""Property tests of healthd.foresight.replay: any CSV file gives rows of finite numbers or a
ReplayError naming the file and line, and ``main`` answers 0 or 1, never a traceback.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from healthd.foresight import replay

# --- inputs the properties below found, kept as plain regression tests ----------------------


def test_a_row_that_is_not_utf8_is_a_replay_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_bytes(b"timestamp,value\n1,2\n2,\x80\n3,4\n")
    with pytest.raises(replay.ReplayError, match=rf"^{path}:3: not UTF-8 text$"):
        list(replay.read_csv(str(path)))
    err = io.StringIO()
    assert list(replay.read_csv(str(path), skip_bad=True, err=err)) == [(1.0, 2.0), (3.0, 4.0)]
    assert err.getvalue() == f"skipped {path}:3: not UTF-8 text\n"
    assert replay.main(str(path), 10.0, None, None, "memory", io.StringIO(), err=err) == 1


def test_a_field_over_the_csv_limit_is_a_replay_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_text(f"1,2\n2,{'9' * 131073}\n3,4\n")
    with pytest.raises(replay.ReplayError, match=rf"^{path}:2: field larger than field limit"):
        list(replay.read_csv(str(path)))
    err = io.StringIO()
    assert list(replay.read_csv(str(path), skip_bad=True, err=err)) == [(1.0, 2.0), (3.0, 4.0)]
    assert replay.main(str(path), 10.0, None, None, "memory", io.StringIO(), err=err) == 1
