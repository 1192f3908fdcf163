"""What a new replica (or a recreated container) is made of, from an existing one's inspect.

Owns: turning a template container's inspect JSON into the engine's create body
(``POST /containers/create``: Config fields, HostConfig, the first network's endpoint) plus
the further networks to connect before the start, the way Compose v1 makes a service's
containers: same image, command, entrypoint, environment, labels (with its own
container number), resources, restart policy, healthcheck, mounts and networks.
Must never: talk to the engine (engine.py sends the body) or choose numbers, names or
images (healthd.core.scale and the caller do).

What is not copied, and why:
- ``Hostname`` when the engine made it up (the template's short id) or when the network
  mode shares a namespace (host, container:…): the engine sets it.
- For a new replica, fixed host ports become ephemeral (the template holds them), and
  fixed addresses (static IPs, MAC address) are dropped (the template holds those too).
- ``ContainerIDFile`` (it would clash), the template's own short-id network alias.
- Inspect's legacy ``Links`` ("/db:/proj_web_1/db") are turned back into "db:db".
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthd.core import labels

_SHARED_NETWORKS = ("host", "none", "bridge", "default")


@dataclass(frozen=True)
class Blueprint:
    """A create body and what to connect before the start."""

    name: str
    body: dict[str, Any]  # POST /containers/create
    networks: tuple[tuple[str, dict[str, Any]], ...] = ()  # (network, EndpointSettings)


def for_replica(
    template: Mapping[str, Any], *, name: str, number: int, image: str, created_at: float
) -> Blueprint:
    """A new replica ``number`` of the template's service, labelled as healthd's own.

    image: what to run (the template's tag while it still names the template's image,
      else the template's image id, so the replica matches the template's config hash).
    created_at: epoch seconds, for the healthd.created.at label.
    """
    set_labels = {
        labels.COMPOSE_NUMBER: str(number),
        labels.CREATED: "true",
        labels.CREATED_AT: f"{created_at:.3f}",
    }
    return _build(template, name=name, image=image, set_labels=set_labels, drop_labels=(),
                  keep_ports=None, keep_addresses=False, carried=(),
                  own_ids=(_short(template),))


def for_recreate(template: Mapping[str, Any], old: Mapping[str, Any], *, image: str) -> Blueprint:
    """``old``'s replacement from ``template``'s config (``old`` itself for an image update).

    Keeps old's name, container number, healthd ownership labels and anonymous volumes
    (as compose does); host ports and addresses old held are kept, others are treated as
    for a new replica.
    """
    old_labels = dict((old.get("Config") or {}).get("Labels") or {})
    set_labels = {k: old_labels[k] for k in (labels.COMPOSE_NUMBER, labels.CREATED,
                                             labels.CREATED_AT) if k in old_labels}
    drop = tuple(k for k in (labels.CREATED, labels.CREATED_AT) if k not in old_labels)
    same = template.get("Id") == old.get("Id")
    return _build(template, name=str(old.get("Name", "")).lstrip("/"), image=image,
                  set_labels=set_labels, drop_labels=drop,
                  keep_ports=(old.get("HostConfig") or {}).get("PortBindings") or {},
                  keep_addresses=same, carried=anonymous_volumes(old),
                  own_ids=(_short(template), _short(old)))


def _short(c: Mapping[str, Any]) -> str:
    return str(c.get("Id", ""))[:12]


def _build(
    template: Mapping[str, Any], *, name: str, image: str, set_labels: Mapping[str, str],
    drop_labels: tuple[str, ...], keep_ports: Mapping[str, Any] | None, keep_addresses: bool,
    carried: tuple[tuple[str, str], ...], own_ids: tuple[str, ...],
) -> Blueprint:
    config: dict[str, Any] = copy.deepcopy(dict(template.get("Config") or {}))
    host: dict[str, Any] = copy.deepcopy(dict(template.get("HostConfig") or {}))
    mode = str(host.get("NetworkMode") or "default")
    config["Image"] = image
    if config.get("Hostname") in own_ids or mode == "host" or mode.startswith("container:"):
        config.pop("Hostname", None)
    if not keep_addresses:
        config.pop("MacAddress", None)
    lab = {k: v for k, v in (config.get("Labels") or {}).items() if k not in drop_labels}
    lab.update(set_labels)
    config["Labels"] = lab
    host.pop("ContainerIDFile", None)
    host["PortBindings"] = _ports(host.get("PortBindings") or {}, keep_ports)
    if host.get("Links"):
        host["Links"] = [_link(x) for x in host["Links"]]
    _carry(config, host, carried)
    first, rest = _networks(template, mode, keep_addresses, own_ids)
    body = {**config, "HostConfig": host}
    if first is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": {first[0]: first[1]}}
    return Blueprint(name=name, body=body, networks=rest)


def _ports(bindings: Mapping[str, Any], keep: Mapping[str, Any] | None) -> dict[str, Any]:
    """Port bindings; fixed host ports not also held by ``keep``'s become ephemeral."""
    out: dict[str, Any] = {}
    for port, binds in bindings.items():
        if keep is not None and keep.get(port) == binds:
            out[port] = binds
            continue
        out[port] = [{**b, "HostPort": ""} for b in (binds or [])] if binds else binds
    return out


def _link(raw: str) -> str:
    """Inspect's "/db:/proj_web_1/db" as the create API's "db:db"; others unchanged."""
    if ":" not in raw:
        return raw
    target, alias = raw.split(":", 1)
    return f"{target.lstrip('/')}:{alias.rsplit('/', 1)[-1]}"


def anonymous_volumes(c: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(volume name, destination) of a container's anonymous volumes (not bound by name)."""
    host = c.get("HostConfig") or {}
    declared = (c.get("Config") or {}).get("Volumes") or {}
    bound = _bound_destinations(host)
    return tuple(
        (str(m["Name"]), str(m["Destination"])) for m in (c.get("Mounts") or [])
        if m.get("Type") == "volume" and m.get("Name") and m.get("Destination") in declared
        and m.get("Destination") not in bound
    )


def _bound_destinations(host: Mapping[str, Any]) -> set[str]:
    dests = {str(b).split(":")[1] for b in (host.get("Binds") or []) if ":" in str(b)}
    dests.update(str(m.get("Target", "")) for m in (host.get("Mounts") or []))
    return dests


def _carry(config: Mapping[str, Any], host: dict[str, Any],
           carried: tuple[tuple[str, str], ...]) -> None:
    """Bind the old container's anonymous volumes where the new config still declares one."""
    declared = config.get("Volumes") or {}
    bound = _bound_destinations(host)
    extra = [f"{vol}:{dest}:rw" for vol, dest in carried if dest in declared and dest not in bound]
    if extra:
        host["Binds"] = [*(host.get("Binds") or []), *extra]


def _networks(
    template: Mapping[str, Any], mode: str, keep_addresses: bool, own_ids: tuple[str, ...]
) -> tuple[tuple[str, dict[str, Any]] | None, tuple[tuple[str, dict[str, Any]], ...]]:
    """The endpoint to create with (the network mode's) and the others to connect."""
    if mode in ("host", "none") or mode.startswith("container:"):
        return None, ()
    nets = (template.get("NetworkSettings") or {}).get("Networks") or {}
    user: list[tuple[str, dict[str, Any]]] = []
    first: tuple[str, dict[str, Any]] | None = None
    for net, ep in nets.items():
        if net in _SHARED_NETWORKS:
            continue  # the default bridge comes with the network mode and takes no aliases
        made = _endpoint(ep or {}, keep_addresses, own_ids)
        if net == mode or (ep or {}).get("NetworkID") == mode:
            first = (net, made)
        else:
            user.append((net, made))
    return first, tuple(sorted(user, key=lambda nu: nu[0]))


def _endpoint(ep: Mapping[str, Any], keep_addresses: bool,
              own_ids: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    aliases = [a for a in (ep.get("Aliases") or []) if a not in own_ids]
    if aliases:
        out["Aliases"] = aliases
    for key in ("Links", "DriverOpts"):
        if ep.get(key):
            out[key] = copy.deepcopy(ep[key])
    if keep_addresses and ep.get("IPAMConfig"):
        out["IPAMConfig"] = copy.deepcopy(ep["IPAMConfig"])
    return out
