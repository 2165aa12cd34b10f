"""Training on random crops: the crop steps exactly as a network of the crop's size whose
peephole weights are that region's, only that region learns, and the trainer and the command
line use it (and refuse it where it cannot apply)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ingest.cf_writer import write_synthetic_feed
from model.evaluation.card import other_networks
from model.nets.architectures import build_model
from model.nets.cell import ConvLSTMCell
from model.nets.checkpoint import load_checkpoint
from model.nets.config import NetworkConfig
from model.nets.network import count_parameters
from model.training.batches import random_crop
from tests.model.test_train import CONFIG, _run

TINY = NetworkConfig(frame_cells=16, hidden_channels=(4, 4))


def _random_peepholes(cell: ConvLSTMCell) -> None:
    with torch.no_grad():
        for w in (cell.w_ci, cell.w_cf, cell.w_co):
            assert w is not None
            w.copy_(torch.randn_like(w))


def test_a_cell_on_a_crop_is_a_cell_of_the_crop_size_with_that_regions_peepholes():
    full = ConvLSTMCell(2, 3, 3, (8, 8))
    _random_peepholes(full)
    small = ConvLSTMCell(2, 3, 3, (4, 5))
    region = (slice(None), slice(None), slice(2, 6), slice(3, 8))
    with torch.no_grad():
        small.gates.load_state_dict(full.gates.state_dict())
        for name in ("w_ci", "w_cf", "w_co"):
            getattr(small, name).copy_(getattr(full, name)[region])
    x = torch.rand(2, 2, 4, 5)
    state = None
    expected_state = None
    for _ in range(3):
        h, state = full(x, state, (2, 3))
        expected, expected_state = small(x, expected_state)
        torch.testing.assert_close(h, expected)
    with pytest.raises(ValueError, match="not inside"):
        full(x, None, (5, 3))  # rows 5..8 of an 8-row grid


def test_only_the_crops_region_of_the_peephole_weights_learns():
    model = build_model(TINY)
    frames = torch.rand(1, 5, 8, 6)
    model(frames, (4, 10)).sum().backward()  # grid cells: rows 2..5, columns 5..7
    for cell in (*model.encoder, *model.forecaster):
        grad = cell.w_ci.grad[0].abs().sum(0)
        rows, cols = torch.nonzero(grad, as_tuple=True)
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 5, 5, 7)


def test_the_whole_frame_as_a_crop_is_the_plain_forward():
    model = build_model(TINY)
    frames = torch.rand(2, 5, 16, 16)
    torch.testing.assert_close(model(frames, (0, 0)), model(frames))


@pytest.mark.parametrize(
    ("shape", "origin"),
    [((8, 8), (10, 0)), ((7, 8), (0, 0)), ((8, 8), (1, 0)), ((8, 8), (-2, 0))],
)
def test_a_crop_off_the_frame_or_the_patch_grid_is_refused(shape, origin):
    model = build_model(TINY)
    with pytest.raises(ValueError, match="must lie in the 16 x 16 frame"):
        model(torch.rand(1, 5, *shape), origin)


def test_the_fclstm_reads_whole_frames_only():
    model = build_model(
        NetworkConfig(frame_cells=16, hidden_channels=(8, 8), architecture="fclstm")
    )
    with pytest.raises(ValueError, match="whole frames only"):
        model(torch.rand(1, 5, 8, 8), (0, 0))


def test_random_crop_cuts_inputs_and_targets_at_one_place_on_the_patch_grid():
    inputs = torch.arange(2 * 5 * 16 * 16, dtype=torch.float32).reshape(2, 5, 16, 16)
    targets = inputs[:, :3] + 0.5
    rng = np.random.default_rng(0)
    corners = set()
    for _ in range(50):
        x, y, (row, col) = random_crop(inputs, targets, 6, 2, rng)
        assert x.shape == (2, 5, 6, 6) and y.shape == (2, 3, 6, 6)
        assert row % 2 == 0 and col % 2 == 0 and row + 6 <= 16 and col + 6 <= 16
        torch.testing.assert_close(x, inputs[..., row : row + 6, col : col + 6])
        torch.testing.assert_close(y, targets[..., row : row + 6, col : col + 6])
        corners.add((row, col))
    assert len(corners) > 10
    with pytest.raises(ValueError, match="multiple of the patch size"):
        random_crop(inputs, targets, 5, 2, rng)


def test_training_on_crops_records_it_and_validates_on_whole_frames(tmp_path):
    whole, _ = _run(tmp_path / "a", max_epochs=1)
    cropped, out = _run(tmp_path / "b", max_epochs=1, crop_cells=8)
    assert cropped.history[0].train_loss != whole.history[0].train_loss
    _model, config, meta = load_checkpoint(out)
    assert config == CONFIG and meta["train_config"]["crop_cells"] == 8
    with pytest.raises(ValueError, match="multiple of the patch size"):
        _run(tmp_path / "c", max_epochs=1, crop_cells=7)


def test_the_command_line_trains_on_crops_and_refuses_them_for_the_fclstm(tmp_path):
    feed = tmp_path / "event"
    write_synthetic_feed(feed, 120, site_id="s-1", shape=(96, 96))
    env = {
        **os.environ,
        "NOWCAST_CROP_CELLS": "64",
        "NOWCAST_TARGET_CELLS": "32",
        "NOWCAST_DISK_RADIUS_CELLS": "3",
    }
    common = ["--max-epochs", "1", "--log-dir", str(tmp_path / "logs")]
    eulerian = ["--arch", "eulerian-convlstm"]

    def cli(command: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "service.cli", command, str(feed), "--block-frames", "20"]
        return subprocess.run([*argv, *args], env=env, capture_output=True, text=True, timeout=300)

    out, scores = tmp_path / "c.safetensors", tmp_path / "c.json"
    result = cli(
        "train", *common, *eulerian, "--hidden", "4,4", "--crop-cells", "16", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # it forecasts whole frames as any checkpoint does, and its card says how it was trained
    result = cli(
        "evaluate", "--method", "eulerian-convlstm", "--checkpoint", str(out), "--split", "test",
        "--json", str(scores),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    model, config, meta = load_checkpoint(out)
    assert meta["train_config"]["crop_cells"] == 16
    report = json.loads(scores.read_text())
    entry = {"name": "eulerian-convlstm", "config": config.to_dict(),
             "params": count_parameters(model), "meta": meta}  # fmt: skip
    assert report["forecasts"] > 0
    assert "on random 16 x 16-cell crops of the 32 x 32 frames" in other_networks([entry])
    result = cli("train", *common, "--arch", "fclstm", "--hidden", "8,8", "--crop-cells", "16")
    assert result.returncode != 0 and "cannot train on crops" in result.stderr
