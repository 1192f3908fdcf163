"""Per-test helpers for tests that run containers on the throwaway engine.

Owns: the `containers` fixture (unique names, removal after the test; the class behind it is
`tests.engine.Containers`), `healthds` (real healthd processes, killed after the test) and the
session's `healthd_image` (built by `tests.image`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine import Containers, Engine, engine_unavailable
from tests.image import Built, ImageUnavailable, build_image
from tests.integration.healthd_proc import Healthd


@pytest.fixture
def containers(engine: Engine) -> Iterator[Containers]:
    """Unique container names and `run` for one test; its containers are removed after it."""
    made = Containers(engine)
    try:
        yield made
    finally:
        made.remove_all()


@pytest.fixture
def healthds() -> Iterator[list[Healthd]]:
    """Real `healthd run` processes a test starts (append them); killed after the test."""
    made: list[Healthd] = []
    yield made
    for h in made:
        h.kill()


@pytest.fixture(scope="session")
def healthd_image(engine: Engine) -> Built:
    """healthd's image (Dockerfile) in the session's engine, on the cached Debian base.

    The first run makes the base with mmdebstrap and the wheelhouse (a few minutes);
    later runs load the saved image, or rebuild only the image when the tree changed.
    """
    try:
        return build_image(engine.docker_host)
    except ImageUnavailable as exc:
        engine_unavailable(f"cannot build healthd's image: {exc}")
