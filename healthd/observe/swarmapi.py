"""The Swarm half of the engine's API: lists, events, inspects and updates of services and
nodes (``healthd.observe.swarm`` reads, ``healthd.act.swarm`` writes).

Owns: translating docker-py / requests errors on Swarm calls into healthd's own
(``EngineUnavailable``, ``ActionFailed``, ``VersionConflict``), as ``observe.engine`` does for
containers, whose client it uses. Must never: decide anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import docker.errors

from healthd.observe.engine import (
    CONN_ERRORS,
    Engine,
    EngineUnavailable,
    VersionConflict,
    failed,
)

# info's Swarm section, then the services, tasks and nodes as the API lists them.
SwarmLists = tuple[dict[str, Any], Sequence[Any], Sequence[Any], Sequence[Any]]


def lists(eng: Engine) -> SwarmLists | None:
    """(info's Swarm section, services, tasks, nodes) on a manager; None elsewhere."""
    api = eng.api
    try:
        sw = dict(api.info().get("Swarm") or {})
        if sw.get("LocalNodeState") != "active" or not sw.get("ControlAvailable"):
            return None
        return sw, list(api.services()), list(api.tasks()), list(api.nodes())
    except docker.errors.APIError as exc:
        # A manager that cannot list now (a 503 while there is no leader): the last
        # listing stands until the next one; only info says "no swarm here".
        raise EngineUnavailable(f"listing the swarm: {exc}") from exc
    except CONN_ERRORS as exc:
        raise EngineUnavailable(f"listing the swarm: {exc}") from exc


def events(eng: Engine) -> tuple[Iterator[dict[str, Any]], Any]:
    """Service and node events from now on; returns (events, stream to close)."""
    try:
        stream = eng.api.events(decode=True, filters={"type": ["service", "node"]})
    except (*CONN_ERRORS, docker.errors.APIError) as exc:
        raise EngineUnavailable(f"subscribing to swarm events: {exc}") from exc

    def gen() -> Iterator[dict[str, Any]]:
        try:
            for raw in stream:
                if isinstance(raw, dict):
                    yield raw
        except (*CONN_ERRORS, docker.errors.APIError, ValueError) as exc:
            raise EngineUnavailable(f"swarm events stream dropped: {exc}") from exc
        raise EngineUnavailable("swarm events stream ended")

    return gen(), stream


def inspect(eng: Engine, kind: str, oid: str) -> dict[str, Any]:
    """Inspect a service or node (``kind``): its Spec and Version as the engine has them."""
    try:
        return dict(eng.api.inspect_service(oid) if kind == "service"
                    else eng.api.inspect_node(oid))
    except (*CONN_ERRORS, docker.errors.APIError) as exc:
        raise failed(f"reading {kind} {oid[:12]}", exc) from exc


def update(eng: Engine, kind: str, oid: str, version: int, spec: Mapping[str, Any],
           rollback: bool = False) -> None:
    """Update a service or node from ``spec`` at ``version``; ``rollback``: the engine's
    own rollback of a service to its previous spec (then ``spec`` is not used).
    Raises VersionConflict when the object changed since ``version`` was read."""
    api = eng.api
    params: dict[str, Any] = {"version": version}
    if rollback:
        params["rollback"] = "previous"
    try:
        # docker-py's update_service rebuilds the spec from keyword arguments and drops
        # fields it does not know; the raw endpoint sends the spec as the engine gave it.
        resp = api._post_json(api._url(f"/{kind}s/{{0}}/update", oid),
                              data=dict(spec), params=params)
        api._raise_for_status(resp)
    except docker.errors.APIError as exc:
        if "out of sequence" in str(exc.explanation or exc):
            raise VersionConflict(f"{kind} {oid[:12]} changed since version {version}") \
                from exc
        raise failed(f"updating {kind} {oid[:12]}", exc) from exc
    except CONN_ERRORS as exc:
        raise failed(f"updating {kind} {oid[:12]}", exc) from exc
