"""Property tests of healthd.core.config: any TOML data, environment or file bytes give a
Config or a ConfigError whose every problem names its key (or the file), nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from healthd.core import config

# --- inputs the properties below found, kept as plain regression tests ----------------------


def test_a_file_that_is_not_utf8_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\x80")
    with pytest.raises(config.ConfigError, match="not UTF-8") as info:
        config.load(str(path), environ={})
    assert info.value.problems[0].startswith(str(path))


@pytest.mark.parametrize("opener, closer", [("{a=", "}"), ("[", "]")], ids=["tables", "arrays"])
def test_deeply_nested_values_are_a_config_error(tmp_path: Path, opener: str, closer: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"min_samples = {opener * 689}1{closer * 689}\n")
    with pytest.raises(config.ConfigError, match="nested too deeply"):
        config.load(str(path), environ={})


@pytest.mark.parametrize("key", ["watch.stats_interval_s", "daemon.action_workers"])
def test_an_integer_beyond_64_bits_is_a_problem_naming_its_key(key: str) -> None:
    section, name = key.split(".")
    with pytest.raises(config.ConfigError) as info:
        config.build({section: {name: 10**400}}, environ={})
    assert info.value.problems == [f"{key}: integer out of range (TOML integers are 64-bit)"]


def test_an_integer_over_4300_digits_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"action_workers = {'9' * 4301}\n")
    with pytest.raises(config.ConfigError, match="not valid TOML") as info:
        config.load(str(path), environ={})
    assert info.value.problems[0].startswith(str(path))
