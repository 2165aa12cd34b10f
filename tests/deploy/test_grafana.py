"""The provisioned Grafana data source and dashboard: wired to the compose services, and every
PromQL query names series (and labels) that the live /metrics output has."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import GRAFANA_DIR, load_yaml

DASHBOARD = GRAFANA_DIR / "dashboards" / "nowcast.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def datasource() -> dict[str, Any]:
    (source,) = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    return source


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variables."""
    out = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    out += [v["definition"] for v in dashboard()["templating"]["list"]]
    return out


def exposed(metrics_text: str) -> dict[str, set[str] | None]:
    """Series name -> its label names, from a /metrics text.

    A family without samples (a counter nothing has counted yet) still names its series through
    its type (counter ``_total``; histogram ``_bucket``, ``_sum``, ``_count``); its labels are
    unknown (None).
    """
    out: dict[str, set[str] | None] = {}
    for family in text_string_to_metric_families(metrics_text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            out.setdefault(family.name + suffix, None)
        for sample in family.samples:
            out[sample.name] = (out.get(sample.name) or set()) | set(sample.labels)
    return out


def test_grafana_reaches_the_compose_prometheus(compose):
    source = datasource()
    assert source["type"] == "prometheus" and source["isDefault"]
    host, port = source["url"].removeprefix("http://").split(":")
    assert host in compose["services"]
    # the compose network reaches the container's port; the host sees it on 127.0.0.1 only
    assert f"127.0.0.1:{port}:{port}" in compose["services"][host]["ports"]


def test_the_dashboard_is_provisioned_from_the_mounted_folder(compose):
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    (provider,) = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "nowcast.yml")[
        "providers"
    ]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert str(home.parent) == provider["options"]["path"] and home.name == DASHBOARD.name


def test_every_panel_uses_the_provisioned_datasource_and_fits_the_grid():
    uid = datasource()["uid"]
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
    for variable in dashboard()["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid


@pytest.mark.parametrize("expr", queries())
def test_every_query_names_series_and_labels_the_service_exposes(expr, live_metrics):
    series = exposed(live_metrics)
    names = re.findall(r"\b(nowcast_[a-z0-9_]+)\b", expr)
    assert names, f"no nowcast series in {expr}"
    labels: set[str] = set()
    for name in names:
        assert name in series, f"{name} is not in the live /metrics output"
        labels |= series[name] or set()
    if not all(series[name] is not None for name in names):
        return  # a family without samples yet: its labels are not known
    used = {
        label
        for matchers in re.findall(r"nowcast_\w+\{([^}]*)\}", expr)
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers)
    }
    for grouping in re.findall(r"\bby \(([^)]*)\)", expr):
        used |= {label.strip() for label in grouping.split(",")}
    used |= set(re.findall(r"label_values\(\w+, (\w+)\)", expr))
    assert used <= labels, f"labels {used - labels} unknown to {names}"


def test_the_dashboard_shows_skill_ingest_inference_and_api():
    text = "\n".join(queries())
    # sites pooled through the contingency counts, by lead step (cadences may differ) ...
    for outcome in ("hit", "hit|miss", "false_alarm", "hit|false_alarm"):
        cells = rf'nowcast_verification_cells\{{outcome=~?"{re.escape(outcome)}"'
        pooled = rf"sum by \(method, lead_step\) \({cells}"
        assert re.search(pooled, text), outcome
    for name in (
        "nowcast_frames_accepted_total",
        "nowcast_frames_quarantined_total",
        "nowcast_forecasts_issued_total",
        "nowcast_forecasts_refused_total",
        "nowcast_ingest_lag_seconds",
    ):
        assert name in text
    assert "histogram_quantile(0.99, sum by (le, route) (rate(nowcast_http_request_duration" in text
    inference = [q for q in queries() if "nowcast_inference_duration_seconds_bucket" in q]
    assert len(inference) == 3 and all(q.startswith("histogram_quantile(") for q in inference)


def test_every_query_is_valid_promql(promtool, tmp_path):
    """promtool parses each query as the expression of a recording rule (Grafana's variables
    replaced by values they take)."""
    values = {
        "$__rate_interval": "1m",
        "$method": ".*",
        "$lead": ".*",
        "$threshold": "0.5",
        "$site": "synth-01",
    }
    rules = []
    for i, expr in enumerate(q for q in queries() if not q.startswith("label_values(")):
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_row_per_site_shows_its_skill_against_the_baselines():
    """One row repeated over the ``site`` variable (every site with a window); each of its
    panels filters on that site: its CSI from its own counts, and relative to extrapolation."""
    panels = dashboard()["panels"]
    (row,) = [p for p in panels if p["type"] == "row" and p.get("repeat")]
    assert row["repeat"] == "site" and "$site" in row["title"]
    start = panels.index(row) + 1
    end = next(i for i in range(start, len(panels)) if panels[i]["type"] == "row")
    exprs = [t["expr"] for p in panels[start:end] for t in p["targets"]]
    assert exprs and all('site="$site"' in e for e in exprs)
    text = "\n".join(exprs)
    assert "sum by (method) (nowcast_site_verification_cells{" in text
    assert re.search(
        r'/ on\(site, threshold_mmh\) group_left nowcast_skill_csi_6h\{[^}]*method="extrapolation"',
        text,
    )
    (site,) = [v for v in dashboard()["templating"]["list"] if v["name"] == "site"]
    assert site["includeAll"] and site["multi"]
