"""Checkpoints: architecture travels with the weights; atomic writes; bad files refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from model.nets.architectures import build_model
from model.nets.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from model.nets.config import NetworkConfig
from model.nets.convlstm import EncoderForecaster

SMALL = NetworkConfig(in_frames=5, out_frames=3, frame_cells=16, hidden_channels=(8, 4))
META = {
    "normalisation": {"max_dbz": 70.0, "min_dbz": 0.0, "version": "grey-v1"},
    "training_data": {"events": ["a", "b"], "windows": {"train": 10}},
    "validation": {"loss": 0.123, "scores": {"csi": {"0.5": [0.5, None]}}},
    "epoch": 3,
    "step": np.int64(120),
}


@pytest.fixture
def model() -> EncoderForecaster:
    model = build_model(SMALL)
    with torch.no_grad():  # non-default peepholes so the round trip covers them
        for cell in [*model.encoder, *model.forecaster]:
            assert cell.w_ci is not None
            cell.w_ci.uniform_(-0.1, 0.1)
    return model


@pytest.fixture
def saved(tmp_path: Path, model: EncoderForecaster) -> Path:
    return save_checkpoint(tmp_path / "ckpt" / "convlstm.safetensors", model, SMALL, META)


def rewrite(path: Path, *, drop: str | None = None, **metadata: str) -> None:
    """Re-save ``path`` with some metadata replaced and/or one tensor dropped."""
    with safe_open(str(path), framework="pt") as handle:
        old = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    if drop is not None:
        del tensors[drop]
    save_file(tensors, str(path), metadata={**old, **metadata})


def test_round_trip_gives_identical_outputs(saved: Path, model: EncoderForecaster) -> None:
    loaded, config, meta = load_checkpoint(saved)
    assert config == SMALL and loaded.config == SMALL
    assert not loaded.training
    x = torch.rand(2, 5, 16, 16)
    assert torch.equal(loaded(x), model(x))
    assert meta["normalisation"] == META["normalisation"]
    assert meta["step"] == 120 and meta["epoch"] == 3
    assert meta["validation"]["scores"]["csi"]["0.5"] == [0.5, None]
    assert meta["format_version"] == FORMAT_VERSION and meta["created_utc"]


def test_write_is_atomic_and_replaces(
    tmp_path: Path, saved: Path, model: EncoderForecaster
) -> None:
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temp file left
    with torch.no_grad():
        model.head.weight.fill_(0.25)
    save_checkpoint(saved, model, SMALL, {"epoch": 4})
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]
    loaded, _, meta = load_checkpoint(saved)
    assert meta["epoch"] == 4 and torch.equal(loaded.head.weight, model.head.weight)


def test_failed_write_leaves_the_old_file(saved: Path, model: EncoderForecaster) -> None:
    before = saved.read_bytes()
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(saved, model, SMALL, {"bad": object()})
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_metadata_is_plain_json(saved: Path) -> None:
    with safe_open(str(saved), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["format_version"] == str(FORMAT_VERSION)
    assert json.loads(metadata["config"]) == SMALL.to_dict()
    assert json.loads(metadata["meta"])["normalisation"]["version"] == "grey-v1"


def test_config_mismatch_is_refused_on_save(tmp_path: Path, model: EncoderForecaster) -> None:
    other = NetworkConfig(in_frames=5, out_frames=3, frame_cells=16, hidden_channels=(8, 8))
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "x.safetensors", model, other, {})


def test_load_on_requested_device(saved: Path) -> None:
    loaded, _, _ = load_checkpoint(saved, device=torch.device("cpu"))
    assert all(p.device.type == "cpu" for p in loaded.parameters())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_not_a_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(ValueError):
        load_checkpoint(path)


def test_truncated_file(saved: Path) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        load_checkpoint(saved)


def test_altered_tensor_bytes(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0xFF  # inside the last tensor's data
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="digest"):
        load_checkpoint(saved)


def test_plain_safetensors_without_our_metadata(tmp_path: Path, model: EncoderForecaster) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with pytest.raises(ValueError, match="not a"):
        load_checkpoint(path)


def test_wrong_format_version(saved: Path) -> None:
    rewrite(saved, format_version=str(FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="version"):
        load_checkpoint(saved)


def test_missing_tensor(saved: Path) -> None:
    with safe_open(str(saved), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    del tensors["head.bias"]
    from model.nets.checkpoint import _tensors_digest

    # a consistent digest, so the tensor check itself is what refuses the file
    rewrite(saved, drop="head.bias", tensors_sha256=_tensors_digest(tensors))
    with pytest.raises(ValueError, match="missing"):
        load_checkpoint(saved)


def test_config_that_does_not_fit_the_tensors(saved: Path) -> None:
    rewrite(saved, config=json.dumps({**SMALL.to_dict(), "hidden_channels": [8, 8]}))
    with pytest.raises(ValueError, match="wrong shape"):
        load_checkpoint(saved)


def test_unknown_config_key(saved: Path) -> None:
    rewrite(saved, config=json.dumps({**SMALL.to_dict(), "dropout": 0.1}))
    with pytest.raises(ValueError, match="unknown"):
        load_checkpoint(saved)
