"""healthd.serve.access: which requests need the token, and the token's sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthd.serve.access import Policy, TokenError, is_loopback, read_token

TOKEN = "s3cret-token-0123456789"
AUTH = f"Bearer {TOKEN}"

# (policy, method, path, Authorization header, expected refusal)
CASES = [
    ("loopback-get-status-open", Policy(), "GET", "/status", None, None),
    ("loopback-get-metrics-open", Policy(), "GET", "/metrics", None, None),
    ("loopback-post-without-any-token-configured", Policy(), "POST", "/anything", None,
     "unconfigured"),
    ("loopback-post-needs-token", Policy(token=TOKEN), "POST", "/x", None, "missing"),
    ("loopback-post-wrong-token", Policy(token=TOKEN), "POST", "/x", "Bearer nope", "wrong"),
    ("loopback-post-right-token", Policy(token=TOKEN), "POST", "/x", AUTH, None),
    ("loopback-delete-needs-token", Policy(token=TOKEN), "DELETE", "/x", None, "missing"),
    ("loopback-put-needs-token", Policy(token=TOKEN), "PUT", "/x", None, "missing"),
    ("loopback-patch-needs-token", Policy(token=TOKEN), "PATCH", "/x", None, "missing"),
    ("exposed-healthz-open", Policy(token=TOKEN, exposed=True), "GET", "/healthz", None, None),
    ("exposed-metrics-public", Policy(token=TOKEN, exposed=True), "GET", "/metrics", None,
     None),
    ("exposed-metrics-private", Policy(token=TOKEN, exposed=True, metrics_public=False), "GET",
     "/metrics", None, "missing"),
    ("exposed-status-needs-token", Policy(token=TOKEN, exposed=True), "GET", "/status", None,
     "missing"),
    ("exposed-unknown-path-needs-token", Policy(token=TOKEN, exposed=True), "GET", "/nope",
     None, "missing"),
    ("exposed-status-right-token", Policy(token=TOKEN, exposed=True), "GET", "/status", AUTH,
     None),
    ("exposed-status-lowercase-scheme", Policy(token=TOKEN, exposed=True), "GET", "/status",
     f"bearer {TOKEN}", None),
    ("exposed-status-basic-auth-is-missing", Policy(token=TOKEN, exposed=True), "GET",
     "/status", "Basic dXNlcjpwYXNz", "missing"),
    ("exposed-status-empty-bearer", Policy(token=TOKEN, exposed=True), "GET", "/status",
     "Bearer ", "missing"),
    ("exposed-status-prefix-of-token", Policy(token=TOKEN, exposed=True), "GET", "/status",
     f"Bearer {TOKEN[:-1]}", "wrong"),
    ("exposed-status-token-plus-one", Policy(token=TOKEN, exposed=True), "GET", "/status",
     f"Bearer {TOKEN}x", "wrong"),
    ("exposed-without-token-status-closed", Policy(exposed=True), "GET", "/status", None,
     "unconfigured"),
    ("exposed-without-token-healthz-open", Policy(exposed=True), "GET", "/healthz", None,
     None),
]


@pytest.mark.parametrize(("policy", "method", "path", "auth", "want"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_policy_refuses_exactly_what_it_should(policy: Policy, method: str, path: str,
                                               auth: str | None, want: str | None) -> None:
    assert policy.refuse(method, path, auth) == want


def test_policy_repr_does_not_show_the_token() -> None:
    assert TOKEN not in repr(Policy(token=TOKEN, exposed=True))


@pytest.mark.parametrize(("host", "want"), [
    ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("10.0.0.5", False),
    ("192.168.1.2", False), ("myhost.example", False),
], ids=lambda v: repr(v) if isinstance(v, str) else None)
def test_is_loopback(host: str, want: bool) -> None:
    assert is_loopback(host) is want


def test_read_token_prefers_the_token_and_reads_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "healthd_token"
    secret.write_text(f"  {TOKEN}\n")
    assert read_token("", str(secret)) == TOKEN
    assert read_token(TOKEN, "") == TOKEN
    assert read_token("", "") is None


def test_read_token_takes_the_first_line(tmp_path: Path) -> None:
    secret = tmp_path / "t"
    secret.write_text(f"{TOKEN}\nsecond line\n")
    assert read_token("", str(secret)) == TOKEN


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"), ("", "is empty"), ("\n \n", "is empty"), ("short\n", "shorter than"),
], ids=["missing", "empty", "blank", "short"])
def test_read_token_file_problems_never_quote_the_token(tmp_path: Path, content: str | None,
                                                        message: str) -> None:
    secret = tmp_path / "t"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(TokenError) as err:
        read_token("", str(secret))
    assert message in str(err.value) and "daemon.token_file" in str(err.value)
    assert "short\n" not in str(err.value) and "'short'" not in str(err.value)


def test_peers_report_always_needs_the_token() -> None:
    local = Policy(token="t" * 16, exposed=False)
    assert local.refuse("GET", "/swarm/report", None) == "missing"
    assert local.refuse("GET", "/swarm/report", "Bearer " + "t" * 16) is None
    assert Policy(exposed=False).refuse("GET", "/swarm/report", None) == "unconfigured"
    assert local.refuse("GET", "/status", None) is None
