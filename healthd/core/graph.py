"""A dependency graph over service keys (pure).

Owns: edges from a dependent to what it depends on, their validation (an edge to a node
that does not exist is dropped and reported; a cycle is broken at its last edge and
reported), transitive upstreams with the chain that leads to each, and a deterministic
dependencies-first order. Must never: loop on a cycle, raise on a bad edge, or do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Graph:
    """Nodes and the edges kept after validation; ``problems`` says what was dropped."""

    nodes: frozenset[str] = frozenset()
    needs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # node -> upstreams
    problems: tuple[str, ...] = ()

    def upstreams(self, node: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Everything ``node`` depends on, transitively, nearest first; each with its chain
        from ``node``'s first upstream to it (``("api", "db")`` for web -> api -> db)."""
        found: list[tuple[str, tuple[str, ...]]] = []
        seen = {node}
        frontier: list[tuple[str, tuple[str, ...]]] = [(node, ())]
        while frontier:
            nxt: list[tuple[str, tuple[str, ...]]] = []
            for at, chain in frontier:
                for up in self.needs.get(at, ()):
                    if up not in seen:
                        seen.add(up)
                        path = (*chain, up)
                        found.append((up, path))
                        nxt.append((up, path))
            frontier = nxt
        return tuple(found)

    def downstreams(self, node: str) -> tuple[str, ...]:
        """Every node that depends on ``node``, directly or not, sorted."""
        return tuple(sorted(n for n in self.nodes if any(
            up == node for up, _ in self.upstreams(n))))

    def order(self, nodes: Iterable[str] | None = None) -> tuple[str, ...]:
        """``nodes`` (default: all), dependencies before their dependents; ties by name."""
        want = set(self.nodes if nodes is None else nodes)
        placed: list[str] = []
        done: set[str] = set()
        pending = sorted(want)
        while pending:
            ready = [n for n in pending
                     if all(up in done or up not in want for up in self.needs.get(n, ()))]
            if not ready:  # cannot happen once cycles are broken; never loop regardless
                ready = pending[:1]
            for n in ready:
                placed.append(n)
                done.add(n)
            pending = [n for n in pending if n not in done]
        return tuple(placed)


def build(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> Graph:
    """A validated graph from (dependent, upstream) edges."""
    node_set = frozenset(nodes)
    problems: list[str] = []
    needs: dict[str, list[str]] = {}
    for down, up in sorted(set(edges)):
        if down == up:
            problems.append(f"dependency cycle: {down} -> {up}")
        elif up not in node_set:
            problems.append(f"{down} depends on {up}, which does not exist")
        elif down in node_set:
            needs.setdefault(down, []).append(up)
    _break_cycles(needs, problems)
    return Graph(node_set, {k: tuple(v) for k, v in needs.items() if v}, tuple(problems))


def _break_cycles(needs: dict[str, list[str]], problems: list[str]) -> None:
    """Drop the edge that closes each cycle (depth-first, in name order) and report it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(needs):
        if state.get(start):
            continue
        path: list[str] = [start]
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, i = stack[-1]
            ups = needs.get(node, [])
            if i >= len(ups):
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            stack[-1] = (node, i + 1)
            up = ups[i]
            if state.get(up) == 1:
                loop = [*path[path.index(up):], up]
                problems.append("dependency cycle: " + " -> ".join(loop))
                ups.pop(i)
                stack[-1] = (node, i)
            elif not state.get(up):
                state[up] = 1
                path.append(up)
                stack.append((up, 0))
