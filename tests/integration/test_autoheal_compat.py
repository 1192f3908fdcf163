"""healthd run with docker-autoheal's environment and labels, on a real engine.

healthd is started as autoheal's README starts autoheal (AUTOHEAL_* variables, WEBHOOK_URL)
and the containers carry autoheal's labels; each is named for the outcome expected of it.
Every wait has a deadline; "left alone" is checked after healthd has run several sweeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compose import Project
from tests.engine import Containers, Engine, wait_for
from tests.integration.healthd_proc import Healthd
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.engine

# Unhealthy until restarted once (the marker in the writable layer survives a restart).
UNHEALTHY_ONCE = "if [ -e /ran ]; then touch /ok; fi; touch /ran; exec sleep 1000"
HEALTHCHECK = ("--health-cmd", "test -e /ok", "--health-interval", "1s", "--health-retries",
               "1", "--stop-timeout", "1")
LEFT_ALONE_SWEEPS = 4


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def start(engine: Engine, tmp_path: Path, healthds: list[Healthd], env: dict[str, str],
          cfg: dict[str, dict[str, Any]] | None = None) -> Healthd:
    h = Healthd(engine, tmp_path, cfg=cfg, env=env)
    healthds.append(h)
    return h.start()


def state(engine: Engine, name: str) -> dict[str, Any]:
    return dict(engine.client.api.inspect_container(name)["State"])


def unhealthy(containers: Containers, hint: str, *labels: str, command: str = UNHEALTHY_ONCE,
              opts: tuple[str, ...] = ()) -> str:
    label_opts = [o for label in labels for o in ("--label", label)]
    return containers.name_of(containers.run(hint, "sh", "-c", command,
                                             opts=(*HEALTHCHECK, *label_opts, *opts)))


def succeeded(h: Healthd, name: str, action: str = "restart") -> list[dict[str, Any]]:
    return [r for r in h.rows(name) if r["action"] == action and r["outcome"] == "succeeded"]


def test_default_label_mode_heals_only_containers_labelled_autoheal_true(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthds, {"AUTOHEAL_INTERVAL": "5"})
    unlabelled = unhealthy(containers, "should-not-restart-unlabelled")
    labelled = unhealthy(containers, "should-restart-autoheal-true", "autoheal=true")
    wait_for(lambda: succeeded(h, labelled), 30, what=f"a restart of {labelled}\n{h.log()}")
    held = wait_for(lambda: h.rows(unlabelled), 30, what=f"the held decision\n{h.log()}")
    assert held[0]["suppressed_by"].startswith("not-opted-in: ")
    h.wait_sweeps(LEFT_ALONE_SWEEPS)
    assert h.restarts(unlabelled) == []
    assert "AUTOHEAL_INTERVAL accepted and not needed" in h.log()


def test_label_all_heals_every_unhealthy_container(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthds, {"AUTOHEAL_CONTAINER_LABEL": "all"})
    names = [unhealthy(containers, "should-restart-unlabelled"),
             unhealthy(containers, "should-restart-labelled", "autoheal=true")]
    for name in names:
        wait_for(lambda n=name: succeeded(h, n), 30, what=f"a restart of {name}\n{h.log()}")
        wait_for(lambda n=name: state(engine, n)["Health"]["Status"] == "healthy", 30,
                 what=f"{name} healthy again")


def test_action_stop_ends_stopped_and_stays_stopped(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthds, {"AUTOHEAL_CONTAINER_LABEL": "all"})
    name = unhealthy(containers, "should-stop-and-stay-stopped", "autoheal.action=stop",
                     command="exec sleep 1000", opts=("--restart", "unless-stopped"))
    row = wait_for(lambda: succeeded(h, name, "stop"), 30, what=f"the stop\n{h.log()}")[0]
    assert row["rule"] == "unhealthy.critical.label_stop"
    assert "label autoheal.action=stop: quarantine" in row["explanation"]
    wait_for(lambda: not state(engine, name)["Running"], 15, what="stopped")
    h.wait_sweeps(LEFT_ALONE_SWEEPS)
    assert not state(engine, name)["Running"], h.log()
    assert h.restarts(name) == []
    assert len([r for r in h.rows(name) if r["action"] == "stop"
                and r["outcome"] != "skipped"]) == 1


def test_action_notify_touches_nothing_and_posts_autoheals_text_body(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path,
    receivers: list[Receiver],
) -> None:
    rx = Receiver().up()
    receivers.append(rx)
    h = start(engine, tmp_path, healthds, {"AUTOHEAL_CONTAINER_LABEL": "all",
                                           "WEBHOOK_URL": rx.url + "/hook"})
    name = unhealthy(containers, "should-notify-not-restart", "autoheal.action=notify",
                     command="exec sleep 1000")
    started = state(engine, name)["StartedAt"]
    got = rx.wait(1, timeout=30)[0]
    assert got.path == "/hook"
    assert list(got.body) == ["text"]
    assert f"[alert] alert {name}: rule unhealthy.critical.label_notify" in got.body["text"]
    h.wait_sweeps(LEFT_ALONE_SWEEPS)
    assert state(engine, name)["StartedAt"] == started and state(engine, name)["Running"]
    assert h.restarts(name) == []


def test_webhook_json_key_names_the_key_of_the_body(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path,
    receivers: list[Receiver],
) -> None:
    rx = Receiver().up()
    receivers.append(rx)
    h = start(engine, tmp_path, healthds, {"AUTOHEAL_CONTAINER_LABEL": "all",
                                           "WEBHOOK_URL": rx.url, "WEBHOOK_JSON_KEY": "content"})
    name = unhealthy(containers, "should-restart-and-post-content")
    got = rx.wait(1, timeout=30)[0]
    assert list(got.body) == ["content"]
    assert f"[action] restart {name}: rule unhealthy.critical" in got.body["content"]
    assert succeeded(h, name)


def test_threshold_needs_n_consecutive_failed_checks(
    engine: Engine, containers: Containers, healthds: list[Healthd], tmp_path: Path
) -> None:
    h = start(engine, tmp_path, healthds, {"AUTOHEAL_CONTAINER_LABEL": "all",
                                           "AUTOHEAL_UNHEALTHY_THRESHOLD": "4"})
    name = unhealthy(containers, "should-restart-after-four-failures")
    row = wait_for(lambda: succeeded(h, name), 40, what=f"a restart\n{h.log()}")[0]
    streak = int(re.search(r"healthcheck failing (\d+) times", row["explanation"])[1])  # type: ignore[index]
    assert streak >= 4
    held = [r for r in h.rows(name) if (r["suppressed_by"] or "").startswith("threshold:")]
    assert held and held[0]["at"] < row["at"]
    assert re.match(r"threshold: [123] of 4 consecutive failed health checks",
                    held[0]["suppressed_by"])


def _service(command: str) -> str:
    return f"""
    image: IMAGE
    network_mode: none
    command: ["sh", "-c", "{command}"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-e", "/ok"]
      interval: 1s
      retries: 1
"""


def _compose(app_command: str) -> str:
    return (f'version: "2.4"\nservices:\n  web:{_service("touch /ok; exec sleep 1000")}'
            f"  app:{_service(app_command)}")


def test_compose_redeploy_of_a_project_holds_its_unhealthy_container(
    engine: Engine, healthds: list[Healthd], tmp_path: Path
) -> None:
    p = Project(engine, tmp_path, _compose("touch /ok; exec sleep 1000"), hint="redeploy")
    h: Healthd | None = None
    try:
        window = 8.0
        h = start(engine, tmp_path, healthds, {"AUTOHEAL_CONTAINER_LABEL": "all"},
                  {"guards": {"redeploy_window_s": window}})
        p.up()
        app = p.container("app")
        wait_for(lambda: state(engine, app).get("Health", {}).get("Status") == "healthy", 30,
                 what="app healthy")
        # A new version whose app is unhealthy, deployed the way an updater does it.
        p.file.write_text(_compose("exec sleep 1000").replace("IMAGE", engine.image))
        p.up("--force-recreate")
        held = wait_for(lambda: [r for r in h.rows(app)
                                 if (r["suppressed_by"] or "").startswith("redeploy:")], 30,
                        what=f"the redeploy hold\n{state(engine, app)}\n{h.rows()}\n"
                        f"{h.log()}")[0]
        assert re.match(rf"redeploy: {p.name} is being redeployed \(\d containers? recreated "
                        r"in the last \d+ s", held["suppressed_by"]), held["suppressed_by"]
        assert h.restarts(app) == [], "no restart while the project is being redeployed"
        # Once the redeploy is over, the broken container is healed as usual.
        restart = wait_for(lambda: [r for r in h.restarts(app) if r["outcome"] == "succeeded"],
                           30, what=f"restart after\n{h.log()}")[0]
        assert restart["at"] >= held["at"]
    finally:
        # healthd first: one still watching would restart the unhealthy app between
        # `down`'s stop and its remove, and leave it behind for the next module's healthd.
        if h is not None:
            h.kill()
        p.down()
