"""Per-test helpers for tests that run containers on the throwaway engine.

Owns: the `containers` fixture (unique names, removal after the test); the class behind it is
`tests.engine.Containers`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine import Containers, Engine


@pytest.fixture
def containers(engine: Engine) -> Iterator[Containers]:
    """Unique container names and `run` for one test; its containers are removed after it."""
    made = Containers(engine)
    try:
        yield made
    finally:
        made.remove_all()
