"""[daemon] keys of the HTTP door: token, token_file, metrics_public, tls_cert, tls_key."""

from __future__ import annotations

import pytest

from healthd.core.config import ConfigError, build

TOKEN = "s3cret-token-0123456789"


def test_defaults_leave_the_door_without_token_or_tls() -> None:
    d = build().daemon
    assert (d.token, d.token_file, d.metrics_public, d.tls_cert, d.tls_key) == (
        "", "", True, "", "")


def test_token_from_the_environment() -> None:
    d = build(environ={"HEALTHD_TOKEN": TOKEN, "HEALTHD_METRICS_PUBLIC": "false"}).daemon
    assert d.token == TOKEN and d.metrics_public is False


@pytest.mark.parametrize(("daemon", "problem"), [
    ({"token": TOKEN, "token_file": "/run/secrets/t"}, "daemon.token/token_file"),
    ({"token": "short"}, "daemon.token: shorter than 16"),
    ({"tls_cert": "/c.pem"}, "daemon.tls_cert/tls_key"),
    ({"tls_key": "/k.pem"}, "daemon.tls_cert/tls_key"),
], ids=["both-sources", "short-token", "cert-only", "key-only"])
def test_bad_door_settings_are_config_errors(daemon: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        build({"daemon": daemon})
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems
    assert "short'" not in str(err.value) and TOKEN not in str(err.value)


def test_the_token_is_not_in_the_config_repr() -> None:
    assert TOKEN not in repr(build(environ={"HEALTHD_TOKEN": TOKEN}))
