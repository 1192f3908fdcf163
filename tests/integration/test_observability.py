"""The observability kit: deploy/prometheus/healthd.rules.yml (promtool check and unit
tests) and deploy/grafana/healthd.json, whose every PromQL expression runs without error
against a real Prometheus scraping a real healthd and names only metrics healthd exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engine import Engine, in_ci, wait_for
from tests.integration.healthd_proc import Healthd, free_port

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "healthd.rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "healthd.rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "healthd.json"
# Series Prometheus makes itself for each target, not exported by healthd.
SYNTHETIC = {"up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "offset", "bool", "inf", "nan"}


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        if in_ci():
            pytest.fail(f"{name} missing: scripts/setup --test installs {package}")
        pytest.skip(f"{name} not installed (Debian package {package})")
    return path


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, labels and numbers left out)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        before = s[m.start() - 1] if m.start() else " "
        if before.isdigit() or before == "." or s[m.end():].lstrip().startswith("("):
            continue
        if m.group().lower() not in KEYWORDS:
            names.add(m.group())
    return names


@pytest.mark.parametrize(("expr", "want"), [
    ('up{job="healthd"} == 0', {"up"}),
    ('absent(up{job="healthd"})', {"up"}),
    ("sum by (instance, le) (rate(a_bucket{x=~\"y|z\"}[10m])) > 2.5", {"a_bucket"}),
    ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
    ("a / on (instance) group_left (version) b offset 5m", {"a", "b"}),
    ("increase(c_total[1h]) > 1e3 and d unless e", {"c_total", "d", "e"}),
], ids=["compare", "absent", "by-clause", "quantile", "on-group-left", "keywords-and-numbers"])
def test_metric_names_are_parsed_out_of_expressions(expr: str, want: set[str]) -> None:
    assert metric_names(expr) == want


def rule_exprs() -> dict[str, str]:
    """alert name -> expression, from the rules file."""
    data = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r["expr"] for g in data["groups"] for r in g["rules"]}


def dashboard_exprs() -> dict[str, str]:
    """'panel / refId' -> expression (Grafana's variables given a value), and the
    templating queries' metric selectors."""
    dash = json.loads(DASHBOARD.read_text())
    out = {f"{p['title']} / {t['refId']}": t["expr"] for p in dash["panels"]
           for t in p.get("targets", [])}
    for var in dash["templating"]["list"]:
        q = var.get("definition", "")
        if q.startswith("label_values("):
            out[f"variable {var['name']}"] = q[len("label_values("):].rsplit(",", 1)[0]
    return {k: v.replace("$instance", ".*") for k, v in out.items()}


def test_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = tool("promtool", "prometheus")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True,
                          text=True, timeout=120, cwd=RULE_TESTS.parent)
    assert test.returncode == 0 and "SUCCESS" in test.stdout, test.stdout + test.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == set(rule_exprs()), "every alert has a promtool unit test"


def test_dashboard_is_grafana_json_with_unique_ids_and_a_prometheus_source() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and dash["uid"] == "healthd"
    assert all(t["datasource"]["uid"] == "${datasource}" for p in dash["panels"]
               for t in p["targets"])
    assert len(dashboard_exprs()) >= 15


class Prometheus:
    """Debian's prometheus on 127.0.0.1 with its config and storage in ``workdir``."""

    def __init__(self, binary: str, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "healthd",
                                "static_configs": [{"targets": [target]}]}],
        }))
        self.log_path = workdir / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:  # 400 for a bad query: return its error body
            with exc:
                return json.loads(exc.read())

    def scrapes(self) -> float:
        res = self.api("query", query='count_over_time(up{job="healthd"}[5m])')
        got = res.get("data", {}).get("result", [])
        return float(got[0]["value"][1]) if got else 0.0

    def log(self) -> str:
        return "--- prometheus log ---\n" + self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def prometheus_and_healthd(engine: Engine, tmp_path: Path) -> Iterator[tuple[Prometheus, Healthd]]:
    binary = tool("prometheus", "prometheus")
    (tmp_path / "healthd").mkdir()
    h = Healthd(engine, tmp_path / "healthd").start()
    p = Prometheus(binary, tmp_path, f"127.0.0.1:{h.port}")
    try:
        yield p, h
    finally:
        p.stop()
        assert h.stop() == 0, h.log()


@pytest.mark.engine
def test_every_expression_runs_against_prometheus_scraping_healthd(
    prometheus_and_healthd: tuple[Prometheus, Healthd]
) -> None:
    prom, h = prometheus_and_healthd
    wait_for(lambda: prom.scrapes() >= 3, 60, what=f"three scrapes of healthd\n{prom.log()}")
    exported = set(prom.api("label/__name__/values", **{"match[]": '{job="healthd"}'})["data"])
    assert "healthd_engine_up" in exported and "healthd_containers" in exported
    assert not [n for n in exported if n.endswith("_created")]

    exprs = {**{f"rule {k}": v for k, v in rule_exprs().items()}, **dashboard_exprs()}
    errors, unknown, with_data = {}, {}, 0
    for where, expr in exprs.items():
        res = prom.api("query", query=expr)
        if res.get("status") != "success":
            errors[where] = res.get("error")
        elif res["data"]["result"]:
            with_data += 1
        names = metric_names(expr)
        bad = sorted(n for n in names if n not in exported
                     or not (n.startswith("healthd_") or n in SYNTHETIC))
        if bad or not names:
            unknown[where] = bad or "no metric named"
    assert errors == {}, errors
    assert unknown == {}, f"names healthd does not export: {unknown}\nexported: {sorted(exported)}"
    print(f"\n{len(exprs)} expressions ran, {with_data} returned data")

    # Prometheus loaded the rules and evaluates them cleanly.
    def evaluated() -> list[dict[str, Any]]:
        rules = [r for g in prom.api("rules")["data"]["groups"] for r in g["rules"]]
        return rules if rules and all(r["lastEvaluation"] > "2000" for r in rules) else []
    rules = wait_for(evaluated, 30, what="rules evaluated")
    assert {r["name"] for r in rules} == set(rule_exprs())
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    firing = [r["name"] for r in rules if r["state"] == "firing"]
    assert firing == [], f"a healthy healthd fires no alert: {firing}"
    assert h.ready()
