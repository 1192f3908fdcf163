"""How long from `docker-compose up -d` to healthd's READY (its first /healthz 200), and the
image's size.

Method: a throwaway engine (tests/engine.py); healthd's image built or loaded from the test
cache (tests/image.py: Debian bookworm base made by mmdebstrap, `docker build --network
none`); compose/docker-compose.yml brought up with docker-compose v1 against that engine,
/healthz polled every 20 ms on 127.0.0.1, then `docker-compose down -v`. Each run is a
fresh project (new container, new state volume). Prints each run and the median.

    python bench/compose_ready.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engine import running_engine
from tests.image import build_image
from tests.integration.compose_stack import Stack


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with running_engine() as engine:
        built = build_image(engine.docker_host)
        print(f"image {built.tag}: {built.size_bytes / 1e6:.0f} MB "
              f"({built.size_bytes / 2**20:.0f} MiB), {built.how} in {built.seconds:.0f} s")
        times = []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                stack = Stack(engine, built.tag, Path(tmp))
                try:
                    t = stack.up()
                finally:
                    stack.down()
            times.append(t)
            print(f"run {i + 1}: docker-compose up -d -> /healthz 200 in {t:.2f} s")
        print(f"median of {len(times)}: {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
