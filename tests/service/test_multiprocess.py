"""``nowcast serve --workers 2``: two API processes on one Redis, metrics summed across them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from tests.service.live_server import free_port


def _count(metrics_text: str, route: str) -> float:
    pattern = (
        r'nowcast_http_request_duration_seconds_count\{method="GET",route="'
        + re.escape(route)
        + r'",status="200"\} ([\d.e+]+)'
    )
    return sum(float(v) for v in re.findall(pattern, metrics_text))


def test_two_api_processes_share_redis_and_report_all_requests(tmp_path, redis_url):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
    env.update(
        REDIS_URL=redis_url,
        NOWCAST_DATA_DIR=str(tmp_path),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    (tmp_path / "metrics").mkdir()
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "API workers did not start"
                time.sleep(0.2)
        requests = 60
        for _ in range(requests):
            with httpx.Client() as fresh:  # a new connection each time: both workers serve
                fresh.get(f"{base}/v1/sites").raise_for_status()
        text = httpx.get(f"{base}/metrics").text
        assert _count(text, "/v1/sites") == requests
        assert "nowcast_redis_up 1.0" in text
        files = [f.name for f in (tmp_path / "metrics").iterdir()]
        assert len({re.sub(r"\D", "", name) for name in files}) >= 2  # two processes wrote
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
