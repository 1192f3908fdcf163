"""Benchmark: how long the dashboard takes to first show N containers, and to filter them.

On a throwaway dockerd, starts N idle busybox containers (``--network none``), runs the real
`healthd run` against them, and loads the dashboard in Debian's headless chromium (driven by
Playwright) ``--runs`` times: each run is a fresh page, timed from navigation start until
the container table first shows (the page stamps it), then until a filter down to one
container has been applied. Prints each run and the medians.

    python bench/dashboard_render.py [--containers 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import running_engine, wait_for  # noqa: E402
from tests.integration import browser  # noqa: E402
from tests.integration.healthd_proc import Healthd  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with running_engine() as eng, tempfile.TemporaryDirectory() as tmp:
        names = [eng.name("idle") for _ in range(args.containers)]
        browser.run_many(eng.client, eng.image, names)
        h = Healthd(eng, Path(tmp), cfg={"watch": {"stats_interval_s": 2.0}})
        try:
            h.start()
            wait_for(lambda: len(h.status()["containers"]) >= args.containers, 120,
                     what="healthd sees every container")
            renders, filters = [], []
            with browser.chromium() as chrome:
                for i in range(args.runs):
                    page = chrome.new_page(viewport={"width": 1400, "height": 1000})
                    renders.append(browser.first_render_ms(page, h.url + "/", args.containers))
                    filters.append(browser.filter_ms(page, names[len(names) // 2], 1))
                    page.close()
                    print(f"run {i + 1}: first render {renders[-1]:.0f} ms, "
                          f"filter {filters[-1]:.0f} ms", flush=True)
        finally:
            h.kill()
    print(f"{dt.date.today()} {platform.node()} {args.containers} containers, {args.runs} runs: "
          f"median first render {statistics.median(renders):.0f} ms, "
          f"median filter to one {statistics.median(filters):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
