"""The alert rules (deploy/prometheus/rules/nowcast.yml): promtool's unit tests, the stack wiring
(Prometheus loads them and sends to Alertmanager), and the metrics they read exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.deploy.conftest import load_yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules"


def test_every_alert_has_a_promtool_unit_test_that_passes(promtool):
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"] for g in load_yaml(RULES / "nowcast.yml")["groups"] for r in g["rules"]}
    tested = {
        case["alertname"]
        for test in load_yaml(RULES / "tests.yml")["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == tested  # each alert is shown firing in a test
    assert alerts >= {
        "NowcastRadarFeedStale",
        "NowcastForecastsStopped",
        "NowcastWorkerDown",
        "NowcastDeadLetters",
        "NowcastRedisMemoryHigh",
        "NowcastApiErrors",
        "NowcastLearnedModelBelowExtrapolation",
    }


def test_every_alert_says_what_to_do_and_how_bad_it_is():
    for group in load_yaml(RULES / "nowcast.yml")["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"] and len(rule["annotations"]["runbook"]) > 40


def test_prometheus_loads_the_rules_and_alertmanager_receives_them(promtool, compose):
    config = DEPLOY / "prometheus" / "prometheus.yml"
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    prometheus = yaml.safe_load(config.read_text())
    targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    assert "alertmanager" in compose["services"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    manager = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    receivers = {r["name"]: r for r in manager["receivers"]}
    assert receivers[manager["route"]["receiver"]]["webhook_configs"][0]["url"].startswith("http")


def test_the_metrics_the_rules_read_are_exported():
    """Every metric name in an alert expression is one the service exports."""
    exported = set()
    for module in ("service/metrics.py", "service/ops_metrics.py", "service/publish/metrics.py"):
        text = (DEPLOY.parent / module).read_text()
        exported |= set(re.findall(r'"(nowcast_[a-z0-9_]+)"', text))
    histogram = {"nowcast_http_request_duration_seconds"}  # its _count series
    for group in load_yaml(RULES / "nowcast.yml")["groups"]:
        for rule in group["rules"]:
            for name in re.findall(r"nowcast_[a-z0-9_]+", rule["expr"]):
                base = name.removesuffix("_count")
                assert name in exported or base in histogram, (rule["alert"], name)
