"""Shared pytest wiring: the session's throwaway Docker engine and its guard rails.

Owns: the session-scoped `engine` fixture and the rule that only tests marked
``@pytest.mark.engine`` (never tests under tests/unit) may use it.
Must never: start the engine for a test that did not ask for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine import Engine, EngineStartError, engine_unavailable, reap_stale

UNIT_DIR = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse engine use from unit tests, and engine use without the ``engine`` marker."""
    for item in items:
        if "engine" not in getattr(item, "fixturenames", ()):
            continue
        if UNIT_DIR in Path(str(item.path)).parents:
            raise pytest.UsageError(f"{item.nodeid}: unit tests must not use the engine fixture")
        if item.get_closest_marker("engine") is None:
            raise pytest.UsageError(
                f"{item.nodeid} uses the engine fixture without @pytest.mark.engine"
            )


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """A private dockerd for the whole session, with the busybox test image imported.

    Started once, on first use; stopped (containers removed, mounts undone, dirs deleted)
    at session end or, failing that, at interpreter exit.
    """
    reap_stale()
    try:
        eng = Engine()
    except OSError as exc:
        engine_unavailable(f"cannot create the engine directory: {exc}")
    try:
        eng.start()
    except EngineStartError as exc:
        eng.stop()
        engine_unavailable(str(exc))
    try:
        yield eng
    finally:
        eng.stop()
