"""Service fixtures: a real small ConvLSTM checkpoint, settings and synthetic frames."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ingest.cf_writer import write_synthetic_feed
from model.nets.architectures import build_model
from model.nets.checkpoint import save_checkpoint
from service.settings import Settings
from tests.service.helpers import FEED_START, SMALL_MODEL, service_settings


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (small, untrained) encoder-forecaster in the shipped checkpoint format."""
    torch.manual_seed(0)
    model = build_model(SMALL_MODEL)
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    return save_checkpoint(path, model, SMALL_MODEL, {"note": "test model, untrained"})


@pytest.fixture(scope="session")
def feed(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """24 synthetic CF-NetCDF frames of site synth-01, 6 minutes apart, 96 x 96 cells."""
    folder = tmp_path_factory.mktemp("feed")
    return write_synthetic_feed(folder, 24, start=FEED_START, shape=(96, 96), seed=3)


@pytest.fixture
def settings(tmp_path: Path, small_checkpoint: Path) -> Settings:
    return service_settings(tmp_path / "var", small_checkpoint)
