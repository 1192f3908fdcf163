"""healthd.core.stack: root cause first, dependents after, along timelines of values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from healthd.core import labels
from healthd.core.model import (
    Action,
    Classification,
    ContainerState,
    Decision,
    Failure,
    Health,
)
from healthd.core.stack import (
    Member,
    ServiceHealth,
    drift,
    followed_restart,
    inhibit,
    service_health,
    with_scale_up,
)
from healthd.core.topology import Topology

T0 = 1_800_000_000.0
SETTLE = 30.0


@dataclass(frozen=True)
class Chain:
    """A static web -> api -> db topology (a value, as the real Topology is)."""

    services: dict[str, str] = field(default_factory=lambda: {
        "web-1": "shop/web", "api-1": "shop/api", "db-1": "shop/db"})
    deps: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = field(default_factory=lambda: {
        "shop/web": (("shop/api", ("shop/api",)), ("shop/db", ("shop/api", "shop/db"))),
        "shop/api": (("shop/db", ("shop/db",)),),
        "shop/db": ()})
    follows: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"shop/api": ("shop/db",)})
    drifted_ids: frozenset[str] = frozenset({"api-2"})

    def service_of(self, container_id: str) -> str | None:
        return self.services.get(container_id)

    def upstreams(self, service: str) -> Sequence[tuple[str, tuple[str, ...]]]:
        return self.deps.get(service, ())

    def restart_with(self, service: str) -> Sequence[str]:
        return self.follows.get(service, ())

    def drifted(self, container_id: str) -> bool:
        return container_id in self.drifted_ids


TOPO = Chain()


def state(cid: str, **kw: object) -> ContainerState:
    return ContainerState(id=cid, name=cid, **kw)  # type: ignore[arg-type]


def restart(cid: str) -> Decision:
    return Decision(Action.RESTART, cid, cid, "unhealthy.critical", Failure.UNHEALTHY,
                    Health.CRITICAL, ("healthcheck failing 3 times in a row",), at=T0)


def sh(service: str, failing: bool, since: float, started_at: float = T0 - 3600,
       by: str = "") -> ServiceHealth:
    return ServiceHealth(service, failing, since, "db-1 unhealthy" if failing else "",
                         started_at, by)


def test_a_dependent_of_a_failing_upstream_is_held_with_the_chain() -> None:
    health = {"shop/db": sh("shop/db", True, T0 - 12)}
    d = inhibit(restart("web-1"), state("web-1"), TOPO, health, T0, SETTLE)
    assert d.failure is Failure.DEPENDENCY_FAILURE
    assert d.rule == "dependency_failure.critical"
    assert d.suppressed_by is not None and d.suppressed_by.startswith("dependency:")
    assert "depends on shop/db" in d.suppressed_by
    assert "chain shop/web -> shop/api -> shop/db" in d.evidence
    assert not d.acts


def test_the_nearest_failing_upstream_is_named() -> None:
    health = {"shop/api": sh("shop/api", True, T0 - 5), "shop/db": sh("shop/db", True, T0 - 9)}
    d = inhibit(restart("web-1"), state("web-1"), TOPO, health, T0, SETTLE)
    assert d.suppressed_by is not None and "depends on shop/api" in d.suppressed_by


def test_the_root_cause_itself_is_not_held() -> None:
    health = {"shop/db": sh("shop/db", True, T0 - 12)}
    d = inhibit(restart("db-1"), state("db-1"), TOPO, health, T0, SETTLE)
    assert d == restart("db-1")


@pytest.mark.parametrize(("healthy_for", "held"), [(0.0, True), (29.0, True), (30.0, False),
                                                   (300.0, False)],
                         ids=["just-recovered", "settling", "settled", "long-healthy"])
def test_a_dependent_waits_for_its_upstream_to_settle(healthy_for: float, held: bool) -> None:
    health = {"shop/db": sh("shop/db", False, T0 - healthy_for)}
    d = inhibit(restart("api-1"), state("api-1"), TOPO, health, T0, SETTLE)
    assert (d.suppressed_by is not None) is held
    if held:
        assert d.suppressed_by is not None and "to settle" in d.suppressed_by


def test_a_container_outside_any_stack_is_untouched() -> None:
    d = inhibit(restart("lonely"), state("lonely"), TOPO, {}, T0, SETTLE)
    assert d == restart("lonely")


def test_a_follower_restarts_after_its_upstream_restarted_and_settled() -> None:
    api = state("api-1", started_at=T0 - 600)
    health = {"shop/db": sh("shop/db", False, T0 - 40, started_at=T0 - 60, by="healthd")}
    cls = followed_restart(api, TOPO, health, T0, SETTLE, watch_since=T0 - 900)
    assert cls is not None and cls.failure is Failure.DEPENDENCY_RESTARTED
    assert "shop/db restarted by healthd" in cls.evidence[0]


@pytest.mark.parametrize(("db", "api_started", "watch_since"), [
    (sh("shop/db", True, T0 - 40, started_at=T0 - 60), T0 - 600, T0 - 900),
    (sh("shop/db", False, T0 - 10, started_at=T0 - 60), T0 - 600, T0 - 900),
    (sh("shop/db", False, T0 - 40, started_at=T0 - 60), T0 - 50, T0 - 900),
    (sh("shop/db", False, T0 - 40, started_at=T0 - 60), T0 - 600, T0 - 30),
], ids=["upstream-still-failing", "upstream-settling", "already-followed", "before-watch"])
def test_a_follower_is_left_alone(db: ServiceHealth, api_started: float,
                                  watch_since: float) -> None:
    api = state("api-1", started_at=api_started)
    assert followed_restart(api, TOPO, {"shop/db": db}, T0, SETTLE, watch_since) is None


def test_a_service_without_restart_with_never_follows() -> None:
    web = state("web-1", started_at=T0 - 600)
    health = {"shop/api": sh("shop/api", False, T0 - 40, started_at=T0 - 60)}
    assert followed_restart(web, TOPO, health, T0, SETTLE, T0 - 900) is None


def test_service_health_is_failing_while_any_member_is_down_or_acted_on() -> None:
    ok = Member(state("db-1", health="healthy"), None)
    down = Member(state("db-2", health="unhealthy"), Failure.UNHEALTHY)
    busy = Member(state("db-3"), None, in_flight=True)
    assert not service_health("shop/db", [ok], None, T0).failing
    assert service_health("shop/db", [ok, down], None, T0).failing
    assert service_health("shop/db", [ok, busy], None, T0).failing


def test_pressure_does_not_make_a_service_down() -> None:
    hot = Member(state("db-1"), Failure.RESOURCE_PRESSURE)
    assert not service_health("shop/db", [hot], None, T0).failing


def test_service_health_since_moves_only_when_failing_flips() -> None:
    down = [Member(state("db-1", health="unhealthy"), Failure.UNHEALTHY)]
    up = [Member(state("db-1", health="healthy", started_at=T0 + 5), None,
                 started_by_healthd=True)]
    h1 = service_health("shop/db", down, None, T0)
    h2 = service_health("shop/db", down, h1, T0 + 10)
    h3 = service_health("shop/db", up, h2, T0 + 20)
    h4 = service_health("shop/db", up, h3, T0 + 50)
    assert (h1.since, h2.since, h3.since, h4.since) == (T0, T0, T0 + 20, T0 + 20)
    assert h4.restarted_by == "healthd" and h4.started_at == T0 + 5


def test_a_starting_member_keeps_the_service_unsettled() -> None:
    starting = [Member(state("db-1", health="starting"), None)]
    assert service_health("shop/db", starting, None, T0).failing


UNHEALTHY = Classification(Failure.UNHEALTHY, Health.CRITICAL, ("healthcheck failing",))


def test_a_failing_drifted_replica_is_config_drift_with_its_evidence() -> None:
    cls = drift(state("api-2"), UNHEALTHY, TOPO, {})
    assert cls is not None and cls.failure is Failure.CONFIG_DRIFT
    assert cls.evidence[0] == "healthcheck failing"
    assert "config hash differs" in cls.evidence[1]


@pytest.mark.parametrize(("cid", "cls"), [
    ("api-1", UNHEALTHY),
    ("api-2", None),
    ("api-2", Classification(Failure.RESOURCE_PRESSURE, Health.CRITICAL)),
], ids=["not-drifted", "drifted-but-fine", "drifted-under-pressure"])
def test_drift_only_matters_for_a_failing_drifted_replica(
        cid: str, cls: Classification | None) -> None:
    assert drift(state(cid), cls, TOPO, {}) is cls


def test_a_failing_container_whose_tag_names_a_newer_image_has_drifted() -> None:
    c = state("lonely", image="app:1", image_id="sha256:old")
    cls = drift(c, UNHEALTHY, TOPO, {"app:1": "sha256:new"})
    assert cls is not None and cls.failure is Failure.CONFIG_DRIFT
    assert "image tag app:1 now names another local image" in cls.evidence[-1]
    assert drift(c, UNHEALTHY, TOPO, {"app:1": "sha256:old"}) is UNHEALTHY
    assert drift(c, UNHEALTHY, TOPO, {}) is UNHEALTHY  # the tag is gone: nothing to say


def test_the_ladders_scale_up_copies_a_healthy_replica_and_takes_the_next_number() -> None:
    def replica(cid: str, n: int, health: str) -> ContainerState:
        return state(cid, status="running", health=health,
                     labels=((labels.COMPOSE_NUMBER, str(n)),))
    sick, well = replica("a", 1, "unhealthy"), replica("b", 2, "healthy")
    topo = Topology(service_by_id={"a": "shop/api", "b": "shop/api"},
                    members_by_service={"shop/api": ("a", "b")})
    d = Decision(Action.SCALE_UP, "a", "a", "oom_killed.critical", Failure.OOM_KILLED,
                 Health.CRITICAL, at=T0, rung=2)
    up = with_scale_up(d, sick, topo, [sick, well, state("other")])
    assert (up.service, up.replicas, up.number, up.source_id) == ("shop/api", 3, 3, "b")
    assert (up.target_id, up.target_name) == ("a", "a")  # still a step of a's incident
