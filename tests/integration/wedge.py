"""Wedge healthd's main loop for a while, the way a hung filesystem would.

healthd reads the compose files that a project's labels name from its main loop (cached
by mtime). A container whose labels name a FIFO with no writer makes that read block, as a
file on a hung network mount does: the loop stops turning while the HTTP thread and the
observer go on. Leaving the context unblocks it and puts a regular file in the FIFO's place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    from tests.engine import Containers
except ModuleNotFoundError:
    from engine import Containers  # type: ignore[no-redef]


@contextlib.contextmanager
def wedged_main_loop(containers: Containers, workdir: Path) -> Iterator[None]:
    """While inside, healthd's next sweep blocks on reading a compose file."""
    fifo = workdir / "hung-compose.yml"
    os.mkfifo(fifo)
    containers.run("wedges-the-loop", "sleep", "100000", opts=(
        "--label", "com.docker.compose.project=wedge",
        "--label", "com.docker.compose.service=hung",
        "--label", f"com.docker.compose.project.working_dir={workdir}",
        "--label", f"com.docker.compose.project.config_files={fifo.name}"))
    try:
        yield
    finally:
        # A regular file takes the FIFO's place first, so the next sweep reads that instead of
        # blocking again; then the blocked reader gets bytes through a second name of the FIFO.
        # (Probing for a reader by opening and closing would itself release the reader.)
        old = workdir / "hung-compose.fifo"
        os.link(fifo, old)
        plain = workdir / "plain-compose.yml"
        plain.write_text("services: {}\n")
        os.replace(plain, fifo)
        try:
            fd = os.open(old, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody has it open for reading; nothing is blocked
            pass
        else:
            os.write(fd, b"services: {}\n")
            os.close(fd)
