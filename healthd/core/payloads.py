"""What one message looks like at each kind of receiver (pure).

Owns: the text (title and lines) every kind shares, healthd's generic JSON document, the
Slack-compatible ``{"text": ...}``, docker-autoheal's ``{"<key>": ...}``, and the
Alertmanager v2 alerts list. A message is one flushed group of one target, with an ``id``
that stays the same on every re-send.
Must never: send anything, read the clock or make IDs.

The generic JSON document (``kind = "webhook"``), version 1::

    {
      "schema": "healthd.notification/v1",
      "id": "...",            # the message's idempotency key: the same on a re-send
      "instance": "host-a",   # [notifications] instance (default: the host name)
      "target": "ops",        # the [[notify]] target's name
      "group": {"key": "kind=breaker", "labels": {"kind": "breaker"}},
      "status_url": "http://host-a:10985/status",
      "test": false,          # true only for `healthd notify --test`
      "title": "...", "text": "...",   # the same words a chat message shows
      "notices": [{
        "id": "...",          # unique per notice; stable across re-sends and targets
        "kind": "action|action_failed|escalated|breaker|held_by_dependency|
                 predicted_exhaustion|alert|resolved|test",
        "severity": "degraded|critical",
        "at": 1764751794.5, "time": "2025-12-03T08:49:54.500Z",
        "container": "shop-api-1", "container_id": "...", "service": "shop/api",
        "stack": "shop", "rule": "crashed.critical", "action": "restart",
        "outcome": "succeeded|failed|skipped", "summary": "restart shop-api-1: rule ...",
        "error": "",
        "resolves": [{"kind": "...", "rule": "...", "severity": "...", "at": 0.0,
                      "service": "...", "stack": "..."}],    # for kind resolved
        "incident": "shop-api-1@1764751790"   # the ladder's incident; "" outside one
      }]
    }
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from healthd.core.model import Health
from healthd.core.notices import Alert, Notice
from healthd.core.notifyconfig import EventKind, TargetKind

SCHEMA = "healthd.notification/v1"
MAX_LINES = 30  # lines of one chat message; the rest is counted and left to /status
TEST_ALERT_S = 300.0  # a test alert in Alertmanager ends itself after this long
_AM_SEVERITY = {Health.CRITICAL: "critical", Health.DEGRADED: "warning"}
_WHAT = {
    EventKind.ACTION: "healthd acted",
    EventKind.ACTION_FAILED: "an action failed",
    EventKind.ESCALATED: "a fix did not hold: escalated",
    EventKind.BREAKER: "restart budget exhausted, left alone",
    EventKind.HELD_BY_DEPENDENCY: "held: a dependency is failing",
    EventKind.PREDICTED_EXHAUSTION: "exhaustion forecast",
    EventKind.ALERT: "alert",
    EventKind.RESOLVED: "healthy again",
    EventKind.APPROVAL: "waiting for approval (or rejected, or expired)",
    EventKind.MAINTENANCE: "maintenance",
    EventKind.TEST: "TEST notification",
}


@dataclass(frozen=True)
class Message:
    """One flushed group of one target."""

    id: str  # the same on every re-send: receivers dedupe on it
    target: str
    group: str  # "kind=breaker" (see notices.group_key)
    notices: tuple[Notice, ...]


@dataclass(frozen=True)
class Rendered:
    """A message as bytes on the wire (HTTP kinds) and as words (Apprise, logs)."""

    body: bytes
    content_type: str
    title: str
    text: str


def rfc3339(t: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds, as Alertmanager reads it."""
    return (datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"))


def line(n: Notice) -> str:
    """One notice in one line: ``[breaker] alert api-1: rule ...; ...``."""
    tag = "TEST" if n.kind is EventKind.TEST else n.kind.value
    text = f"[{tag}] {n.summary}"
    return f"{text}; error: {n.error}" if n.error else text


def title(m: Message, instance: str) -> str:
    """``healthd on host-a: 3 x restart budget exhausted, left alone``."""
    kinds = {n.kind for n in m.notices}
    if len(m.notices) == 1:
        n = m.notices[0]
        what = _WHAT[n.kind] if n.kind is EventKind.TEST else line(n).split(";", 1)[0]
    elif len(kinds) == 1:
        what = f"{len(m.notices)} x {_WHAT[next(iter(kinds))]}"
    else:
        what = f"{len(m.notices)} notices"
    return f"healthd on {instance}: {what}"


def text(m: Message, instance: str, status_url: str) -> str:
    """The message body in plain text: one line per notice, at most MAX_LINES."""
    lines = [line(n) for n in m.notices[:MAX_LINES]]
    if len(m.notices) > MAX_LINES:
        lines.append(f"... and {len(m.notices) - MAX_LINES} more")
    if status_url:
        lines.append(f"status: {status_url}")
    return "\n".join(lines)


def webhook(m: Message, instance: str, status_url: str) -> dict[str, Any]:
    """healthd's generic JSON document (schema in the module docstring)."""
    group = dict(kv.split("=", 1) for kv in m.group.split(",") if "=" in kv)
    return {
        "schema": SCHEMA, "id": m.id, "instance": instance, "target": m.target,
        "group": {"key": m.group, "labels": group}, "status_url": status_url,
        "test": any(n.kind is EventKind.TEST for n in m.notices),
        "title": title(m, instance), "text": text(m, instance, status_url),
        "notices": [{**n.as_dict(), "time": rfc3339(n.at)} for n in m.notices],
    }


def _slack_escape(s: str) -> str:
    # Slack reads &, < and > as markup (links, mentions); everything else is literal.
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(m: Message, instance: str, status_url: str) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body (Slack, Mattermost, Rocket.Chat...)."""
    body = f"*{title(m, instance)}*\n{text(m, instance, status_url)}"
    return {"text": _slack_escape(body)}


def _am_alert(labels: dict[str, str], n: Notice, starts: float, ends: float | None,
              status_url: str) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {k: v for k, v in labels.items() if v},
        "annotations": {"summary": n.summary,
                        "description": line(n) + f" (healthd notice {n.id})"},
        "startsAt": rfc3339(starts),
        "generatorURL": status_url,
    }
    if ends is not None:
        alert["endsAt"] = rfc3339(ends)
    return alert


def _am_labels(kind: EventKind, rule: str, severity: Health, n: Notice, service: str,
               stack: str, instance: str) -> dict[str, str]:
    return {"alertname": f"healthd_{kind.value}", "container": n.container,
            "service": service, "stack": stack,
            "severity": "info" if kind is EventKind.TEST else _AM_SEVERITY[severity],
            "rule": rule, "instance": instance}


def alertmanager(m: Message, instance: str, status_url: str,
                 alert_ttl_s: float) -> list[dict[str, Any]]:
    """Alertmanager v2 ``POST /api/v2/alerts`` body: one alert per notice.

    A firing alert ends ``alert_ttl_s`` after it started unless healthd resolves it
    first (0: no endsAt, so Alertmanager's resolve_timeout applies). A resolved notice
    re-sends each alert it ends with the very same labels and ``endsAt`` = now.
    """
    out = []
    for n in m.notices:
        if n.kind is EventKind.RESOLVED:
            for a in n.resolves:
                out.append(_am_alert(_resolved_labels(a, n, instance), n, a.at, n.at,
                                     status_url))
            continue
        if n.kind is EventKind.TEST:
            ends: float | None = n.at + TEST_ALERT_S
        else:
            ends = n.at + alert_ttl_s if alert_ttl_s > 0 else None
        labels = _am_labels(n.kind, n.rule, n.severity, n, n.service, n.stack, instance)
        out.append(_am_alert(labels, n, n.at, ends, status_url))
    return out


def _resolved_labels(a: Alert, n: Notice, instance: str) -> dict[str, str]:
    return _am_labels(a.kind, a.rule, a.severity, n, a.service, a.stack, instance)


def render(kind: TargetKind, m: Message, instance: str, status_url: str,
           alert_ttl_s: float = 0.0, json_key: str = "text") -> Rendered:
    """The message for a target of ``kind``; json_key: json_text's key, as docker-autoheal's
    WEBHOOK_JSON_KEY (its body is ``{"text": "<title>\n<lines>"}`` by default)."""
    head, body = title(m, instance), text(m, instance, status_url)
    doc: Any
    if kind is TargetKind.SLACK:
        doc = slack(m, instance, status_url)
    elif kind is TargetKind.ALERTMANAGER:
        doc = alertmanager(m, instance, status_url, alert_ttl_s)
    elif kind is TargetKind.WEBHOOK:
        doc = webhook(m, instance, status_url)
    elif kind is TargetKind.JSON_TEXT:
        doc = {json_key: f"{head}\n{body}"}
    else:  # apprise: words only; Apprise formats them for each service
        return Rendered(b"", "text/plain", head, body)
    return Rendered(json.dumps(doc).encode(), "application/json", head, body)
