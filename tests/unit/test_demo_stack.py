"""healthd.demo_stack: every container the demo makes is labelled, opted in, networkless
and a compose replica healthd can scale."""

from __future__ import annotations

import pytest

from healthd import demo_stack


def _labels(args: list[str]) -> dict[str, str]:
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--label")


@pytest.mark.parametrize("part", demo_stack.PARTS, ids=[p.service for p in demo_stack.PARTS])
def test_each_container_is_labelled_for_clean_up_and_opted_in(part: demo_stack.Part) -> None:
    args = demo_stack.run_args(part, "123-4", "vol")
    labels = _labels(args)
    assert labels[demo_stack.LABEL] == "123-4"
    assert labels["healthd.enable"] == "true"
    assert labels["com.docker.compose.project"] == demo_stack.PROJECT
    assert labels["com.docker.compose.service"] == part.service
    assert args[args.index("--network") + 1] == ("host" if part.host_port else "none")
    assert args[args.index("--name") + 1] == f"{demo_stack.PROJECT}_{part.service}_1"
    assert args[-4:-1] == [demo_stack.IMAGE, "sh", "-c"]
    assert "PORT" not in " ".join(args)


def test_the_chain_web_api_db_and_the_scalable_worker() -> None:
    deps = {p.service: dict(p.labels).get("healthd.depends_on") for p in demo_stack.PARTS}
    assert deps["web"] == "api" and deps["api"] == "db" and deps["db"] is None
    worker = next(p for p in demo_stack.PARTS if p.service == "worker")
    assert dict(worker.labels)["healthd.replicas.max"] == "2" and "--cpus" in worker.opts
    leaky = next(p for p in demo_stack.PARTS if p.service == "leaky")
    assert "--memory" in leaky.opts


def test_the_http_service_is_probed_on_its_own_loopback_port() -> None:
    shop = next(p for p in demo_stack.PARTS if p.service == "shop")
    args = demo_stack.run_args(shop, "123-4", "vol", port=18123)
    assert _labels(args)["healthd.probe.http"] == "http://127.0.0.1:18123/cgi-bin/health"
    assert args[-1].endswith("exec httpd -f -p 127.0.0.1:18123 -h /www")
    assert "--tmpfs" in args  # a restart clears /tmp/broken: the restart fixes it
