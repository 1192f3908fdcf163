"""The dashboard's files: ``GET /`` and ``/ui/*``, read once from the package.

Owns: which files of ``healthd/serve/ui/`` are served and their content types. The page
itself reads ``/status``, ``/api/series`` and ``/api/history``; nothing is built at install
time and nothing is fetched from elsewhere. Must never: serve a path outside that list.
"""

from __future__ import annotations

import logging
from importlib import resources

log = logging.getLogger(__name__)

Response = tuple[int, str, bytes]
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui/app.css": ("app.css", "text/css; charset=utf-8"),
}


def routes() -> dict[str, Response]:
    """path -> response for each dashboard file that the installed package holds."""
    out: dict[str, Response] = {}
    folder = resources.files("healthd.serve") / "ui"
    for path, (name, ctype) in FILES.items():
        try:
            body = (folder / name).read_bytes()
        except OSError as exc:
            # An install without its package data still serves /status and /metrics.
            log.warning("dashboard file %s missing from the package: %s", name, exc)
            continue
        out[path] = (200, ctype, body)
    return out
