"""healthd.demo's pure part: the image is a static busybox root."""

from __future__ import annotations

import io
import shutil
import tarfile

import pytest

from healthd import demo


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox-static not installed")
def test_the_image_root_has_busybox_and_its_applets() -> None:
    data = demo.busybox_tar(shutil.which("busybox") or "")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
        assert {"bin/busybox", "bin/sh", "bin/sleep", "bin/dd", "tmp", "shared"} <= names
        assert tar.getmember("bin/sh").linkname == "busybox"
