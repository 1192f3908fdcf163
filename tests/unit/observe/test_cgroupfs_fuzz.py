"""Property tests of healthd.observe.cgroupfs.read: any content of the six counter files
(cgroup v1 and v2) gives Counters of 64-bit counts, or a CgroupReadError naming the file.

The flat-keyed files (memory.stat, cpu.stat) start from the real contents in test_cgroupfs.py
and have lines replaced, dropped, repeated or garbled.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthd.observe import cgroupfs
from tests.unit.fuzzing import floats, ints, texts
from tests.unit.observe.test_cgroupfs import (
    CID,
    V1_MEMORY_STAT,
    V2_CPU_STAT,
    V2_MEMORY_STAT,
    v2_tree,
)

COUNTERS = ("cpu_total_ns", "mem_usage_bytes", "mem_inactive_file_bytes", "mem_limit_bytes",
            "pids", "pids_limit")

numbers = st.one_of(ints().map(str), floats().map(str), texts("max", "-1", "+5", " 7 ", "1_0"))
plausible = st.integers(0, 2**40).map(lambda n: f"{n}\n".encode())
odd = st.one_of(
    st.builds(lambda v, end: (v + end).encode(), numbers, st.sampled_from(("", "\n", " \n"))),
    st.binary(max_size=24),
)
# Mostly plausible, so that one odd file at a time reaches the code after the reads.
single_values = st.one_of(plausible, plausible, plausible, odd)


@st.composite
def stat_files(draw: st.DrawFn, real: str) -> bytes:
    """A flat-keyed file: the real one with lines garbled, or anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    lines = real.splitlines()
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        key = lines[i].split(" ", 1)[0]
        op = draw(st.sampled_from(("value", "value", "drop", "repeat", "line")))
        if op == "value":
            lines[i] = f"{key} {draw(numbers)}"
        elif op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "repeat":
            lines.insert(i, f"{key} {draw(numbers)}")
        else:
            lines[i] = draw(texts())
    return ("\n".join(lines) + draw(st.sampled_from(("\n", "")))).encode("utf-8", "surrogatepass")


V1 = {"memory/memory.usage_in_bytes": single_values, "memory/memory.stat": stat_files(
    V1_MEMORY_STAT), "memory/memory.limit_in_bytes": single_values,
      "cpu/cpuacct.usage": single_values, "pids/pids.current": single_values,
      "pids/pids.max": single_values}
V2 = {"memory.current": single_values, "memory.stat": stat_files(V2_MEMORY_STAT),
      "memory.max": single_values, "cpu.stat": stat_files(V2_CPU_STAT),
      "pids.current": single_values, "pids.max": single_values}


def check(root: Path, version: int, files: dict[str, bytes]) -> None:
    for rel, raw in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)
    dirs = (cgroupfs.CgroupDirs(1, str(root / "memory"), str(root / "cpu"), str(root / "pids"))
            if version == 1 else cgroupfs.CgroupDirs(2, str(root), str(root), str(root)))
    try:
        c = cgroupfs.read(dirs, 1.0)
    except cgroupfs.CgroupReadError as exc:
        assert str(root) in str(exc), exc
        return
    for name in COUNTERS:
        v = getattr(c, name)
        assert v is None or (type(v) is int and 0 <= v < 2**64), (name, v)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cgroup")


@given(st.fixed_dictionaries(V1))
def test_any_v1_file_contents_give_counters_or_a_read_error(root: Path,
                                                             files: dict[str, bytes]) -> None:
    check(root / "v1", 1, files)


@given(st.fixed_dictionaries(V2))
def test_any_v2_file_contents_give_counters_or_a_read_error(root: Path,
                                                             files: dict[str, bytes]) -> None:
    check(root / "v2", 2, files)


# --- inputs the properties below found, kept as plain regression tests ----------------------


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [("memory.current", "-1", "value"), ("pids.max", f"{2**64}\n", "value"),
     ("memory.stat", f"inactive_file {2**64}\n", "inactive_file"),
     ("cpu.stat", f"usage_usec {2**63 - 1}\n", "usage_usec in ns")],
    ids=["negative", "2**64", "2**64-in-stat", "usec-beyond-64-bit-ns"],
)
def test_a_count_that_is_not_64_bit_is_a_read_error(tmp_path: Path, name: str, content: str,
                                                   what: str) -> None:
    root = v2_tree(tmp_path, f"docker/{CID}")
    (root / "docker" / CID / name).write_text(content)
    dirs = cgroupfs.find(CID, root=str(root))
    with pytest.raises(cgroupfs.CgroupReadError, match=f"{name}: {what} is not a 64-bit"):
        cgroupfs.read(dirs, 1.0)
