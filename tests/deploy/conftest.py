"""Deployment fixtures: the repository's deploy files, a live /metrics exposition, a running API.

No Docker engine is needed: the configs are parsed, and the processes they name run here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from core.settings import SubscriberConfig
from ingest.cf_writer import write_synthetic_feed
from ingest.ingestor import Ingestor
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from tests.conftest import REPO_ROOT
from tests.service.conftest import small_checkpoint  # noqa: F401 (shared fixture)
from tests.service.helpers import service_settings
from tests.service.live_server import free_port, serving

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
GPU_COMPOSE_FILE = REPO_ROOT / "docker-compose.gpu.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_DIR = REPO_ROOT / "deploy" / "grafana"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (Debian package prometheus; ./run.sh test installs it where it can)."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool not found: install the Debian package prometheus (./run.sh test does)"
        )
    return path


def subprocess_env(redis_url: str | None, data_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without NOWCAST_* settings, pointed at ``redis_url`` and ``data_dir``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NOWCAST_") and k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env["NOWCAST_DATA_DIR"] = str(data_dir)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def live_metrics(
    redis_server: redis.Redis,
    small_checkpoint: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The API's /metrics text after real work, so that every family has samples.

    Frames of the last hour ingested one by one (one more quarantined), forecasts refused while
    warming up, then issued and verified by a real inference worker, and HTTP requests served;
    one file subscriber configured, nothing published yet.
    """
    redis_server.flushall()
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=48)
    feed = write_synthetic_feed(tmp_path_factory.mktemp("recent"), 8, start=start,
                                shape=(96, 96), seed=3)  # fmt: skip
    var = tmp_path_factory.mktemp("var")
    subscriber = SubscriberConfig(name="ops-folder", kind="file", folder=var / "published")
    settings = service_settings(var, small_checkpoint, subscribers=(subscriber,))
    ingestor = Ingestor(settings, redis_server)
    worker = InferenceWorker(settings, redis_server, MethodRunner(settings), consumer="deploy")
    assert ingestor.ingest_bytes(b"not a netcdf file" * 10, "garbage.nc").outcome == "quarantined"
    try:
        with serving(create_app(settings, redis_server)) as base_url:
            for path in feed[:8]:
                assert ingestor.ingest_bytes(path.read_bytes(), str(path)).outcome == "accepted"
                while worker.process_once() > 0:
                    pass
            httpx.get(f"{base_url}/v1/sites").raise_for_status()
            httpx.get(f"{base_url}/v1/verification").raise_for_status()
            response = httpx.get(f"{base_url}/metrics")
            response.raise_for_status()
            return response.text
    finally:
        redis_server.flushall()


def wait_until_healthy(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    """Until GET /healthz answers 200; fails with the server's log if it exits or takes 60 s."""
    deadline = time.monotonic() + 60
    while not _answers(f"http://127.0.0.1:{port}/healthz"):
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no answer in 60 s\n{log.read_text()}"
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def compose_api(
    redis_server: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """``nowcast serve --workers 2`` with PROMETHEUS_MULTIPROC_DIR, as compose runs the API.

    Yields its port on 127.0.0.1. Its output goes to a log file (a pipe nobody reads during
    the session could fill up and stall it).
    """
    folder = tmp_path_factory.mktemp("compose-api")
    (folder / "metrics").mkdir()
    port = free_port()
    env = subprocess_env(
        f"unix://{redis_server.socket_file}",
        folder,
        PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
    )
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    log = folder / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *serve], env=env, stdout=out, stderr=out
        )
    try:
        wait_until_healthy(port, server, log)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
