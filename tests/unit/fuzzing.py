"""Hypothesis strategies shared by the fuzz tests: JSON-like trees and their mutations.

The scalars lean on the values that break parsers: NaN and infinities, bools (an ``int``
subclass), integers far beyond 64 bits, digit strings in other scripts, empty and
whitespace strings.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

EDGE_INTS = (0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**30, 10**400)
EDGE_FLOATS = (0.0, -0.0, 0.5, -1.5, 1e-300, 1e300, 1.7976931348623157e308,
               float("nan"), float("inf"), float("-inf"))
EDGE_TEXT = ("", " ", "0", "-1", "1e309", "nan", "inf", "-inf", "1_000", "0x10", "\u0663",
             "\u00b2", "\uff11", "true", "null", "0001-01-01T00:00:00Z",
             "2026-11-22T16:24:45.195829753Z", "9999-12-31T23:59:59.999999999-23:59")


def ints() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(), st.sampled_from(EDGE_INTS))


def floats() -> st.SearchStrategy[float]:
    return st.one_of(st.floats(), st.sampled_from(EDGE_FLOATS))


def texts(*known: str) -> st.SearchStrategy[str]:
    """Any text, the edge strings above, and ``known`` values (keys, enum values...)."""
    pool = EDGE_TEXT + tuple(known)
    return st.one_of(st.text(max_size=24), st.sampled_from(pool))


def scalars(*known: str) -> st.SearchStrategy[Any]:
    """Anything ``json.loads`` can give at a leaf (it accepts NaN and Infinity too)."""
    return st.one_of(st.none(), st.booleans(), ints(), floats(), texts(*known))


def trees(keys: Sequence[str] = (), leaves: st.SearchStrategy[Any] | None = None,
          max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """JSON-like trees whose object keys are often ``keys`` (the names a parser looks for)."""
    key = st.one_of(st.sampled_from(tuple(keys)), st.text(max_size=8)) if keys else st.text(
        max_size=8)
    return st.recursive(
        leaves if leaves is not None else scalars(*keys),
        lambda kids: st.one_of(st.lists(kids, max_size=4),
                               st.dictionaries(key, kids, max_size=6)),
        max_leaves=max_leaves,
    )


def key_names(tree: Any) -> list[str]:
    """Every object key in ``tree`` (to aim mutations and generated keys at real names)."""
    out: list[str] = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.append(k)
            out += key_names(v)
    elif isinstance(tree, list):
        for v in tree:
            out += key_names(v)
    return out


def _slots(tree: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) of every node below the root."""
    out: list[tuple[Any, Any]] = []
    items = tree.items() if isinstance(tree, dict) else (
        enumerate(tree) if isinstance(tree, list) else ())
    for k, v in items:
        out.append((tree, k))
        out += _slots(v)
    return out


@functools.cache
def _replacements(names: tuple[str, ...]) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(new keys, new values) for mutating a tree whose keys are ``names``; built once."""
    return st.sampled_from(names), st.one_of(scalars(*names), trees(names, max_leaves=8))


@st.composite
def mutations(draw: st.DrawFn, original: Any, max_edits: int = 4) -> Any:
    """``original`` (a real recorded body) with 1..max_edits nodes replaced, removed or
    added; replacements are scalars or small trees keyed like the original."""
    tree = copy.deepcopy(original)
    new_key, new_value = _replacements(tuple(sorted(set(key_names(original)))))
    for _ in range(draw(st.integers(1, max_edits))):
        slots = _slots(tree)
        if not slots:
            break
        parent, k = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(("replace", "replace", "remove", "add")))
        if op == "remove":
            del parent[k]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(new_key)] = draw(new_value)
        else:
            parent[k] = draw(new_value)
    return tree
