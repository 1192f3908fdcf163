"""Compose v1 files: the ``depends_on`` that Compose v1 does not put in labels.

Owns: finding a project's compose file(s) from its containers' labels
(``com.docker.compose.project.config_files``, relative to ``...working_dir``), reading
them with PyYAML's ``safe_load`` (cached by path and mtime), and the services' dependencies
in both the list and the mapping (``condition:``) forms. Must never: raise for a missing,
unreadable or malformed file; that is a problem string, and the labels still count.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from healthd.core import labels
from healthd.core.model import ContainerState
from healthd.core.topology import FileDeps


def dependencies_in(doc: Any) -> dict[str, tuple[str, ...]]:
    """service -> what its ``depends_on`` names, from a parsed compose document."""
    out: dict[str, tuple[str, ...]] = {}
    services = doc.get("services") if isinstance(doc, Mapping) else None
    if not isinstance(services, Mapping):
        return out
    for name, body in services.items():
        deps = body.get("depends_on") if isinstance(body, Mapping) else None
        if isinstance(deps, list):
            out[str(name)] = tuple(str(d) for d in deps if isinstance(d, (str, int)))
        elif isinstance(deps, Mapping):  # {db: {condition: service_healthy}}
            out[str(name)] = tuple(str(d) for d in deps)
    return out


def files(states: Iterable[ContainerState]) -> dict[str, list[str]]:
    """project -> its compose files, from the first of its containers that names them."""
    out: dict[str, list[str]] = {}
    for c in states:
        d = dict(c.labels)
        project, names = d.get(labels.COMPOSE_PROJECT), d.get(labels.COMPOSE_CONFIG_FILES)
        if project and names and project not in out:
            base = d.get(labels.COMPOSE_WORKING_DIR, "")
            out[project] = [os.path.join(base, n.strip()) for n in names.split(",")
                            if n.strip()]
    return out


class Reader:
    """Reads and caches compose files; ``problems`` names the ones that could not be read."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, dict[str, tuple[str, ...]]]] = {}
        self.problems: tuple[str, ...] = ()

    def dependencies(self, states: Iterable[ContainerState]) -> FileDeps:
        """project -> service -> depends_on, merged over the project's files."""
        return self.read(files(states))

    def read(self, files: Mapping[str, Sequence[str]]) -> FileDeps:
        """project -> service -> depends_on from each project's files (``files()``); a file
        is parsed again only when its mtime changed."""
        problems: list[str] = []
        out: dict[str, dict[str, tuple[str, ...]]] = {}
        for project, paths in files.items():
            merged: dict[str, tuple[str, ...]] = {}
            for path in paths:
                deps, problem = self._read(path)
                if problem:
                    problems.append(f"compose project {project}: {problem}")
                merged.update(deps)  # later files override, as compose merges them
            out[project] = merged
        self.problems = tuple(problems)
        return out

    def _read(self, path: str) -> tuple[dict[str, tuple[str, ...]], str | None]:
        try:
            mtime = os.stat(path).st_mtime
        except OSError as exc:
            self._cache.pop(path, None)
            return {}, f"cannot read {path}: {exc.strerror} (dependencies from labels only)"
        cached = self._cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1], None
        try:
            with open(path, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            return {}, f"cannot parse {path}: {str(exc).splitlines()[0]}"
        deps = dependencies_in(doc)
        self._cache[path] = (mtime, deps)
        return deps, None
