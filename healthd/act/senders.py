"""Transports to notification receivers: an HTTP POST, or Apprise for everything else.

Owns: turning a rendered message into one delivery attempt, and a receiver's failure into
``DeliveryError(retryable=...)``: connection errors, timeouts, 5xx, 408 and 429 are worth
another try; any other 4xx is not (as in Alertmanager's own notifiers), nor an URL that
Apprise does not understand. Secrets (``url_file``, ``token_file``) are read at each
attempt, so a rotated token is picked up without a restart.
Must never: retry, wait or queue (the notifier does), or decide what to send.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from healthd import __version__
from healthd.core.notifyconfig import NotifyTarget, TargetKind
from healthd.core.payloads import Rendered


class DeliveryError(Exception):
    """One delivery attempt failed; ``retryable`` says whether another may succeed."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sender(Protocol):
    """Delivers one rendered message or raises DeliveryError."""

    def send(self, rendered: Rendered, message_id: str) -> None:
        """One attempt; returns when the receiver said yes."""
        ...


def _read_secret(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise DeliveryError(f"cannot read {what} {path}: {exc.strerror}", True) from exc


def _url(target: NotifyTarget) -> str:
    return target.url or _read_secret(target.url_file, "url_file")


class HttpSender:
    """POST the rendered body (webhook, slack, alertmanager)."""

    def __init__(self, target: NotifyTarget) -> None:
        self.target = target

    def _endpoint(self) -> str:
        url = _url(self.target)
        if self.target.kind is TargetKind.ALERTMANAGER and not url.rstrip("/").endswith(
                "/api/v2/alerts"):
            url = url.rstrip("/") + "/api/v2/alerts"
        return url

    def send(self, rendered: Rendered, message_id: str) -> None:
        """One POST within ``timeout_s``; a 2xx answer is success."""
        headers = {"Content-Type": rendered.content_type,
                   "User-Agent": f"healthd/{__version__}",
                   "Idempotency-Key": message_id, **dict(self.target.headers)}
        if self.target.token_file:
            token = _read_secret(self.target.token_file, "token_file")
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self._endpoint(), data=rendered.body, headers=headers,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.target.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
            exc.close()
            retry = exc.code >= 500 or exc.code in (408, 429)
            raise DeliveryError(f"HTTP {exc.code} {exc.reason}: {detail}".rstrip(": "),
                                retry) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DeliveryError(f"cannot reach {self.target.name}: {reason}", True) from exc
        except Exception as exc:
            # http.client raises its own (BadStatusLine, IncompleteRead) when a receiver
            # answers garbage: worth another try, and the worker must survive it.
            raise DeliveryError(f"bad answer from {self.target.name}: {exc!r}", True) from exc


class AppriseSender:
    """Hand the title and text to Apprise (the optional ``healthd[apprise]`` extra)."""

    def __init__(self, target: NotifyTarget) -> None:
        import apprise  # optional: only targets of kind apprise need it

        self.target = target
        self._apprise: Any = apprise

    def _url(self) -> str:
        # Apprise's HTTP-based services take connect/read timeouts from the URL.
        url = _url(self.target)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        extra = {k: f"{self.target.timeout_s:g}" for k in ("cto", "rto") if k not in query}
        if extra:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(extra)
        return url

    def send(self, rendered: Rendered, message_id: str) -> None:
        """One notify through Apprise; its log explains a failure."""
        ap = self._apprise.Apprise()
        if not ap.add(self._url()):
            raise DeliveryError(f"apprise does not recognise the url of {self.target.name}",
                                False)
        with self._apprise.LogCapture(level=logging.WARNING) as captured:
            ok = ap.notify(body=rendered.text, title=rendered.title)
            said = captured.getvalue().strip().replace("\n", "; ")
        if not ok:
            raise DeliveryError(f"apprise: {said or 'notify failed'}", True)


def sender_for(target: NotifyTarget) -> Sender:
    """The transport for a target's kind."""
    if target.kind is TargetKind.APPRISE:
        return AppriseSender(target)
    return HttpSender(target)
