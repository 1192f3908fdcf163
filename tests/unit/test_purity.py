"""Import contract of the pure core: no I/O, clock, threads or engine in these modules.

Each module's source is parsed with ``ast`` (nothing is imported), and every ``import x`` /
``from x import y`` anywhere in it (also inside functions and ``if`` blocks) is checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import healthd

PACKAGE = Path(healthd.__file__).parent
# Every module of healthd.core is pure, and so are these parsers and views elsewhere.
PURE_ELSEWHERE = ("observe.containers", "observe.stats", "observe.blueprint",
                  "foresight.forecast", "foresight.holt", "foresight.settings",
                  "foresight.alarm", "foresight.drift", "foresight.peak", "foresight.reach",
                  "serve.status", "demo_stack")
PURE = tuple(sorted(
    [f"core.{p.stem}" for p in (PACKAGE / "core").glob("*.py") if p.stem != "__init__"]
    + list(PURE_ELSEWHERE)))
FORBIDDEN = frozenset({"docker", "sqlite3", "time", "threading", "http", "prometheus_client",
                       "click", "requests", "subprocess", "socket"})


def _source(module: str) -> str:
    return (PACKAGE / (module.replace(".", "/") + ".py")).read_text()


def imported_modules(source: str) -> list[str]:
    """Absolute module names imported anywhere in ``source``; relative ones as '.name'."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.append(base)
            if node.module is None or node.module.startswith("healthd") or node.level:
                # `from healthd import labels` imports the module healthd.labels
                names += [f"{base}.{alias.name}".replace("..", ".") for alias in node.names]
    return names


def forbidden_in(source: str) -> list[str]:
    return [n for n in imported_modules(source) if n.split(".")[0] in FORBIDDEN]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_forbidden(module: str) -> None:
    assert forbidden_in(_source(module)) == []


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_only_pure_healthd_modules(module: str) -> None:
    own = [n for n in imported_modules(_source(module)) if n.startswith("healthd.")]
    # `from healthd.core import labels` names both the package and the module: judge modules.
    impure = [n for n in own if n.removeprefix("healthd.") not in PURE
              and (PACKAGE / n.removeprefix("healthd.").replace(".", "/")).with_suffix(".py")
              .exists()]
    assert impure == []


SNIPPETS = [
    ("import", "import time\n", ["time"]),
    ("dotted", "import http.client\n", ["http.client"]),
    ("from-import", "from docker.errors import NotFound\n", ["docker.errors"]),
    ("aliased", "import sqlite3 as db\n", ["sqlite3"]),
    ("in-function", "def f():\n    import subprocess\n", ["subprocess"]),
    ("in-type-checking", "if TYPE_CHECKING:\n    from threading import Lock\n", ["threading"]),
    ("several", "import os, socket, requests\n", ["socket", "requests"]),
    ("allowed", "import datetime\nfrom os import path\nimport timeit\n", []),
]


@pytest.mark.parametrize(("source", "want"), [s[1:] for s in SNIPPETS],
                         ids=[s[0] for s in SNIPPETS])
def test_the_checker_catches_forbidden_imports(source: str, want: list[str]) -> None:
    assert forbidden_in(source) == want


def test_the_checker_sees_healthd_submodules() -> None:
    names = imported_modules("from healthd import engine\nfrom . import ledger\n")
    assert "healthd.engine" in names and ".ledger" in names


# The shell has one owner per kind of I/O (STYLE.md): one docker-py user, one HTTP server,
# and SQLite only in the store package (the ledger, and the notification spool in a file of
# its own). An owner ending in ".*" is a package: any of its modules, and nothing outside.
# Owners are "|"-separated: the engine's containers and its Swarm calls are two modules.
OWNERS = {"docker": "observe.engine|observe.swarmapi", "requests": "observe.engine",
          "sqlite3": "store.*", "http": "serve.server"}


def _owned_by(module: str, owner: str) -> bool:
    if "|" in owner:
        return any(_owned_by(module, o) for o in owner.split("|"))
    if owner.endswith(".*"):
        return module.startswith(owner[:-1])
    return module == owner


@pytest.mark.parametrize("library", sorted(OWNERS), ids=sorted(OWNERS))
def test_only_its_owner_module_imports_an_io_library(library: str) -> None:
    users = sorted(
        ".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
        if any(m.split(".")[0] == library for m in imported_modules(p.read_text()))
    )
    assert users, f"nothing imports {library}: is its owner {OWNERS[library]} gone?"
    assert [u for u in users if not _owned_by(u, OWNERS[library])] == [], users


@pytest.mark.parametrize(("module", "owner", "want"), [
    ("store.ledger", "store.*", True),
    ("store.spool", "store.*", True),
    ("storex.spool", "store.*", False),
    ("act.notifier", "store.*", False),
    ("serve.server", "serve.server", True),
    ("serve.status", "serve.server", False),
], ids=["ledger", "spool", "prefix-lookalike", "outside", "exact", "exact-other"])
def test_owner_patterns(module: str, owner: str, want: bool) -> None:
    assert _owned_by(module, owner) is want
