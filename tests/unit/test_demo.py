"""healthd.demo's pure parts: every container it makes is labelled, opted in, networkless
and a compose replica healthd can scale; the image is a static busybox root."""

from __future__ import annotations

import io
import shutil
import tarfile

import pytest

from healthd import demo


def _labels(args: list[str]) -> dict[str, str]:
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--label")


@pytest.mark.parametrize("part", demo.PARTS, ids=[p.service for p in demo.PARTS])
def test_each_container_is_labelled_for_clean_up_and_opted_in(part: demo.Part) -> None:
    args = demo.run_args(part, "123-4", "vol")
    labels = _labels(args)
    assert labels[demo.LABEL] == "123-4"
    assert labels["healthd.enable"] == "true"
    assert labels["com.docker.compose.project"] == demo.PROJECT
    assert labels["com.docker.compose.service"] == part.service
    assert args[args.index("--network") + 1] == ("host" if part.host_port else "none")
    assert args[args.index("--name") + 1] == f"{demo.PROJECT}_{part.service}_1"
    assert args[-4:-1] == [demo.IMAGE, "sh", "-c"]
    assert "PORT" not in " ".join(args)


def test_the_chain_web_api_db_and_the_scalable_worker() -> None:
    deps = {p.service: dict(p.labels).get("healthd.depends_on") for p in demo.PARTS}
    assert deps["web"] == "api" and deps["api"] == "db" and deps["db"] is None
    worker = next(p for p in demo.PARTS if p.service == "worker")
    assert dict(worker.labels)["healthd.replicas.max"] == "2" and "--cpus" in worker.opts
    leaky = next(p for p in demo.PARTS if p.service == "leaky")
    assert "--memory" in leaky.opts


def test_the_http_service_is_probed_on_its_own_loopback_port() -> None:
    shop = next(p for p in demo.PARTS if p.service == "shop")
    args = demo.run_args(shop, "123-4", "vol", port=18123)
    assert _labels(args)["healthd.probe.http"] == "http://127.0.0.1:18123/cgi-bin/health"
    assert args[-1].endswith("exec httpd -f -p 127.0.0.1:18123 -h /www")
    assert "--tmpfs" in args  # a restart clears /tmp/broken: the restart fixes it


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox-static not installed")
def test_the_image_root_has_busybox_and_its_applets() -> None:
    data = demo.busybox_tar(shutil.which("busybox") or "")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
        assert {"bin/busybox", "bin/sh", "bin/sleep", "bin/dd", "tmp", "shared"} <= names
        assert tar.getmember("bin/sh").linkname == "busybox"
