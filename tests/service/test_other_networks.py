"""The family's other networks served by name: inference worker, verification and the API."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import torch

from ingest.ingestor import Ingestor
from model.nets.architectures import build_model
from model.nets.checkpoint import save_checkpoint
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from tests.service.helpers import SMALL_MODEL, service_settings
from tests.service.live_server import serving

SITE = "synth-01"
METHODS = ("saconvlstm", "fclstm", "persistence")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("family")
    torch.manual_seed(0)
    configs = {
        "saconvlstm": replace(SMALL_MODEL, architecture="saconvlstm", attention_channels=8),
        "fclstm": replace(SMALL_MODEL, architecture="fclstm", patch_size=4, hidden_channels=(16,)),
    }
    return {
        name: save_checkpoint(folder / f"{name}.safetensors", build_model(c), c, {})
        for name, c in configs.items()
    }


def test_other_networks_are_forecast_verified_and_served_by_name(
    tmp_path, redis_conn, small_checkpoint, checkpoints, feed
):
    settings = service_settings(
        tmp_path / "var",
        small_checkpoint,
        methods=METHODS,
        checkpoints=checkpoints,
        publish_method="saconvlstm",
    )
    runner = MethodRunner(settings)
    assert set(runner.versions) == set(METHODS)
    assert runner.versions["saconvlstm"].startswith("saconvlstm-")
    assert runner.model_version == runner.versions["saconvlstm"]  # the first learned one
    ingestor = Ingestor(settings, redis_conn)
    for path in feed[:7]:
        assert ingestor.ingest_bytes(path.read_bytes(), str(path)).outcome == "accepted"
    worker = InferenceWorker(settings, redis_conn, runner, consumer="family")
    while worker.process_once() > 0:
        pass
    with serving(create_app(settings, redis_conn)) as base_url:
        for method in ("saconvlstm", "fclstm"):
            reply = httpx.get(
                f"{base_url}/v1/sites/{SITE}/nowcast/latest",
                params={"method": method, "frames": "false"},
            )
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["method"] == method and len(body["lead_minutes"]) == 15
            netcdf = httpx.get(
                f"{base_url}/v1/sites/{SITE}/nowcast/latest",
                params={"method": method, "format": "netcdf"},
            )
            assert netcdf.status_code == 200 and netcdf.content[:4] == b"\x89HDF"
        verification = httpx.get(f"{base_url}/v1/verification", params={"site": SITE}).json()
        assert set(verification["methods"]) == set(METHODS)  # scored side by side
        refused = httpx.get(
            f"{base_url}/v1/sites/{SITE}/nowcast/latest", params={"method": "convlstm"}
        )
        assert refused.status_code == 422 and "saconvlstm, fclstm" in refused.text


def test_a_checkpoint_of_the_wrong_network_stops_the_worker_at_start(
    tmp_path, small_checkpoint, checkpoints
):
    settings = service_settings(
        tmp_path / "var",
        small_checkpoint,
        methods=("fclstm",),
        checkpoints={"fclstm": checkpoints["saconvlstm"]},
        publish_method="fclstm",
    )
    with pytest.raises(ValueError, match="holds a saconvlstm network, not fclstm"):
        MethodRunner(settings)
