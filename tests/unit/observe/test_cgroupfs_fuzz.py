"""Property tests of healthd.observe.cgroupfs.read: any content of the six counter files
(cgroup v1 and v2) gives Counters of 64-bit counts, or a CgroupReadError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from healthd.observe import cgroupfs
from tests.unit.observe.test_cgroupfs import CID, v2_tree

# --- inputs the properties below found, kept as plain regression tests ----------------------


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [("memory.current", "-1", "value"), ("pids.max", f"{2**64}\n", "value"),
     ("memory.stat", f"inactive_file {2**64}\n", "inactive_file")],
    ids=["negative", "2**64", "2**64-in-stat"],
)
def test_a_count_that_is_not_64_bit_is_a_read_error(tmp_path: Path, name: str, content: str,
                                                   what: str) -> None:
    root = v2_tree(tmp_path, f"docker/{CID}")
    (root / "docker" / CID / name).write_text(content)
    dirs = cgroupfs.find(CID, root=str(root))
    with pytest.raises(cgroupfs.CgroupReadError, match=f"{name}: {what} is not a 64-bit"):
        cgroupfs.read(dirs, 1.0)
