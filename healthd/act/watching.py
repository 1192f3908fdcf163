"""What the verifier watches besides containers: services and nodes, as last seen.

Owns: turning the Swarm listing, this host's task containers, the scalers' latest
recommendations and the nodes' host reports into observations of the services (a
rollback's, a task replacement's, a scale step's) and nodes (a drain's, an activation's)
a verification window watches, and telling the verifier of services that are gone.
Containers are observed by the main loop itself, as it judges them.
Must never: judge (``core.verdict``) or decide anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from healthd.act.verify import Verifier
from healthd.cluster import Cluster
from healthd.core import labels
from healthd.core.model import ContainerState, Failure
from healthd.observe.memory import Tracked
from healthd.observe.stacks import Stacks


def _target(key: str) -> ContainerState:
    """A service or node as a verification target: it runs; its failure says the rest."""
    return ContainerState(id=key, name=key, status="running")


def observe_scaled(v: Verifier, cluster: Cluster, stacks: Stacks, now: float) -> None:
    """The services (Compose, and Swarm by its last listing) whose scale step ``v``
    watches: still asking for more replicas than they have is pressure not relieved."""
    asking, gone = cluster.asking_more(v.scaled_watched(swarm=True))
    for key, more in asking.items():
        v.observe(_target(key), Failure.SUSTAINED_PRESSURE if more else None, now)
    for key in gone:
        v.gone(key, now)
    keys = v.scaled_watched()
    if not keys:
        return
    services = set(stacks.topology.services())
    for key in keys:
        asked = stacks.asked.get(key)
        if key not in services:
            v.gone(key, now)
        elif asked is not None:
            more = asked.desired > asked.current
            v.observe(_target(key), Failure.SUSTAINED_PRESSURE if more else None, now)


def observe_swarm(v: Verifier, cluster: Cluster, items: Iterable[Tracked], now: float) -> None:
    """The Swarm services a rollback's or a task replacement's window watches, as the
    last listing shows them and as their tasks on this host fare."""
    ids = v.services_watched()
    if not ids:
        return
    # A Swarm service's key -> the failure of one of its running tasks here. A dead task's
    # container is history Swarm keeps (it has started another), not the service's state.
    failing = {}
    for t in items:
        if t.failure is None or not t.state.running:
            continue
        policy = labels.parse(t.state.labels)
        if policy.swarm_task and policy.service:
            failing[f"swarm/{policy.service}"] = t.failure
    seen, gone = cluster.service_states(ids, failing)
    for state, failure in seen:
        v.observe(state, failure, now)
    for sid in gone:
        v.gone(sid, now)


def observe_nodes(v: Verifier, cluster: Cluster, now: float) -> None:
    """The Swarm nodes a drain's or an activation's window watches, as their healthds
    last reported their hosts: exhausted is the problem (still, or again). A node whose
    healthd did not answer is not observed (a gap, not a verdict)."""
    for nid in v.nodes_watched():
        rep = cluster.hosts.get(nid)
        if rep is not None:
            v.observe(_target(nid), Failure.RESOURCE_PRESSURE if rep.exhausted else None, now)
