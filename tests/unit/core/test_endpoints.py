"""healthd.core.endpoints: a container's labels, addresses and published ports in, the
labels its probes and scrapes use out."""

from __future__ import annotations

from healthd.core import labels as lb
from healthd.core.endpoints import expand
from healthd.core.model import ContainerState


def state(*labels: tuple[str, str], addresses: tuple[str, ...] = (),
          published: tuple[tuple[str, str, int], ...] = ()) -> ContainerState:
    return ContainerState(id="c1", name="app", labels=tuple(sorted(labels)),
                          addresses=addresses, published=published, network_mode="bridge")


def test_labels_without_placeholders_come_back_unchanged() -> None:
    c = state((lb.PROBE_HTTP, "http://127.0.0.1:8080/health"), ("other", "{address}"))
    assert expand(c) == (c.labels, ())


def test_address_fills_in_the_first_address() -> None:
    c = state((lb.PROBE_HTTP, "http://{address}:8080/health"),
              addresses=("172.18.0.2", "172.19.0.5"))
    assert expand(c) == (((lb.PROBE_HTTP, "http://172.18.0.2:8080/health"),), ())


def test_an_ipv6_address_goes_in_brackets() -> None:
    c = state((lb.PROBE_TCP, "{address}:5432"), addresses=("fd00::2",))
    assert expand(c)[0] == ((lb.PROBE_TCP, "[fd00::2]:5432"),)


def test_published_port_names_the_host_binding_and_all_interfaces_is_loopback() -> None:
    c = state((lb.METRICS_URL, "http://{published:9090}/metrics"),
              (lb.PROBE_TCP, "{published:5432}"), (lb.PROBE_HTTP, "http://{published:80}/"),
              published=(("9090/tcp", "0.0.0.0", 49153), ("5432/tcp", "127.0.0.2", 15432),
                         ("80/tcp", "::", 8081)))
    got = dict(expand(c)[0])
    assert got == {lb.METRICS_URL: "http://127.0.0.1:49153/metrics",
                   lb.PROBE_TCP: "127.0.0.2:15432", lb.PROBE_HTTP: "http://[::1]:8081/"}


def test_a_udp_port_is_matched_only_by_its_protocol() -> None:
    c = state((lb.PROBE_TCP, "{published:53/udp}"), (lb.METRICS_URL, "http://{published:53}/"),
              published=(("53/udp", "127.0.0.1", 5353),))
    labels, problems = expand(c)
    assert labels == ((lb.PROBE_TCP, "127.0.0.1:5353"),)
    assert problems == (f"label {lb.METRICS_URL}='http://{{published:53}}/' skipped: "
                        "{published:53}: container port 53/tcp is not published",)


def test_a_placeholder_that_cannot_be_filled_drops_its_label_and_says_why() -> None:
    c = state((lb.PROBE_HTTP, "http://{address}/"), (lb.PROBE_TCP, "{host}:1"),
              (lb.PROBE_INTERVAL, "5s"))
    labels, problems = expand(c)
    assert labels == ((lb.PROBE_INTERVAL, "5s"),)
    assert any("no address on a network (network mode bridge)" in p for p in problems)
    assert any("{host}: unknown placeholder" in p for p in problems)
