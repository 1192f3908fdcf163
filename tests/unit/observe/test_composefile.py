"""healthd.observe.composefile: real compose files on disk in, depends_on out."""

from __future__ import annotations

from pathlib import Path

from healthd.core.model import ContainerState
from healthd.observe.composefile import Reader


def labelled(project: str, workdir: Path, files: str) -> ContainerState:
    return ContainerState(id="x", name="x", labels=(
        ("com.docker.compose.project", project),
        ("com.docker.compose.project.config_files", files),
        ("com.docker.compose.project.working_dir", str(workdir)),
        ("com.docker.compose.service", "web")))


def test_list_and_mapping_forms_relative_to_the_working_dir(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "version: '2.4'\nservices:\n  web:\n    depends_on: [api]\n"
        "  api:\n    depends_on:\n      db: {condition: service_healthy}\n  db: {}\n")
    deps = Reader().dependencies([labelled("shop", tmp_path, "docker-compose.yml")])
    assert deps == {"shop": {"web": ("api",), "api": ("db",)}}


def test_a_later_file_overrides_an_earlier_one(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("services:\n  web:\n    depends_on: [api]\n")
    (tmp_path / "b.yml").write_text("services:\n  web:\n    depends_on: [db]\n")
    deps = Reader().dependencies([labelled("shop", tmp_path, "a.yml,b.yml")])
    assert deps["shop"]["web"] == ("db",)


def test_missing_and_malformed_files_are_problems_not_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("services: [\n")
    r = Reader()
    deps = r.dependencies([labelled("shop", tmp_path, "gone.yml"),
                           labelled("other", tmp_path, "bad.yml")])
    assert deps == {"shop": {}, "other": {}}
    assert any("cannot read" in p and "gone.yml" in p for p in r.problems)
    assert any("cannot parse" in p and "bad.yml" in p for p in r.problems)


def test_a_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    f = tmp_path / "docker-compose.yml"
    f.write_text("services:\n  web:\n    depends_on: [api]\n")
    r, c = Reader(), labelled("shop", tmp_path, "docker-compose.yml")
    assert r.dependencies([c])["shop"]["web"] == ("api",)
    f.write_text("services:\n  web:\n    depends_on: [db]\n")
    import os
    os.utime(f, (1, 1))
    assert r.dependencies([c])["shop"]["web"] == ("db",)
