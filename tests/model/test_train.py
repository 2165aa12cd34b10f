"""The trainer on tiny synthetic events: logs, checkpoint, determinism, early stopping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ingest.normalize import NormParams
from model.data.events import Event
from model.data.split import split_windows
from model.nets.checkpoint import load_checkpoint
from model.nets.config import NetworkConfig
from model.training.batches import dihedral
from model.training.train import TrainConfig, train

START = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = NetworkConfig(frame_cells=16, hidden_channels=(4, 4))


def moving_square_event(name: str, n: int = 60) -> Event:
    grey = np.zeros((n, 16, 16), np.float32)
    for t in range(n):
        c = t % 12
        grey[t, 4:8, c : c + 4] = 0.6
    times = tuple(START + timedelta(minutes=6 * t) for t in range(n))
    return Event(name, "s-1", times, grey, 6.0, "n1-test")


def _run(tmp_path, **overrides):
    events = [moving_square_event(f"e{i}") for i in range(3)]
    windows, _ = split_windows(events, 5, 15, block_frames=20)
    settings = {"max_epochs": 2, "batch_size": 4, "patience": 2, "seed": 3, **overrides}
    out = tmp_path / "ck.safetensors"
    result = train(
        events,
        windows,
        CONFIG,
        TrainConfig(**settings),
        NormParams(),
        out,
        tmp_path / "logs",
        {"events": ["synthetic"]},
    )
    return result, out


def test_training_writes_logs_and_a_loadable_checkpoint(tmp_path):
    result, out = _run(tmp_path)
    assert [h.epoch for h in result.history] == [1, 2]
    rows = json.loads((tmp_path / "logs" / "train_log.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (tmp_path / "logs" / "train_log.csv").read_text().startswith("epoch,train_loss")
    _model, config, meta = load_checkpoint(out)
    assert config == CONFIG
    assert meta["epoch"] == result.best_epoch
    assert meta["validation"]["loss"] == pytest.approx(result.best_validation_loss)
    assert meta["normalisation"]["version"] == NormParams().version
    assert "csi" in meta["validation"]["scores"]


def test_training_is_deterministic_for_a_seed(tmp_path):
    first, _ = _run(tmp_path / "a", max_epochs=1)
    second, _ = _run(tmp_path / "b", max_epochs=1)
    assert first.history[0].train_loss == second.history[0].train_loss


def test_no_validation_windows_is_refused(tmp_path):
    events = [moving_square_event("e0", n=20)]
    windows, _ = split_windows(events, 5, 15, block_frames=20)
    with pytest.raises(ValueError, match="validation"):
        train(events, windows, CONFIG, TrainConfig(), NormParams(), tmp_path / "x", tmp_path, {})


def test_dihedral_covers_the_eight_symmetries():
    square = np.arange(9).reshape(1, 3, 3)
    images = {dihedral(square, k).tobytes() for k in range(8)}
    assert len(images) == 8


def test_continuing_from_a_checkpoint_selected_by_csi(tmp_path):
    _first, out = _run(tmp_path / "a", max_epochs=1)
    _result, second = _run(tmp_path / "b", max_epochs=1, init_from=str(out), select_by="csi")
    _model, _config, meta = load_checkpoint(second)
    assert meta["initialised_from"]["epoch"] == 1
    assert meta["initialised_from"]["training_data"]["events"] == ["synthetic"]
    assert meta["train_config"]["select_by"] == "csi"
    with pytest.raises(ValueError, match="select_by"):
        TrainConfig(select_by="luck")
