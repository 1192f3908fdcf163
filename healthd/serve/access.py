"""Who may call what on the HTTP endpoint: the bearer token and where it is required.

Owns: the rule for which requests need the token (every method that can change something,
always; beyond loopback also every path except /healthz and, when ``metrics_public``,
/metrics), the constant-time comparison, and reading the token from the config or from a
secret file. Must never: log, echo or store a token anywhere but in the Policy, nor serve
HTTP (``serve.server`` does, asking ``Policy.refuse`` first).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

# Methods that may change something. None is routed yet besides future POST routes, but
# whatever gets added under them is guarded from the first line.
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALWAYS_OPEN = "/healthz"  # orchestrators and load balancers probe it without credentials
METRICS = "/metrics"
PEERS = "/swarm/"  # what Swarm peers' healthd ask each other: always behind the token
MIN_TOKEN_CHARS = 16


class TokenError(ValueError):
    """The token file cannot be read or is empty; the message names the file, never the token."""


def is_loopback(host: str) -> bool:
    """True for a listen host that only this machine can reach (127.0.0.0/8, ::1, localhost).

    An empty host or 0.0.0.0 / :: listen on every interface; a host name other than
    localhost is taken as reachable from outside, since it may resolve to anything.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Policy:
    """The endpoint's door: ``refuse`` says why a request may not pass, or None."""

    token: str | None = field(default=None, repr=False)
    exposed: bool = False  # listening beyond loopback
    metrics_public: bool = True

    def needs_token(self, method: str, path: str) -> bool:
        """Whether a ``method`` request for ``path`` (query string removed) needs the token."""
        if method in CHANGING or path.startswith(PEERS):
            return True
        if not self.exposed or path == ALWAYS_OPEN:
            return False
        return not (path == METRICS and self.metrics_public)

    def refuse(self, method: str, path: str, authorization: str | None) -> str | None:
        """None when the request may pass; else the reason, one of ``REASONS``.

        authorization: the request's Authorization header, ``Bearer <token>`` expected.
        """
        if not self.needs_token(method, path):
            return None
        if self.token is None:
            return "unconfigured"  # nothing can match: a changing call needs daemon.token
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return "missing"
        # compare_digest takes as long for a near miss as for a far one.
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return "wrong"
        return None


REASONS = ("missing", "wrong", "unconfigured")


def read_token(token: str, token_file: str) -> str | None:
    """The configured token: ``token`` itself, else the first line of ``token_file``.

    token_file: a path such as a Docker or Swarm secret (/run/secrets/healthd_token);
    surrounding whitespace and the trailing newline are dropped. Both empty: None.
    Raises TokenError when the file cannot be read or holds no token.
    """
    if token:
        return token
    if not token_file:
        return None
    try:
        with open(token_file, encoding="utf-8") as fh:
            lines = fh.read().strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"daemon.token_file: cannot read {token_file}: {exc}") from exc
    text = lines[0].strip() if lines else ""
    if not text:
        raise TokenError(f"daemon.token_file: {token_file} is empty")
    if len(text) < MIN_TOKEN_CHARS:
        raise TokenError(f"daemon.token_file: the token in {token_file} is shorter than"
                         f" {MIN_TOKEN_CHARS} characters")
    return text
