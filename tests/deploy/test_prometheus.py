"""deploy/prometheus/prometheus.yml against the compose services, and promtool on the config and
on the real /metrics output (in-process API, and `nowcast serve --workers 2` as compose runs it)."""

from __future__ import annotations

import subprocess

import httpx

from tests.deploy.conftest import PROMETHEUS_CONFIG, load_yaml
from tests.deploy.test_compose import option_value


def scrape_targets() -> dict[str, list[tuple[str, int, str]]]:
    """Job -> (host, port, metrics path) of its static and DNS targets."""
    out: dict[str, list[tuple[str, int, str]]] = {}
    for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        targets = out.setdefault(job["job_name"], [])
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                targets.append((host, int(port), path))
        for dns in job.get("dns_sd_configs", []):
            targets.extend((name, int(dns["port"]), path) for name in dns["names"])
    return out


def test_targets_are_the_compose_services_on_the_ports_they_serve(compose):
    services = compose["services"]
    listening = {
        "api": int(option_value(services["api"]["command"], "--port")),
        "inference": int(option_value(services["inference"]["command"], "--metrics-port")),
    }
    scraped = {
        (host, port)
        for targets in scrape_targets().values()
        for host, port, path in targets
        if host != "localhost"
    }
    assert scraped == set(listening.items())
    for targets in scrape_targets().values():
        assert all(path == "/metrics" for _, _, path in targets)


def test_every_inference_replica_is_scraped():
    """`--scale inference=N`: DNS service discovery finds each replica; a static target would
    reach one of them at random."""
    (job,) = [
        j for j in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"] if "inference" in j["job_name"]
    ]
    assert "static_configs" not in job
    assert job["dns_sd_configs"][0]["type"] == "A"


def test_promtool_accepts_the_config(promtool):
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def check_metrics(promtool: str, exposition: str) -> None:
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (result.stdout + result.stderr).strip()  # no lint remark either


def test_promtool_accepts_the_live_metrics(promtool, live_metrics):
    assert "nowcast_verification_cells{" in live_metrics  # families with samples, not just HELP
    check_metrics(promtool, live_metrics)


def test_promtool_accepts_the_metrics_of_api_workers_in_multiprocess_mode(promtool, compose_api):
    base = f"http://127.0.0.1:{compose_api}"
    for _ in range(4):
        httpx.get(f"{base}/v1/sites").raise_for_status()
    exposition = httpx.get(f"{base}/metrics").text
    assert "nowcast_http_request_duration_seconds_bucket{" in exposition
    check_metrics(promtool, exposition)
