"""Property tests of healthd.core.config: any TOML data, environment or file bytes give a
Config or a ConfigError whose every problem names its key (or the file), nothing else.

Sections and keys are read from the module (``SECTIONS``, ``TABLE_ROWS``...), so sections
and keys added later are fuzzed too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthd.core import config, settings
from healthd.core.model import Action
from tests.unit.fuzzing import floats, ints, texts

FIELDS = {s: tuple(f.name for f in dataclasses.fields(cls)) for s, cls in config.SECTIONS.items()}
KEY_NAMES = sorted({k for names in FIELDS.values() for k in names})
ACTIONS = tuple(a.value for a in Action)

# Every TOML value type (tomllib gives these; its integers are not bounded to 64 bits).
toml_scalars = st.one_of(
    st.booleans(), ints(), floats(), texts(*ACTIONS, "opt-in", "json", "debug", "auto"),
    st.datetimes(timezones=st.none() | st.just(dt.timezone.utc)), st.dates(), st.times(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=3),
                           st.dictionaries(st.text(max_size=6), kids, max_size=3)),
    max_leaves=8,
)


@st.composite
def sections(draw: st.DrawFn) -> dict[str, Any]:
    """A [section] table: mostly real keys of a real section, with wrong-typed values."""
    name = draw(st.sampled_from(tuple(FIELDS)))
    keys = st.one_of(st.sampled_from(FIELDS[name]), st.sampled_from(KEY_NAMES), st.text(max_size=8))
    return {name: draw(st.dictionaries(keys, toml_values, max_size=6))}


decisions = st.dictionaries(
    st.one_of(st.sampled_from(settings.TABLE_ROWS), st.text(max_size=8)),
    st.one_of(st.dictionaries(st.one_of(st.sampled_from(settings.SEVERITIES), st.text(max_size=6)),
                              st.one_of(st.sampled_from(ACTIONS), toml_values), max_size=3),
              toml_values),
    max_size=4,
)


@st.composite
def files(draw: st.DrawFn) -> dict[str, Any]:
    """Parsed config.toml contents: real sections, the decision table, stray top-level keys."""
    data: dict[str, Any] = {}
    for part in draw(st.lists(sections(), max_size=4)):
        data.update(part)
    if draw(st.booleans()):
        data["decisions"] = draw(decisions)
    data.update(draw(st.dictionaries(st.one_of(st.sampled_from((*FIELDS, "decisions")),
                                               st.text(max_size=8)), toml_values, max_size=2)))
    return data


env_names = st.one_of(
    st.sampled_from([f"HEALTHD_{s}_{k}".upper() for s, names in FIELDS.items() for k in names]),
    st.sampled_from([f"HEALTHD_{k}".upper() for k in FIELDS["daemon"]]),
    st.text(max_size=10).map(lambda s: "HEALTHD_" + s),
)
environs = st.dictionaries(env_names, texts("true", "no", "1", "1e3", " 7 ", "opt-in"),
                           max_size=4)


def assert_problems_name_their_keys(exc: config.ConfigError, keys: list[str]) -> None:
    assert exc.problems, "a ConfigError without problems"
    for problem in exc.problems:
        assert any(problem.startswith(k) for k in keys), problem


@given(files(), environs)
def test_any_toml_data_and_environment_give_a_config_or_named_problems(
        data: dict[str, Any], environ: dict[str, str]) -> None:
    try:
        cfg = config.build(data, environ)
    except config.ConfigError as exc:
        assert_problems_name_their_keys(exc, [*data, *environ, *FIELDS, "decisions"])
    else:
        assert isinstance(cfg, settings.Config)


# Text that is often nearly TOML: real section headers and keys, values of every type, and
# arrays or inline tables nested deeply (tomllib's parser recurses on them).
toml_lines = st.one_of(
    st.sampled_from([f"[{s}]" for s in (*FIELDS, "decisions")]),
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(KEY_NAMES),
              st.one_of(st.sampled_from(('"x"', "1", "1.5", "true", "nan", "-inf", "1979-05-27",
                                         "07:32:00", "[1, 2]", "{ a = 1 }", "9" * 30)),
                        st.text(max_size=12))),
    st.builds(lambda k, n: f"{k} = {'9' * n}", st.sampled_from(KEY_NAMES), st.integers(0, 6000)),
    st.builds(lambda k, n, o, c: f"{k} = {o * n}1{c * n}", st.sampled_from(KEY_NAMES),
              st.integers(0, 3000), st.sampled_from(("[", "{a=")), st.sampled_from(("]", "}"))),
    st.text(max_size=20),
)
toml_texts = st.lists(toml_lines, max_size=8).map("\n".join)
file_bytes = st.one_of(st.binary(max_size=200), toml_texts.map(str.encode),
                       toml_texts.map(lambda s: s.encode("utf-16")),
                       st.builds(lambda a, b: a.encode() + b, toml_texts, st.binary(max_size=8)))


@given(file_bytes)
def test_any_file_bytes_give_a_config_or_a_problem_naming_the_file(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.toml")
        with open(path, "wb") as fh:
            fh.write(raw)
        try:
            cfg = config.load(path, environ={})
        except config.ConfigError as exc:
            assert_problems_name_their_keys(exc, [path, *FIELDS, "decisions", ""])
        else:
            assert isinstance(cfg, settings.Config)


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
