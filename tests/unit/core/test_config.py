"""healthd.config: defaults < config.toml < HEALTHD_* environment < flags, or a ConfigError."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from healthd.core import config, settings
from healthd.core.config import ConfigError, build, load
from healthd.core.model import Action, Health
from healthd.core.settings import Config
from healthd.foresight.settings import ForecastSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config.toml"


def problems_of(file_data: Any = None, environ: Any = None, flags: Any = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        build(file_data, environ, flags)
    assert str(err.value) == "\n".join(err.value.problems)
    return err.value.problems


# --- defaults and files -------------------------------------------------------------------


def test_defaults_build() -> None:
    c = build()
    assert c == Config()
    assert c.guards.cooldown_s == 30.0
    assert c.watch.mode == "opt-out"
    assert c.daemon.listen == settings.DEFAULT_LISTEN


def test_default_decisions_are_the_default_table() -> None:
    c = build()
    for row, sevs in settings.DEFAULT_TABLE.items():
        for sev, act in sevs.items():
            assert c.action_for(row, Health(sev)) is Action(act)
    assert len(c.decisions) == len(settings.DEFAULT_TABLE) * len(settings.SEVERITIES)


def test_action_for_missing_cell_is_none() -> None:
    assert Config(decisions=()).action_for("unhealthy", Health.CRITICAL) is Action.NONE


def test_toml_file_overrides_keys(tmp_path: Path) -> None:
    path = tmp_path / "healthd.toml"
    path.write_text(
        '[daemon]\nlisten = "0.0.0.0:9999"\ndry_run = true\n'
        '[watch]\nmode = "opt-in"\n'
        '[guards]\ncooldown_s = 90\nbudget_restarts = 5\n'
        '[decisions]\ncrash_loop = { critical = "restart" }\n'
    )
    c = load(str(path), environ={})
    assert (c.daemon.listen, c.daemon.dry_run, c.watch.mode) == ("0.0.0.0:9999", True, "opt-in")
    assert c.guards.cooldown_s == 90.0 and isinstance(c.guards.cooldown_s, float)
    assert c.guards.budget_restarts == 5
    assert c.action_for("crash_loop", Health.CRITICAL) is Action.RESTART
    assert c.action_for("crash_loop", Health.DEGRADED) is Action.ALERT  # untouched cell
    assert c.guards.backoff_base_s == 10.0  # untouched key keeps its default


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(str(tmp_path / "nope.toml"), environ={})
    assert "nope.toml: cannot read" in err.value.problems[0]


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[guards\ncooldown_s = ")
    with pytest.raises(ConfigError) as err:
        load(str(path), environ={})
    assert "bad.toml: not valid TOML" in err.value.problems[0]


def test_load_without_path_uses_defaults() -> None:
    assert load(None, environ={}) == Config()


# --- problems name their key --------------------------------------------------------------

BAD = [
    ("unknown-section", {"bogus": {}}, "bogus: unknown section"),
    ("section-not-a-table", {"guards": 5}, "guards: expected a table"),
    ("unknown-key", {"guards": {"cooldown": 5}}, "guards.cooldown: unknown key"),
    ("wrong-type-int", {"guards": {"budget_restarts": "3"}},
     "guards.budget_restarts: expected int"),
    ("float-for-int", {"daemon": {"action_workers": 4.5}}, "daemon.action_workers: expected int"),
    ("bool-for-int", {"guards": {"budget_restarts": True}},
     "guards.budget_restarts: expected int"),
    ("wrong-type-bool", {"daemon": {"dry_run": "yes"}}, "daemon.dry_run: expected bool"),
    ("wrong-type-str", {"daemon": {"listen": 10985}}, "daemon.listen: expected str"),
    ("bool-for-float", {"guards": {"cooldown_s": True}}, "guards.cooldown_s: expected float"),
    ("bad-choice-mode", {"watch": {"mode": "opt-maybe"}}, "watch.mode: 'opt-maybe' is not one of"),
    ("bad-choice-stats-path", {"watch": {"stats_path": "magic"}}, "watch.stats_path:"),
    ("bad-choice-log-level", {"daemon": {"log_level": "loud"}}, "daemon.log_level:"),
    ("bad-choice-log-format", {"daemon": {"log_format": "xml"}}, "daemon.log_format:"),
    ("negative-float", {"guards": {"cooldown_s": -1}}, "guards.cooldown_s: must be >= 0"),
    ("negative-int", {"classify": {"crash_loop_deaths": -2}},
     "classify.crash_loop_deaths: must be >= 0"),
    ("threshold-order", {"thresholds": {"memory_degraded": 0.99, "memory_critical": 0.9}},
     "thresholds.memory_degraded/memory_critical"),
    ("threshold-over-one", {"thresholds": {"pids_critical": 1.5}},
     "thresholds.pids_degraded/pids_critical"),
    ("threshold-zero", {"thresholds": {"cpu_degraded": 0.0}},
     "thresholds.cpu_degraded/cpu_critical"),
    ("forecast-validate", {"forecast": {"alpha": 2.0}}, "forecast.alpha must be in (0, 1]"),
    ("decisions-not-a-table", {"decisions": "restart everything"}, "decisions: expected a table"),
    ("decisions-row", {"decisions": {"meltdown": {"critical": "alert"}}},
     "decisions.meltdown: unknown row"),
    ("decisions-row-not-a-table", {"decisions": {"unhealthy": "restart"}},
     "decisions.unhealthy: expected a table"),
    ("decisions-severity", {"decisions": {"unhealthy": {"fatal": "alert"}}},
     "decisions.unhealthy.fatal: unknown severity"),
    ("decisions-action", {"decisions": {"unhealthy": {"critical": "reboot"}}},
     "decisions.unhealthy.critical: 'reboot' is not an action"),
]


@pytest.mark.parametrize(("data", "key"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_setting_is_a_config_error_naming_the_key(data: dict[str, Any], key: str) -> None:
    problems = problems_of(data)
    assert any(p.startswith(key) for p in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    data = {
        "bogus": {},
        "guards": {"cooldown": 5, "budget_restarts": "3", "backoff_max_s": -1},
        "daemon": {"dry_run": "yes"},
        "watch": {"mode": "opt-maybe"},
        "thresholds": {"memory_degraded": 0.99, "memory_critical": 0.9},
        "forecast": {"alpha": 2.0},
        "decisions": {"meltdown": {"critical": "alert"}, "unhealthy": {"fatal": "alert"},
                      "crashed": {"critical": "reboot"}},
    }
    problems = problems_of(data, environ={"HEALTHD_FOO": "1"})
    keys = ("bogus", "guards.cooldown", "guards.budget_restarts", "guards.backoff_max_s",
            "daemon.dry_run", "watch.mode", "thresholds.memory_degraded", "forecast.alpha",
            "decisions.meltdown", "decisions.unhealthy.fatal", "decisions.crashed.critical",
            "HEALTHD_FOO")
    for key in keys:
        assert any(p.startswith(key) for p in problems), (key, problems)
    assert len(problems) == len(keys)


@pytest.mark.parametrize("source", ["file", "env"])
def test_nan_seconds_is_a_config_error(source: str) -> None:
    if source == "file":
        problems = problems_of({"guards": {"cooldown_s": float("nan")}})
    else:
        problems = problems_of(environ={"HEALTHD_GUARDS_COOLDOWN_S": "nan"})
    assert any(p.startswith("guards.cooldown_s") for p in problems)


# --- environment --------------------------------------------------------------------------


def test_env_daemon_key_without_section() -> None:
    c = build(environ={"HEALTHD_LISTEN": "0.0.0.0:1234"})
    assert c.daemon.listen == "0.0.0.0:1234"


def test_env_daemon_key_with_section() -> None:
    assert build(environ={"HEALTHD_DAEMON_LOG_LEVEL": "debug"}).daemon.log_level == "debug"


def test_env_section_key_is_coerced() -> None:
    c = build(environ={"HEALTHD_GUARDS_COOLDOWN_S": "45", "HEALTHD_GUARDS_BUDGET_RESTARTS": " 7 "})
    assert c.guards.cooldown_s == 45.0
    assert c.guards.budget_restarts == 7


@pytest.mark.parametrize(("raw", "want"), [("true", True), ("1", True), ("yes", True),
                                           ("false", False), ("0", False), ("no", False)],
                         ids=["true", "1", "yes", "false", "0", "no"])
def test_env_dry_run_bool(raw: str, want: bool) -> None:
    assert build(environ={"HEALTHD_DRY_RUN": raw}).daemon.dry_run is want


ENV_BAD = [
    ("bad-int", {"HEALTHD_GUARDS_BUDGET_RESTARTS": "lots"},
     "guards.budget_restarts: 'lots' is not a valid int"),
    ("bad-float", {"HEALTHD_GUARDS_COOLDOWN_S": "soon"},
     "guards.cooldown_s: 'soon' is not a valid float"),
    ("bad-bool", {"HEALTHD_DRY_RUN": "perhaps"}, "daemon.dry_run: 'perhaps' is not a valid bool"),
    ("bad-choice", {"HEALTHD_WATCH_MODE": "all"}, "watch.mode: 'all' is not one of"),
    ("unknown-key-in-section", {"HEALTHD_GUARDS_SPEED": "1"}, "guards.speed: unknown key"),
    ("unknown-variable", {"HEALTHD_FOO": "1"}, "HEALTHD_FOO: unknown HEALTHD_* variable"),
]


@pytest.mark.parametrize(("env", "key"), [b[1:] for b in ENV_BAD], ids=[b[0] for b in ENV_BAD])
def test_bad_env_is_a_config_error_naming_the_key(env: dict[str, str], key: str) -> None:
    problems = problems_of(environ=env)
    assert any(p.startswith(key) for p in problems), problems


def test_env_ignores_other_variables_and_healthd_config() -> None:
    env = {"HEALTHD_CONFIG": "/etc/healthd.toml", "PATH": "/bin", "DOCKER_HOST": "tcp://x"}
    assert build(environ=env) == Config()


# --- precedence ---------------------------------------------------------------------------

FILE = {"guards": {"cooldown_s": 10.0, "budget_restarts": 4, "grace_s": 1.0}}
ENV = {"HEALTHD_GUARDS_COOLDOWN_S": "20", "HEALTHD_GUARDS_BUDGET_RESTARTS": "6"}
FLAGS = {"guards": {"cooldown_s": 30.5}}


def test_precedence_defaults_file_env_flags() -> None:
    c = build(FILE, ENV, FLAGS)
    assert c.guards.cooldown_s == 30.5  # flag beats env and file
    assert c.guards.budget_restarts == 6  # env beats file
    assert c.guards.grace_s == 1.0  # file beats default
    assert c.guards.backoff_base_s == 10.0  # default


@pytest.mark.parametrize(("layers", "want"), [
    ((None, None, None), 30.0),
    ((FILE, None, None), 10.0),
    ((FILE, ENV, None), 20.0),
    ((FILE, ENV, FLAGS), 30.5),
    ((None, None, FLAGS), 30.5),
], ids=["defaults", "file", "env-over-file", "flags-over-env", "flags-only"])
def test_precedence_of_one_key(layers: tuple[Any, Any, Any], want: float) -> None:
    assert build(*layers).guards.cooldown_s == want


def test_load_applies_env_and_flags_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\nlisten = "file:1"\nlog_level = "error"\n')
    c = load(str(path), environ={"HEALTHD_LISTEN": "env:2"},
             flags={"daemon": {"log_level": "debug"}})
    assert (c.daemon.listen, c.daemon.log_level) == ("env:2", "debug")


def test_bad_flag_value_is_a_config_error() -> None:
    problems = problems_of(flags={"guards": {"cooldown_s": "fast"}})
    assert any(p.startswith("guards.cooldown_s: expected float") for p in problems)


# --- [forecast] ---------------------------------------------------------------------------


def test_forecast_keys_map_onto_forecast_settings() -> None:
    c = build({"forecast": {"horizon_s": 900, "confirm": 5, "z": 3.0}})
    assert c.forecast == ForecastSettings(horizon_s=900.0, confirm=5, z=3.0)


def test_every_forecast_setting_is_a_config_key() -> None:
    defaults = ForecastSettings()
    data = {"forecast": {f.name: getattr(defaults, f.name)
                         for f in dataclasses.fields(ForecastSettings)}}
    assert build(data).forecast == defaults


def test_forecast_from_env() -> None:
    c = build(environ={"HEALTHD_FORECAST_HORIZON_S": "1200", "HEALTHD_FORECAST_CONFIRM": "4"})
    assert (c.forecast.horizon_s, c.forecast.confirm) == (1200.0, 4)


# --- [ledger] -----------------------------------------------------------------------------


def test_ledger_retention_defaults_and_overrides() -> None:
    assert (Config().ledger.retention_days, Config().ledger.retention_rows) == (30.0, 100_000)
    assert Config().ledger.retention_s == 30 * 86400.0
    c = build({"ledger": {"retention_days": 7}},
              environ={"HEALTHD_LEDGER_RETENTION_ROWS": "5000"})
    assert (c.ledger.retention_days, c.ledger.retention_rows) == (7.0, 5000)


def test_bad_ledger_retention_is_a_config_error_naming_the_key() -> None:
    problems = problems_of({"ledger": {"retention_days": -1, "retention_row": 5}})
    assert any(p.startswith("ledger.retention_days: must be >= 0") for p in problems)
    assert any(p.startswith("ledger.retention_row: unknown key") for p in problems)


# --- the repo's documented config.toml ----------------------------------------------------


def _repo_config() -> dict[str, Any]:
    if not REPO_CONFIG.exists():
        pytest.skip(f"{REPO_CONFIG} is not in the repo (yet): nothing to check")
    return tomllib.loads(REPO_CONFIG.read_text())


def test_repo_config_toml_parses_and_validates() -> None:
    _repo_config()
    assert isinstance(load(str(REPO_CONFIG), environ={}), Config)


@pytest.mark.parametrize("section", list(config.SECTIONS))
def test_repo_config_toml_documents_every_key_of_section(section: str) -> None:
    have = _repo_config().get(section, {})
    fields = dataclasses.fields(config.SECTIONS[section])
    missing = [f"{section}.{f.name}" for f in fields if f.name not in have]
    assert missing == [], f"config.toml does not document: {', '.join(missing)}"


def test_repo_config_toml_documents_every_decisions_row() -> None:
    table = _repo_config().get("decisions", {})
    missing = [f"decisions.{row}.{sev}" for row in settings.TABLE_ROWS
               for sev in settings.SEVERITIES if sev not in table.get(row, {})]
    assert missing == [], f"config.toml does not document: {', '.join(missing)}"


def test_dependencies_tables_parse_into_specs() -> None:
    cfg = build({"dependencies": {"shop/api": {"depends_on": ["shop/db"],
                                               "restart_with": ["shop/db"],
                                               "replicas_max": 3}}})
    (spec,) = cfg.dependencies
    assert (spec.service, spec.depends_on, spec.restart_with, spec.replicas_max) == (
        "shop/api", ("shop/db",), ("shop/db",), 3)


@pytest.mark.parametrize(("body", "problem"), [
    ({"depends": ["db"]}, "dependencies.shop/api.depends: unknown key"),
    ({"depends_on": "db"}, "dependencies.shop/api.depends_on: expected a list"),
    ({"replicas_max": 0}, "dependencies.shop/api.replicas_max: expected a whole number"),
    ({"replicas_min": 3, "replicas_max": 2}, "replicas_max 2 is below replicas_min 3"),
], ids=["unknown-key", "not-a-list", "zero", "max-below-min"])
def test_bad_dependencies_name_the_key(body: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        build({"dependencies": {"shop/api": body}})
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_repo_config_toml_documents_every_notify_key() -> None:
    from healthd.core.notifyconfig import TARGET_KEYS

    text = REPO_CONFIG.read_text()
    missing = [k for k in TARGET_KEYS if f"\n# {k} = " not in text]
    assert missing == [], f"config.toml does not document [[notify]] keys: {', '.join(missing)}"


def test_repo_config_toml_notify_examples_parse() -> None:
    """The commented-out [[notify]] examples, uncommented, are a valid config."""
    lines = REPO_CONFIG.read_text().split("# A full example", 1)[1].splitlines()
    toml_line = re.compile(r'^# (\[\[notify\]\]$|\w+ = |\s+")')
    example = "\n".join(line[2:] for line in lines if toml_line.match(line))
    c = build(tomllib.loads(example), have_apprise=True)
    assert [t.name for t in c.notify] == ["ops", "chat", "am", "phone"]
