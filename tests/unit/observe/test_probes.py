"""Probes, scrapes and the pool against a local HTTP server on 127.0.0.1 (no engine)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from healthd.core import labels
from healthd.observe import probes, scrape
from healthd.observe.probes import Job, Pool

METRICS = (b'# TYPE http_requests_total counter\nhttp_requests_total{code="200"} 10\n'
           b'http_requests_total{code="500"} 2\n# TYPE d histogram\nd_bucket{le="0.5"} 3\n'
           b'd_bucket{le="+Inf"} 4\nd_sum 1\nd_count 4\n')


class _Handler(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/hang":
            self.release.wait(10)
        body = METRICS if self.path == "/metrics" else b"<html>ok</html>"
        self.send_response(500 if self.path == "/bad" else 200)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the prober gave up on a hung answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    _Handler.release.set()
    srv.shutdown()
    srv.server_close()
    _Handler.release.clear()


def test_http_and_tcp_probes(url: str) -> None:
    assert probes.http(url + "/ok", 2, (), None) == (True, "HTTP 200")
    assert probes.http(url + "/bad", 2, (), None) == (False, "HTTP 500")
    assert probes.http(url + "/ok", 2, (), "nope")[0] is False
    assert probes.http(url + "/hang", 0.3, (), None) == (False, "timed out after 0.3 s")
    assert probes.tcp("127.0.0.1", int(url.rsplit(":", 1)[1]), 1) == (True, "connected")


def test_scrape_reads_counters_and_histogram(url: str) -> None:
    spec = labels.signal_spec({labels.METRICS_URL: url + "/metrics", labels.METRICS_LATENCY: "d"})
    got = scrape.scrape("c", spec, 2, 10**6, lambda: 5.0).scrape
    assert got is not None
    assert (got.requests, got.errors, got.buckets) == (12.0, 2.0, ((0.5, 3.0), (float("inf"), 4.0)))


def test_junk_body_and_unreachable_url_are_problems_not_errors(url: str) -> None:
    junk = scrape.scrape("c", labels.signal_spec({labels.METRICS_URL: url + "/junk"}), 2, 10**6,
                         time.time)
    assert junk.scrape is None and junk.problem.startswith("not Prometheus text format")
    gone = scrape.scrape("c", labels.signal_spec({labels.METRICS_URL: "http://127.0.0.1:1/"}),
                         2, 10**6, time.time)
    assert gone.scrape is None and gone.problem.startswith("cannot reach")


def test_a_hung_target_neither_piles_up_nor_delays_the_others(url: str) -> None:
    out: queue.Queue[Any] = queue.Queue()
    pool = Pool(2, out)
    pool.start()
    pool.set_jobs({
        "hung": Job(0.1, partial(probes.timed, "hung", partial(probes.http, url + "/hang", 30,
                                                               (), None), 30, time.time)),
        "good": Job(0.1, partial(probes.timed, "good", partial(probes.http, url + "/ok", 2,
                                                               (), None), 2, time.time)),
    })
    deadline = time.monotonic() + 10
    good = 0
    while good < 5 and time.monotonic() < deadline:
        item = out.get(timeout=10)
        assert item.cid == "good" and item.ok
        good += 1
    assert good == 5
    assert pool.skipped_busy >= 1  # the hung one's due runs were skipped, not queued
    pool.stop()
