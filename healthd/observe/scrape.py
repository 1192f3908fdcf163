"""Scraping an application's Prometheus text endpoint.

Owns: fetching the body (bounded time and size, no proxy) and reducing it, with
``prometheus_client``'s own parser, to a ``rates.Scrape`` of the configured counters and
histogram. Must never: keep samples (the daemon's memory does) or decide; a junk body or
an unreachable URL is a ``Scraped`` value with a problem, which the daemon logs and skips.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from healthd.core.labels import SignalSpec
from healthd.core.rates import Scrape

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Scraped:
    """One scrape of container ``cid``: the values, or why there are none."""

    cid: str
    at: float
    scrape: Scrape | None
    problem: str = ""  # "" when ``scrape`` is set


class ScrapeError(Exception):
    """The endpoint could not be read or its body is not usable exposition text."""


def fetch(url: str, timeout_s: float, max_bytes: int) -> str:
    """The endpoint's body as text; ScrapeError when unreachable, failing or too large."""
    try:
        with _OPENER.open(url, timeout=timeout_s) as resp:
            body = resp.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise ScrapeError(f"HTTP {exc.code} from {url}") from exc
    except (OSError, ValueError) as exc:
        raise ScrapeError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc
    if len(body) > max_bytes:
        raise ScrapeError(f"body of {url} is over {max_bytes} bytes")
    return bytes(body).decode("utf-8", "replace")


def parse(text: str, spec: SignalSpec, at: float) -> Scrape:
    """The configured counters (summed over the samples their selectors match) and the
    latency histogram's buckets (summed over its other labels) of one exposition body."""
    requests = errors = None
    buckets: dict[float, float] = {}
    bucket_name = f"{spec.latency}_bucket"
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if spec.requests.matches(s.name, s.labels):
                    requests = (requests or 0.0) + s.value
                if spec.errors.matches(s.name, s.labels):
                    errors = (errors or 0.0) + s.value
                if s.name == bucket_name and "le" in s.labels:
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
    # The parser raises ValueError, but also IndexError/KeyError/TypeError on some junk:
    # any of them means "not exposition text", never a reason to stop observing.
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ScrapeError(f"not Prometheus text format: {exc}") from exc
    if requests is None and not buckets:
        raise ScrapeError(f"no {spec.requests.name} and no {bucket_name} in the body")
    if errors is None and requests is not None:
        errors = 0.0  # no failed-request series yet: none have failed
    hist = tuple(sorted(buckets.items())) if any(math.isinf(le) for le in buckets) else ()
    return Scrape(at, requests, errors, hist)


def scrape(cid: str, spec: SignalSpec, timeout_s: float, max_bytes: int,
           clock: Callable[[], float]) -> Scraped:
    """Fetch and parse once; never raises for the endpoint's trouble."""
    at = clock()
    if spec.metrics_url is None:
        return Scraped(cid, at, None, "no metrics URL")
    try:
        return Scraped(cid, at, parse(fetch(spec.metrics_url, timeout_s, max_bytes), spec, at))
    except ScrapeError as exc:
        return Scraped(cid, at, None, str(exc))
