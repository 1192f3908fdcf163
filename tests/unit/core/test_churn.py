"""healthd.core.churn: who else is changing containers, from recent events (values only)."""

from __future__ import annotations

from healthd.core import churn
from healthd.core.churn import Churn
from healthd.core.model import ContainerState

NOW = 1_700_000_000.0


def test_group_is_the_compose_project_or_the_swarm_service() -> None:
    assert churn.group_of((("com.docker.compose.project", "shop"),)) == "shop"
    assert churn.group_of((("com.docker.swarm.service.name", "web"),
                           ("com.docker.compose.project", "x"))) == "swarm/web"
    assert churn.group_of((("other", "x"),)) is None


def test_compose_counts_destroy_and_create_pairs() -> None:
    events = [Churn(NOW - 5, "shop", "create"), Churn(NOW - 4, "shop", "create"),
              Churn(NOW - 3, "shop", "destroy")]
    assert churn.recreated(events, "shop", NOW, 60.0) == 1


def test_a_fresh_up_creates_only_and_is_no_redeploy() -> None:
    events = [Churn(NOW - 5, "shop", "create"), Churn(NOW - 4, "shop", "create")]
    assert churn.redeploy_hold(events, "shop", NOW, 60.0, "project") is None


def test_swarm_counts_a_task_that_died_and_one_created_as_replaced() -> None:
    events = [Churn(NOW - 6, "swarm/web", "die"), Churn(NOW - 5, "swarm/web", "create")]
    assert churn.redeploy_hold(events, "swarm/web", NOW, 60.0, "project") == (
        "redeploy: web is being redeployed (1 task replaced in the last 6 s; held 55 s more)")
    assert churn.redeploy_hold(events[1:], "swarm/web", NOW, 60.0, "project") is None


def test_events_outside_the_window_do_not_count() -> None:
    events = [Churn(NOW - 70, "shop", "create"), Churn(NOW - 65, "shop", "destroy")]
    assert churn.redeploy_hold(events, "shop", NOW, 60.0, "project") is None


def test_a_lone_container_is_held_only_with_scope_all() -> None:
    events = [Churn(NOW - 5, "shop", "create"), Churn(NOW - 4, "shop", "destroy")]
    assert churn.redeploy_hold(events, None, NOW, 60.0, "project") is None
    assert churn.redeploy_hold(events, None, NOW, 60.0, "all") is not None
    assert churn.redeploy_hold(events, "shop", NOW, 60.0, "off") is None


def _c(name: str, status: str, image: str = "busybox",
       labels: tuple[tuple[str, str], ...] = ()) -> ContainerState:
    return ContainerState(id=name, name=name, status=status, image=image, labels=labels)


def test_backup_runs_while_its_container_runs_and_stopped_one_of_its_containers() -> None:
    runner = _c("backup", "running", "offen/docker-volume-backup:v2")
    label = (("docker-volume-backup.stop-during-backup", "true"),)
    assert churn.backup_running([runner, _c("db", "exited", labels=label)])
    assert not churn.backup_running([runner, _c("db", "running", labels=label)])
    assert not churn.backup_running([_c("db", "exited", labels=label)])
