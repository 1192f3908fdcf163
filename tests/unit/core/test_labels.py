"""healthd.labels: container labels in, a LabelPolicy (with its problems) out."""

from __future__ import annotations

import pytest

from healthd.core import labels
from healthd.core.labels import LabelPolicy, parse


def test_no_labels_is_no_opinion() -> None:
    assert parse({}) == LabelPolicy()


def test_accepts_label_pairs_as_a_tuple() -> None:
    assert parse((("healthd.enable", "true"), ("healthd.grace", "5"))).grace_s == 5.0


BOOLS = [("true", True), ("TRUE", True), (" yes ", True), ("1", True), ("on", True),
         ("false", False), ("False", False), ("no", False), ("0", False), ("off", False)]


@pytest.mark.parametrize("key", [labels.ENABLE, labels.AUTOHEAL], ids=["healthd", "autoheal"])
@pytest.mark.parametrize(("raw", "want"), BOOLS, ids=[f"{r.strip()}" for r, _ in BOOLS])
def test_enable_labels(key: str, raw: str, want: bool) -> None:
    p = parse({key: raw})
    assert p.enable is want
    assert p.problems == ()


PRECEDENCE = [
    ("healthd-false-beats-autoheal-true", {"autoheal": "true", "healthd.enable": "false"}, False),
    ("healthd-true-beats-autoheal-false", {"autoheal": "false", "healthd.enable": "true"}, True),
    ("bad-healthd-falls-back-to-autoheal", {"autoheal": "false", "healthd.enable": "maybe"},
     False),
]


@pytest.mark.parametrize(("lab", "want"), [(lab, w) for _, lab, w in PRECEDENCE],
                         ids=[i for i, _, _ in PRECEDENCE])
def test_healthd_enable_wins_over_autoheal(lab: dict[str, str], want: bool) -> None:
    assert parse(lab).enable is want


def test_stop_timeout_from_either_label_healthd_wins() -> None:
    assert parse({"autoheal.stop.timeout": "20"}).stop_timeout_s == 20
    assert parse({"healthd.stop.timeout": "30"}).stop_timeout_s == 30
    both = parse({"autoheal.stop.timeout": "20", "healthd.stop.timeout": "30"})
    assert both.stop_timeout_s == 30


def test_stop_timeout_is_whole_seconds() -> None:
    assert parse({"healthd.stop.timeout": "12.7s"}).stop_timeout_s == 12


def test_bad_healthd_stop_timeout_keeps_autoheal_value() -> None:
    p = parse({"autoheal.stop.timeout": "20", "healthd.stop.timeout": "later"})
    assert p.stop_timeout_s == 20
    assert len(p.problems) == 1 and "healthd.stop.timeout='later'" in p.problems[0]


GRACE = [("45", 45.0), ("45s", 45.0), ("0", 0.0), ("2.5", 2.5)]


@pytest.mark.parametrize(("raw", "want"), GRACE, ids=[r for r, _ in GRACE])
def test_grace_seconds(raw: str, want: float) -> None:
    p = parse({labels.GRACE: raw})
    assert (p.grace_s, p.problems) == (want, ())


BAD = [
    ("enable-word", labels.ENABLE, "maybe", "enable"),
    ("autoheal-word", labels.AUTOHEAL, "sometimes", "enable"),
    ("grace-negative", labels.GRACE, "-5", "grace_s"),
    ("grace-nan", labels.GRACE, "nan", "grace_s"),
    ("grace-word", labels.GRACE, "soon", "grace_s"),
    ("grace-empty", labels.GRACE, "", "grace_s"),
    ("stop-negative", labels.STOP_TIMEOUT, "-1", "stop_timeout_s"),
    ("autoheal-stop-word", labels.AUTOHEAL_STOP_TIMEOUT, "x", "stop_timeout_s"),
]


@pytest.mark.parametrize(("key", "raw", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_value_is_reported_and_ignored(key: str, raw: str, field: str) -> None:
    p = parse({key: raw, "other": "x"})
    assert getattr(p, field) is None
    assert len(p.problems) == 1
    assert p.problems[0].startswith(f"label {key}={raw!r} ignored")


def test_every_bad_label_is_reported() -> None:
    p = parse({labels.ENABLE: "?", labels.GRACE: "?", labels.STOP_TIMEOUT: "?"})
    assert len(p.problems) == 3
    assert all(any(k in msg for msg in p.problems)
               for k in (labels.ENABLE, labels.GRACE, labels.STOP_TIMEOUT))


def test_infinite_stop_timeout_is_reported_not_raised() -> None:
    p = parse({labels.STOP_TIMEOUT: "inf"})
    assert p.stop_timeout_s is None
    assert len(p.problems) == 1


SERVICE = [
    ("compose", {labels.COMPOSE_PROJECT: "shop", labels.COMPOSE_SERVICE: "api"}, "shop/api"),
    ("compose-no-project", {labels.COMPOSE_SERVICE: "api"}, "/api"),
    ("swarm", {labels.SWARM_SERVICE: "web"}, "web"),
    ("swarm-wins-over-compose", {labels.SWARM_SERVICE: "web", labels.COMPOSE_PROJECT: "shop",
                                 labels.COMPOSE_SERVICE: "api"}, "web"),
    ("none", {labels.COMPOSE_PROJECT: "shop"}, None),
]


@pytest.mark.parametrize(("lab", "want"), [(lab, w) for _, lab, w in SERVICE],
                         ids=[i for i, _, _ in SERVICE])
def test_service_from_compose_and_swarm(lab: dict[str, str], want: str | None) -> None:
    assert parse(lab).service == want


def test_swarm_task_label() -> None:
    assert parse({labels.SWARM_TASK: "abc"}).swarm_task is True
    assert parse({labels.SWARM_SERVICE: "web"}).swarm_task is False


def test_autoheal_compat_labels_parse() -> None:
    p = labels.parse({"autoheal.action": "Stop", "autoheal.notify": "false",
                      "healthd.unhealthy.threshold": "4",
                      "docker-volume-backup.stop-during-backup": "nightly"})
    assert (p.action, p.action_label, p.notify, p.unhealthy_threshold, p.volume_backup) == (
        "stop", "autoheal.action", False, 4, True)
    assert p.problems == ()


def test_bad_autoheal_compat_labels_are_problems() -> None:
    p = labels.parse({"healthd.action": "reboot", "healthd.notify": "sometimes",
                      "healthd.unhealthy.threshold": "0"})
    assert (p.action, p.notify, p.unhealthy_threshold) == (None, None, None)
    assert len(p.problems) == 3
    assert "expected one of restart, stop, notify, none" in p.problems[0]


def test_a_superscript_digit_threshold_is_refused_not_a_crash() -> None:
    # str.isdigit() says yes to '²'; int() says no.
    policy = labels.parse({"healthd.unhealthy.threshold": "²"})
    assert policy.unhealthy_threshold is None
    assert any("healthd.unhealthy.threshold" in p for p in policy.problems)
