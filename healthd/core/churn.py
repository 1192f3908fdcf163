"""Whether something else is changing containers right now (pure).

Owns: the hold while a Compose project or a Swarm service is being redeployed by someone
other than healthd (an updater such as Watchtower, ``docker-compose up``, a stack deploy,
a rolling update), read from the create/destroy events of the last ``window_s``; and the
hold on containers that docker-volume-backup stops while a backup runs. Restarting a
container that another tool is replacing only starts a fight: both hold until it is over.
Must never: read the clock or the engine; the daemon hands in the recent events as values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from healthd.core import labels
from healthd.core.model import ContainerState

SCOPES = ("project", "all", "off")
BACKUP_IMAGE = "docker-volume-backup"  # offen/docker-volume-backup and its mirrors


@dataclass(frozen=True)
class Churn:
    """One create or destroy of a container that belongs to a project or a service.

    group: the Compose project, or ``swarm/<service>``; verb: "create", "destroy" or (for a
    Swarm task) "die".
    """

    at: float
    group: str
    verb: str


def group_of(container_labels: Iterable[tuple[str, str]]) -> str | None:
    """The redeployable unit a container belongs to: its Compose project, its Swarm
    service (``swarm/<name>``), or None for a lone container."""
    d = dict(container_labels)
    if labels.SWARM_SERVICE in d:
        return f"swarm/{d[labels.SWARM_SERVICE]}"
    return d.get(labels.COMPOSE_PROJECT) or None


def recreated(events: Sequence[Churn], group: str, now: float, window_s: float) -> int:
    """Containers of ``group`` replaced within ``window_s`` before ``now``.

    Compose and updaters replace a container by a destroy and a create: the pairs count
    (a first ``up`` only creates). Swarm keeps an old task's container after it stopped, so
    for a service a task that died (or was removed) and one created make a pair.
    """
    mine = [e for e in events if e.group == group and 0 <= now - e.at < window_s]
    creates = sum(1 for e in mine if e.verb == "create")
    gone = ("destroy", "die") if group.startswith("swarm/") else ("destroy",)
    return min(creates, sum(1 for e in mine if e.verb in gone))


def redeploy_hold(events: Sequence[Churn], group: str | None, now: float, window_s: float,
                  scope: str) -> str | None:
    """``"redeploy: <group> is being redeployed (3 containers recreated in the last 40 s)"``
    when a container of ``group`` must be left alone, else None.

    scope: "project" holds the group being redeployed only; "all" holds every container
    while any group is; "off" never holds. window_s: seconds an event keeps the hold.
    """
    if scope == "off" or window_s <= 0:
        return None
    everyone = sorted({e.group for e in events})
    for g in everyone if scope == "all" else [group] if group else []:
        n = recreated(events, g, now, window_s)
        if not n:
            continue
        ages = [now - e.at for e in events if e.group == g and 0 <= now - e.at < window_s]
        swarm = g.startswith("swarm/")
        what = ("task" if swarm else "container") + ("s" if n > 1 else "")
        done = "replaced" if swarm else "recreated"
        return (f"redeploy: {g.removeprefix('swarm/')} is being redeployed ({n} {what} "
                f"{done} in the last {max(max(ages), 1.0):.0f} s; held "
                f"{window_s - min(ages):.0f} s more)")
    return None


def backup_running(states: Iterable[ContainerState]) -> bool:
    """True while docker-volume-backup is backing up: its container runs and at least one
    container it stops during backups is stopped."""
    runner, stopped = False, False
    for c in states:
        if BACKUP_IMAGE in c.image and c.running:
            runner = True
        elif not c.running and any(k == labels.VOLUME_BACKUP_STOP for k, _ in c.labels):
            stopped = True
    return runner and stopped
