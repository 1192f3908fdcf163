"""Property tests of healthd.foresight.replay: any CSV file gives rows of finite numbers or a
ReplayError naming the file and line, and ``main`` answers 0 or 1, never a traceback.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthd.foresight import replay
from tests.unit.fuzzing import floats, ints, texts

stamps = st.one_of(
    ints().map(str), floats().map(str), texts("2014-04-01 00:00:00", "2014-04-01T00:00:00Z"),
    st.datetimes().map(str), st.datetimes().map(lambda d: d.isoformat()),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?\Z"),
)
values = st.one_of(ints().map(str), floats().map(str), texts())
rows = st.builds(lambda t, v, extra: ",".join([t, v, *extra]), stamps, values,
                 st.lists(st.text(max_size=4), max_size=2))


@dataclass(frozen=True)
class LongField:
    """A row whose value has ``digits`` digits: past csv's field limit (131072) when large.
    Drawn as this small value, so that hypothesis never has to print the long line."""

    digits: int

    def __str__(self) -> str:
        return "1," + "9" * self.digits


lines = st.one_of(rows, rows, texts("timestamp,value", "", ",", '"', '"1,2'),
                  st.integers(0, 140_000).map(LongField))


@dataclass(frozen=True)
class Doc:
    """A CSV file: text lines, then raw bytes (not always UTF-8) at the end."""

    lines: list[str | LongField]
    tail: bytes = b""

    def encode(self) -> bytes:
        return "\n".join(map(str, self.lines)).encode("utf-8", "surrogatepass") + self.tail


docs = st.one_of(st.builds(Doc, st.lists(lines, max_size=12)),
                 st.builds(Doc, st.lists(lines, max_size=12), st.binary(max_size=8)),
                 st.builds(Doc, st.just([]), st.binary(max_size=64)))


def written(doc: Doc, tmp: str) -> str:
    path = os.path.join(tmp, "series.csv")
    with open(path, "wb") as fh:
        fh.write(doc.encode())
    return path


@given(stamps)
def test_any_timestamp_gives_finite_seconds_or_a_value_error(text: str) -> None:
    try:
        t = replay.parse_timestamp(text)
    except ValueError as exc:
        assert "timestamp" in str(exc)
    else:
        assert isinstance(t, float) and math.isfinite(t)


@given(docs)
def test_any_csv_gives_finite_rows_or_a_replay_error_naming_the_line(doc: Doc) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = written(doc, tmp)
        try:
            got = list(replay.read_csv(path))
        except replay.ReplayError as exc:
            assert str(exc).startswith(f"{path}:"), exc
        else:
            assert all(math.isfinite(t) and math.isfinite(v) for t, v in got)
        skipped = io.StringIO()
        assert all(math.isfinite(t) and math.isfinite(v)
                   for t, v in replay.read_csv(path, skip_bad=True, err=skipped))


@given(docs, st.one_of(floats(), st.just(100.0)))
def test_main_answers_any_csv_with_an_exit_code(doc: Doc, limit: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out, err = io.StringIO(), io.StringIO()
        code = replay.main(written(doc, tmp), limit, None, None, "memory", out, err=err)
        assert code in (0, 1, 2), code
        assert code == 0 or err.getvalue().startswith("healthd replay: ")


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


def test_a_sub_millisecond_step_does_not_overflow_the_forecaster(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_text("-1.1125369292536007e-308,-1\n0,0\n")
    err = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings
        code = replay.main(str(path), 1.0, None, None, "memory", io.StringIO(), err=err)
    assert code in (0, 1), err.getvalue()


def test_a_value_beyond_64_bits_is_a_replay_error(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_text(f"0,0\n1,{'9' * 148}\n")
    err = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings
        code = replay.main(str(path), 1e147, None, None, "memory", io.StringIO(), err=err)
    assert code == 1 and "beyond 64-bit counts" in err.getvalue()
