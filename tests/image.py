"""healthd's container image, built for tests on a Debian base the suite makes itself.

Owns: the cached inputs of the image build and the build itself:
- the base: a Debian rootfs tarball (mmdebstrap, variant minbase, plus python3 and
  python3-venv) from this machine's own apt sources, imported into the test engine;
- the wheelhouse: `pip wheel` of healthd's dependencies on the host (the image build has
  no network), plus healthd's own wheel;
- the image: `docker build --network none --build-arg BASE=<the base>`, saved with
  `docker save` so that an unchanged tree loads it instead of building again.
Each lives in a cache directory (``$HEALTHD_TEST_CACHE``, default
/var/tmp/healthd-test-cache, never the repo) under a name keyed by a hash of its inputs,
written to a temp name and renamed, under a file lock, so concurrent runs share it.
Must never: pull from a registry, write into the repo, or hold the engine lock for the
parts that do not need an engine (`python -m tests.image` prepares those beforehand).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE_VERSION = 2  # bump to rebuild every cached base
PACKAGES = ("python3", "python3-venv")
# Documentation is no use in an image; copyright files stay.
DPKG_OPTS = ("path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*",
             "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/locale/*",
             "path-exclude=/usr/share/info/*")
SOURCE_FILES = ("setup.cfg", "pyproject.toml", "README.md")
KEEP_IMAGES = 2  # saved image tarballs kept in the cache, newest first


class ImageUnavailable(RuntimeError):
    """A tool is missing or a build step failed; the message says which and why."""


def cache_dir() -> Path:
    """Where bases, wheelhouses and saved images are kept between runs."""
    path = Path(os.environ.get("HEALTHD_TEST_CACHE", "/var/tmp/healthd-test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """An exclusive lock on ``<cache>/<name>.lock`` (one builder of one thing at a time)."""
    with open(cache_dir() / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prune(pattern: str, keep: Path, max_age_s: float = 86400.0) -> None:
    """Delete cache entries matching ``pattern`` but ``keep`` that nobody touched for a day
    (other checkouts of the repo may share the cache with other keys)."""
    for old in cache_dir().glob(pattern):
        try:
            stale = old != keep and time.time() - old.stat().st_mtime > max_age_s
        except OSError:
            continue
        if stale and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        elif stale:
            old.unlink(missing_ok=True)


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _run(args: list[str], what: str, timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageUnavailable(f"{what}: {exc}") from exc
    if done.returncode != 0:
        raise ImageUnavailable(f"{what} failed ({done.returncode}):\n"
                               f"{(done.stdout + done.stderr)[-4000:]}")
    return str(done.stdout)


# -- the Debian base ------------------------------------------------------------------


def host_suite() -> str:
    """This machine's Debian codename (bookworm), from /etc/os-release."""
    with open("/etc/os-release", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise ImageUnavailable("no VERSION_CODENAME in /etc/os-release: not a Debian machine")


def apt_sources(suite: str) -> list[Path]:
    """This machine's enabled apt source files that serve ``suite`` (deb822 or one-line)."""
    d = Path("/etc/apt/sources.list.d")
    files = [Path("/etc/apt/sources.list"), *sorted(d.glob("*.sources")), *sorted(d.glob("*.list"))]
    found = [f for f in files if f.is_file() and suite in f.read_text(errors="replace")]
    if not found:
        raise ImageUnavailable(f"no apt source for {suite} under /etc/apt")
    return found


def base_rootfs() -> tuple[Path, str]:
    """The cached Debian rootfs tarball and its key; made by mmdebstrap when missing.

    Takes about a minute and a half on the first run; later runs find it in the cache.
    """
    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise ImageUnavailable("mmdebstrap not installed (scripts/setup --test installs it)")
    suite = host_suite()
    sources = apt_sources(suite)
    version = _run([tool, "--version"], "mmdebstrap --version", 30).strip()
    key = _digest(str(RECIPE_VERSION), suite, version, ",".join(PACKAGES), *DPKG_OPTS,
                  *(f.read_text(errors="replace") for f in sources))
    target = cache_dir() / f"base-{suite}-{key}.tar"
    with _locked("base"):
        if target.exists():
            return target, key
        # The name's .tar matters too: mmdebstrap picks its output format by extension.
        tmp = target.with_name(f"{target.stem}.partial.tar")
        args = [tool, "--variant=minbase", "--format=tar", f"--include={','.join(PACKAGES)}",
                "--mode=root", "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", "--quiet",
                *(f"--dpkgopt={o}" for o in DPKG_OPTS), suite, str(tmp), *map(str, sources)]
        _run(args, "mmdebstrap", 1200)
        tmp.rename(target)
    _prune(f"base-{suite}-*", target)
    return target, key


# -- the wheelhouse -------------------------------------------------------------------


def _py_tag() -> str:
    return f"cp{sys.version_info.major}{sys.version_info.minor}"


def dependency_wheels() -> tuple[Path, str]:
    """A cached directory of wheels for healthd's dependencies (not healthd itself).

    Keyed by setup.cfg and pyproject.toml (where the dependencies are named) and this
    Python's version: the image's Python must be the same minor version.
    """
    key = _digest(str(RECIPE_VERSION), _py_tag(),
                  *((REPO / f).read_text() for f in ("setup.cfg", "pyproject.toml")))
    target = cache_dir() / f"wheels-{_py_tag()}-{key}"
    with _locked("wheels"):
        if target.is_dir():
            return target, key
        tmp = Path(tempfile.mkdtemp(prefix="wheels-", dir=cache_dir()))
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
              "-w", str(tmp), str(_source_copy(tmp / "src"))], "pip wheel (dependencies)", 900)
        shutil.rmtree(tmp / "src")
        for whl in tmp.glob("healthd-*.whl"):
            whl.unlink()
        tmp.rename(target)
    _prune(f"wheels-{_py_tag()}-*", target)
    return target, key


def _source_files() -> list[Path]:
    files = [REPO / f for f in SOURCE_FILES]
    files += sorted(p for p in (REPO / "healthd").rglob("*") if p.is_file()
                    and "__pycache__" not in p.parts)
    return files


def source_key() -> str:
    """A hash of what goes into healthd's own wheel."""
    return _digest(*(f"{p.relative_to(REPO)}\n".encode() + p.read_bytes()
                     for p in _source_files()))


def _source_copy(dest: Path) -> Path:
    """healthd's sources copied to ``dest``, so building a wheel leaves the repo alone."""
    for p in _source_files():
        out = dest / p.relative_to(REPO)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, out)
    return dest


def build_context(dest: Path) -> Path:
    """A docker build context in ``dest``: the Dockerfile and wheelhouse/ (deps + healthd)."""
    deps, _ = dependency_wheels()
    wheelhouse = dest / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    for whl in deps.iterdir():
        try:
            os.link(whl, wheelhouse / whl.name)
        except OSError:
            shutil.copy2(whl, wheelhouse / whl.name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
          "-w", str(wheelhouse), str(_source_copy(dest / "src"))], "pip wheel healthd", 300)
    shutil.rmtree(dest / "src")
    shutil.copy2(REPO / "Dockerfile", dest / "Dockerfile")
    return dest


def prepare() -> dict[str, str]:
    """Make (or find) the cached base and dependency wheels; no engine needed."""
    base, base_key = base_rootfs()
    deps, deps_key = dependency_wheels()
    return {"base": str(base), "base_key": base_key, "wheels": str(deps), "wheels_key": deps_key}


# -- the image, in a given engine -------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """The image in the test engine and how it got there."""

    tag: str
    base_tag: str
    size_bytes: int
    how: str  # "built", "loaded" (from the saved tarball) or "present" (already there)
    seconds: float


def image_key(base_key: str, deps_key: str) -> str:
    """Everything the image depends on: base, dependency wheels, Dockerfile, sources."""
    return _digest(base_key, deps_key, (REPO / "Dockerfile").read_bytes(), source_key())


def build_image(docker_host: str, tag: str = "healthd:test") -> Built:
    """Put healthd's image into the engine at ``docker_host``: load the saved one if the
    inputs are unchanged, else build it (`--network none`) on the cached base and save it.
    """
    started = time.monotonic()
    docker = shutil.which("docker") or "docker"
    env = {**os.environ, "DOCKER_HOST": docker_host, "DOCKER_BUILDKIT": "0"}
    env.pop("DOCKER_CONTEXT", None)
    base, base_key = base_rootfs()
    _, deps_key = dependency_wheels()
    key = image_key(base_key, deps_key)
    base_tag = f"healthd-test/base:{base_key}"
    saved = cache_dir() / f"image-{key}.tar"

    def cli(*args: str, timeout: float = 900) -> str:
        return _run([docker, *args], f"docker {args[0]}", timeout, env=env)

    label = "{{index .Config.Labels \"healthd.test.key\"}}"
    present = subprocess.run([docker, "image", "inspect", "--format", label, tag], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    if present.returncode == 0 and present.stdout.strip() == key:
        how = "present"
    elif saved.exists():
        cli("load", "-i", str(saved), timeout=600)
        how = "loaded"
    else:
        if not cli("images", "-q", base_tag).strip():
            cli("import", "--change", "CMD [\"python3\"]", str(base), base_tag, timeout=600)
        with tempfile.TemporaryDirectory(prefix="healthd-build-", dir=cache_dir()) as tmp:
            ctx = build_context(Path(tmp))
            cli("build", "--network", "none", "--build-arg", f"BASE={base_tag}",
                "--label", f"healthd.test.key={key}", "-t", tag, str(ctx), timeout=1500)
        how = "built"
        with _locked("images"):
            tmp_tar = saved.with_suffix(".tmp")
            cli("save", "-o", str(tmp_tar), tag, timeout=600)
            tmp_tar.rename(saved)
            olds = sorted(cache_dir().glob("image-*.tar"), key=lambda p: p.stat().st_mtime,
                          reverse=True)
            for old in olds[KEEP_IMAGES:]:
                old.unlink(missing_ok=True)
    if cli("image", "inspect", "--format", label, tag).strip() != key:
        raise ImageUnavailable(f"{tag} in the engine is not the image for key {key}")
    size = int(cli("image", "inspect", "--format", "{{.Size}}", tag).strip())
    return Built(tag, base_tag, size, how, time.monotonic() - started)


if __name__ == "__main__":
    # `python -m tests.image`: prepare the cached inputs outside the engine lock.
    print(json.dumps(prepare(), indent=1))
