"""Debian's chromium driven by Playwright, for the dashboard's tests and bench.

Owns: launching the system browser (never one Playwright downloads), collecting a page's
console errors, where screenshots go, and making many cheap containers at once.
Must never: fetch anything: the page under test is healthd's own, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

CHROMIUM = "/usr/bin/chromium"


class BrowserUnavailable(RuntimeError):
    """Playwright or Debian's chromium is missing (scripts/setup --test installs both)."""


def artefacts() -> Path:
    """The folder screenshots go to ($HEALTHD_TEST_ARTEFACTS, else /tmp/healthd-artefacts)."""
    path = Path(os.environ.get("HEALTHD_TEST_ARTEFACTS") or "/tmp/healthd-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium (Playwright's Browser), closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserUnavailable(f"playwright is not installed: {exc}") from exc
    path = shutil.which("chromium") or CHROMIUM
    if not os.path.exists(path):
        raise BrowserUnavailable(f"{CHROMIUM} missing (Debian package chromium)")
    with sync_playwright() as pw:
        # --no-sandbox: the tests run as root, where chromium refuses its sandbox.
        browser = pw.chromium.launch(executable_path=path, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """What a page said on its console and which errors it threw."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        return page


def run_many(client: docker.DockerClient, image: str, names: list[str],
             workers: int = 8) -> list[str]:
    """Create and start ``names`` as idle containers (``--network none``) in parallel; ids."""
    def one(name: str) -> str:
        c = client.api.create_container(
            image, ["sleep", "2147483647"], name=name,
            host_config=client.api.create_host_config(network_mode="none"))
        client.api.start(c["Id"])
        return str(c["Id"])

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, names))


def remove_many(client: docker.DockerClient, ids: list[str], workers: int = 8) -> None:
    """Force-remove containers in parallel; already gone is fine."""
    def one(cid: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(cid, force=True, v=True)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, ids))


def first_render_ms(page: Any, url: str, rows: int, timeout_s: float = 30.0) -> float:
    """Load ``url`` afresh and return ms from navigation start until the table first showed
    (the page stamps it on body[data-first-render-ms]); waits for ``rows`` rows."""
    page.goto(url)
    page.wait_for_function(f"document.querySelectorAll('#rows tr.row').length >= {rows}",
                           timeout=timeout_s * 1000)
    return float(page.evaluate("Number(document.body.dataset.firstRenderMs)"))


def filter_ms(page: Any, text: str, expect_rows: int, timeout_s: float = 10.0) -> float:
    """Type ``text`` into the filter; ms until exactly ``expect_rows`` rows are shown."""
    started = time.perf_counter()
    page.fill("#filter", text)
    page.wait_for_function(
        f"document.querySelectorAll('#rows tr.row').length === {expect_rows}",
        timeout=timeout_s * 1000)
    return (time.perf_counter() - started) * 1000
