"""``nowcast health TARGET`` as the container health checks run it: a subprocess, real Redis,
real worker heartbeats, a real API."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from ingest.ingestor import Ingestor
from ingest.worker import IngestWorker
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from service.publish.state import PublishState
from tests.deploy.conftest import subprocess_env
from tests.service.helpers import service_settings
from tests.service.live_server import free_port


def health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "health", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def env(redis_url, tmp_path):
    return subprocess_env(redis_url, tmp_path)


def this_host(pid: int = 4242) -> str:
    """A consumer name as the workers make them: ``<hostname>-<pid>``."""
    return f"{socket.gethostname()}-{pid}"


def test_ingest_is_healthy_while_a_worker_of_this_host_beats(env, redis_conn, tmp_path):
    settings = service_settings(tmp_path / "var", tmp_path / "unused.safetensors")
    worker = IngestWorker(Ingestor(settings, redis_conn), settings)
    assert worker.consumer.startswith(f"{socket.gethostname()}-")

    missing = health(env, "ingest")
    assert missing.returncode == 1
    assert f"no heartbeat from {socket.gethostname()}" in missing.stdout

    worker.heartbeat()
    alive = health(env, "ingest")
    assert alive.returncode == 0, alive.stdout + alive.stderr
    assert worker.consumer in alive.stdout

    redis_conn.flushall()  # the heartbeat expired
    assert health(env, "ingest").returncode == 1


def test_a_worker_on_another_host_does_not_count(env, redis_conn):
    """Each replica of a scaled service checks its own process, not any worker anywhere."""
    from core import keys

    redis_conn.set(f"{keys.INFER_HEALTH}:elsewhere-1", "{}", ex=30)
    redis_conn.set(f"{keys.HEALTH}:{socket.gethostname()}x-1", "1", ex=30)
    assert health(env, "infer").returncode == 1
    assert health(env, "ingest").returncode == 1


def test_infer_is_healthy_once_the_worker_with_its_model_beats(
    env, redis_conn, tmp_path, small_checkpoint
):
    settings = service_settings(tmp_path / "var", small_checkpoint)
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer=this_host())
    assert health(env, "infer").returncode == 1
    worker.heartbeat()
    alive = health(env, "infer")
    assert alive.returncode == 0, alive.stdout + alive.stderr
    assert this_host() in alive.stdout


def test_publish_is_healthy_while_the_publisher_beats(env, redis_conn):
    assert health(env, "publish").returncode == 1
    PublishState(redis_conn, delivered_ttl_s=60).heartbeat(this_host(), "cron")
    alive = health(env, "publish")
    assert alive.returncode == 0, alive.stdout + alive.stderr


def test_worker_checks_fail_clearly_without_their_redis(tmp_path):
    unset = health(subprocess_env(None, tmp_path), "ingest")
    assert unset.returncode == 1 and "REDIS_URL is not set" in unset.stdout
    gone = health(subprocess_env(f"unix://{tmp_path}/no.sock", tmp_path), "infer")
    assert gone.returncode == 1 and "Redis unreachable" in gone.stdout


def test_api_check_asks_the_running_server(env, compose_api, redis_conn):
    alive = health(env, "api", "--port", str(compose_api))
    assert alive.returncode == 0, alive.stdout + alive.stderr
    # /readyz: Redis answers, but no inference worker has a model loaded and no frame came in
    not_ready = health(env, "api", "--port", str(compose_api), "--ready")
    assert not_ready.returncode == 1 and "503" in not_ready.stdout
    nobody = health(env, "api", "--port", str(free_port()), "--timeout", "2")
    assert nobody.returncode == 1 and "unhealthy" in nobody.stdout
    # the default port is the setting the API serves on
    other = {**env, "NOWCAST_HTTP_PORT": str(compose_api)}
    assert health(other, "api").returncode == 0


def test_unknown_target_and_refused_settings_are_errors(env):
    assert health(env, "database").returncode == 2  # usage error, listed targets
    refused = health({**env, "NOWCAST_NO_SUCH_SETTING": "1"}, "api")
    assert refused.returncode == 1 and "settings refused" in refused.stdout
