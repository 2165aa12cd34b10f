"""docker-compose.yml (and the GPU override) without a Docker engine: parsed and checked against
the real ``nowcast`` command, the settings and the Dockerfile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from core.settings import ENV_PREFIX
from service.cli import app
from service.health_cli import Target
from service.settings import Settings
from tests.conftest import REPO_ROOT
from tests.deploy.conftest import COMPOSE_FILE, GPU_COMPOSE_FILE, load_yaml
from tests.deploy.test_dockerfile import dockerfile_args

# compose service -> its verb -> the target of `nowcast health` that checks it
NOWCAST_SERVICES = {
    "ingest": "ingest",
    "inference": "infer",
    "api": "serve",
    "publisher": "publish",
}
HEALTH_TARGET = {
    "ingest": Target.ingest,
    "infer": Target.infer,
    "serve": Target.api,
    "publish": Target.publish,
}
REQUIRED_VARIABLES = {"NOWCAST_API_KEYS", "NOWCAST_SUBSCRIBERS", "GRAFANA_ADMIN_PASSWORD"}
# what an operator would set for the required variables (valid values, not secrets)
EXAMPLE_VALUES = {
    "NOWCAST_API_KEYS": '["k7Hq2mZp9xWc4vRt"]',
    "NOWCAST_SUBSCRIBERS": '[{"name": "archive", "kind": "file", "folder": "/data/published"}]',
    "GRAFANA_ADMIN_PASSWORD": "not-used-here",
}


def verbs() -> dict[str, Any]:
    """The verbs of ``nowcast`` by name: the commands of typer's click group."""
    return dict(typer.main.get_command(app).commands)


def option_value(command: list[str], option: str) -> str:
    assert option in command, f"{option} missing from {command}"
    return command[command.index(option) + 1]


def variables(path: Path) -> list[tuple[str, str]]:
    """(name, what follows it) of each ${...} in a compose file, comment lines left out."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    return re.findall(r"\$\{(\w+)([^}]*)\}", "\n".join(lines))


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message}, with the example values for the latter."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        return rest if kind == ":-" else EXAMPLE_VALUES[name]

    return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", one, value)


def test_the_compose_files_follow_the_compose_specification(tmp_path):
    """Both compose files validate against the Compose specification's JSON schema (as
    vendored by check-jsonschema, a dev dependency)."""
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert tool, "check-jsonschema is in the dev extra"
    files = [str(COMPOSE_FILE), str(GPU_COMPOSE_FILE)]
    command = [tool, "--builtin-schema", "vendor.compose-spec", *files]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # ... and the schema does refuse what is not Compose
    broken = tmp_path / "broken-compose.yml"
    broken.write_text("services:\n  api:\n    image: nowcast\n    helthcheck: {}\n")
    refused = subprocess.run([*command[:3], str(broken)], capture_output=True, text=True)
    assert refused.returncode == 1 and "helthcheck" in refused.stdout + refused.stderr


def test_the_stack_has_every_service(compose):
    assert set(compose["services"]) == {
        "redis",
        "ingest",
        "inference",
        "api",
        "publisher",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    declared = set(compose["volumes"])
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("/", ".", "$")):
                assert source in declared, f"named volume {source} is not declared"


@pytest.mark.parametrize("name", sorted(NOWCAST_SERVICES))
def test_each_process_runs_a_real_verb_with_real_options(compose, name):
    service = compose["services"][name]
    command = service["command"]
    assert service["image"].startswith("nowcast:") and service["build"]["context"] == "."
    assert command[0] == "nowcast"
    verb = NOWCAST_SERVICES[name]
    assert command[1] == verb
    known = verbs()
    assert verb in known, f"{name}: nowcast has no verb {verb!r} ({sorted(known)})"
    options = {opt for param in known[verb].params for opt in param.opts}
    used = [arg for arg in command[2:] if arg.startswith("-")]
    assert set(used) <= options, f"{name}: unknown options {set(used) - options}"


@pytest.mark.parametrize("name", sorted(NOWCAST_SERVICES))
def test_health_checks_call_the_process_own_check(compose, name):
    service = compose["services"][name]
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "nowcast", "health"]
    assert test[3] == HEALTH_TARGET[NOWCAST_SERVICES[name]]
    assert "health" in verbs()


def test_ports_match_the_commands_and_bind_outside_the_container(compose):
    services = compose["services"]
    api = services["api"]["command"]
    port = option_value(api, "--port")
    assert option_value(api, "--host") == "0.0.0.0"
    assert f"{port}:{port}" in services["api"]["ports"]
    assert option_value(services["api"]["healthcheck"]["test"], "--port") == port
    assert int(port) == Settings().http_port  # the image's default command and check agree

    inference = services["inference"]
    metrics_port = option_value(inference["command"], "--metrics-port")
    assert metrics_port in inference["expose"]
    # `nowcast infer` binds its metrics server to NOWCAST_HTTP_HOST (127.0.0.1 by default)
    assert inference["environment"]["NOWCAST_HTTP_HOST"] == "0.0.0.0"


def test_api_workers_share_metrics_through_a_tmpfs(compose):
    api = compose["services"]["api"]
    assert int(option_value(api["command"], "--workers")) > 1
    folder = api["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert any(entry.split(":")[0] == folder for entry in api["tmpfs"])


def test_required_variables_are_marked_and_nothing_is_left_unset():
    references = variables(COMPOSE_FILE)
    assert references
    for name, tail in references:
        assert tail.startswith((":?", ":-")), f"${{{name}}} has neither a default nor :?"
    required = {name for name, tail in references if tail.startswith(":?")}
    assert required == REQUIRED_VARIABLES
    assert all(len(tail) > 2 for name, tail in references if name in required)  # says what


def test_host_variables_do_not_look_like_settings():
    """A NOWCAST_* variable that is no setting would be refused by `nowcast` in that shell."""
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    for path in (COMPOSE_FILE, GPU_COMPOSE_FILE):
        for name, _ in variables(path):
            assert not name.startswith(ENV_PREFIX) or name in fields, f"{path.name}: {name}"


@pytest.mark.parametrize("name", sorted(NOWCAST_SERVICES))
def test_each_process_environment_is_accepted_by_the_settings(compose, name, monkeypatch):
    """Settings refuse unknown NOWCAST_* variables: every one set in compose must be real."""
    environment = dict(compose["services"][name]["environment"])
    if name == "inference":
        environment.update(load_yaml(GPU_COMPOSE_FILE)["services"]["inference"]["environment"])
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, interpolate(str(value)))
    settings = Settings()
    assert settings.redis_url == "redis://redis:6379/0"
    assert str(settings.data_dir) == "/data"


def test_start_order_waits_for_health(compose):
    services = compose["services"]
    for name in NOWCAST_SERVICES:
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    for name, service in services.items():
        assert "test" in service["healthcheck"], f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency]


def test_workers_get_time_to_finish_their_item(compose):
    """SIGTERM lets the current item finish within stop_timeout_s; compose must wait longer."""
    limit = Settings().stop_timeout_s
    for name in ("ingest", "inference", "publisher"):
        grace = compose["services"][name]["stop_grace_period"]
        assert grace.endswith("s") and float(grace[:-1]) > limit


def test_redis_persists_and_is_checked(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert option_value(redis["command"], "--appendonly") == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_monitoring_mounts_the_repository_configs(compose):
    services = compose["services"]
    mounted = {
        v.split(":")[0]: v.split(":")[1]
        for name in ("prometheus", "grafana")
        for v in services[name]["volumes"]
    }
    for source in [s for s in mounted if s.startswith("./")]:
        assert (REPO_ROOT / source).exists(), source
    config = option_value(
        [part for arg in services["prometheus"]["command"] for part in arg.split("=", 1)],
        "--config.file",
    )
    assert mounted["./deploy/prometheus/prometheus.yml"] == config


def test_gpu_override_reserves_a_gpu_and_builds_the_cuda_variant():
    inference = load_yaml(GPU_COMPOSE_FILE)["services"]["inference"]
    devices = inference["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    args = inference["build"]["args"]
    assert set(args) <= dockerfile_args()
    assert interpolate(args["TORCH_VARIANT"]).startswith("cu")
    assert inference["image"] != load_yaml(COMPOSE_FILE)["services"]["inference"]["image"]


def test_unauthenticated_monitoring_ports_are_bound_to_this_host_only():
    """Prometheus and Alertmanager have no authentication: never published on every
    interface (the API has keys; Grafana its admin password)."""
    services = load_yaml(COMPOSE_FILE)["services"]
    for name in ("prometheus", "alertmanager"):
        for port in services[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_the_stack_quarantines_frames_a_day_old_as_a_live_feed():
    env = load_yaml(COMPOSE_FILE)["x-nowcast-env"]
    assert env["NOWCAST_MAX_AGE_MIN"].startswith("${NOWCAST_MAX_AGE_MIN:-")
