"""The monitoring stack as it runs: a real Prometheus scrapes the service's live /metrics with
the repository's alert rules, and sends to a real Alertmanager configured from
deploy/alertmanager/alertmanager.yml, which posts to a local webhook receiver.

Two changes to the shipped files, so that the test takes seconds and not minutes: every rule's
``for`` becomes 0s and the route's ``group_wait`` 1s; the receiver's URL is the local one.
Each rule's own logic and timing is proven by ``promtool test rules`` (test_alert_rules.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, load_yaml
from tests.deploy.test_grafana import queries
from tests.service.live_server import free_port

DEPLOY = REPO_ROOT / "deploy"
GRAFANA_VALUES = {
    "$__rate_interval": "1m",
    "$method": ".*",
    "$lead": ".*",
    "$threshold": "0.5",
    "$site": "synth-01",
}


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found: install the Debian package {package} (./run.sh test does)")
    return path


class _Sink(ThreadingHTTPServer):
    """GET /metrics answers a fixed exposition; every POST body is kept."""

    metrics = b""
    posts: list[Any]


class _Handler(BaseHTTPRequestHandler):
    server: _Sink

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.server.metrics)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args[0]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready within 60 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def stack(live_metrics: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prometheus = _binary("prometheus", "prometheus")
    alertmanager = _binary("prometheus-alertmanager", "prometheus-alertmanager")
    work = tmp_path_factory.mktemp("stack")
    sink = _Sink(("127.0.0.1", 0), _Handler)
    sink.metrics, sink.posts = live_metrics.encode(), []
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"

    manager = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    manager["route"]["group_wait"] = "1s"
    for receiver in manager["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{sink_url}/alerts"
    (work / "alertmanager.yml").write_text(yaml.safe_dump(manager))
    am_port, cluster_port, prom_port = free_port(), free_port(), free_port()

    rules = load_yaml(DEPLOY / "prometheus" / "rules" / "nowcast.yml")
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "0s"
    (work / "rules.yml").write_text(yaml.safe_dump(rules))
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(work / "rules.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{am_port}"
    ]
    (api_job,) = [job for job in config["scrape_configs"] if job["job_name"] == "nowcast-api"]
    api_job["static_configs"] = [{"targets": [f"127.0.0.1:{sink.server_address[1]}"]}]
    config["scrape_configs"] = [api_job]
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))

    am_log, prom_log = work / "alertmanager.log", work / "prometheus.log"
    processes = [
        _start(
            [
                alertmanager,
                f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                f"--cluster.listen-address=127.0.0.1:{cluster_port}",
            ],
            am_log,
        ),
        _start(
            [
                prometheus,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            prom_log,
        ),
    ]
    try:
        _wait(f"http://127.0.0.1:{am_port}/-/ready", processes[0], am_log)
        _wait(f"http://127.0.0.1:{prom_port}/-/ready", processes[1], prom_log)
        yield {"prometheus": f"http://127.0.0.1:{prom_port}", "posts": sink.posts}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        sink.shutdown()


def _query(base_url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/api/v1/query", params={"query": expr}, timeout=10)
    response.raise_for_status()
    return list(response.json()["data"]["result"])


def test_a_firing_alert_reaches_the_webhook_receiver_through_alertmanager(stack):
    """The live metrics have no ingest worker alive: NowcastWorkerDown fires, and Alertmanager
    posts it, with its runbook, to the receiver."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        alerts = [a for post in stack["posts"] for a in post["alerts"]]
        down = [a for a in alerts if a["labels"]["alertname"] == "NowcastWorkerDown"]
        if down:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no NowcastWorkerDown delivered in 90 s; got {stack['posts']}")
    post = next(p for p in stack["posts"] if any(a in down for a in p["alerts"]))
    assert post["version"] == "4" and post["status"] == "firing"
    assert "ingest" in {a["labels"]["kind"] for a in down}
    assert "Restart the worker" in down[0]["annotations"]["runbook"]
    assert down[0]["labels"]["severity"] == "critical"


def test_every_dashboard_query_has_data_from_the_live_metrics(stack):
    """No Grafana panel stays empty on a running service: each query, its variables set to
    values the live metrics hold, returns series once Prometheus has scraped a few times."""
    wanted = [q for q in queries() if not q.startswith("label_values(")]
    exprs = []
    for expr in wanted:
        for variable, value in GRAFANA_VALUES.items():
            expr = expr.replace(variable, value)
        exprs.append(expr)
    deadline = time.monotonic() + 60
    while True:
        empty = [expr for expr in exprs if not _query(stack["prometheus"], expr)]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not empty, "panels without data:\n" + "\n".join(empty)
    for variable in (q for q in queries() if q.startswith("label_values(")):
        metric, label = variable.removeprefix("label_values(").rstrip(")").split(", ")
        values = {s["metric"].get(label) for s in _query(stack["prometheus"], metric)}
        assert values - {None}, variable
