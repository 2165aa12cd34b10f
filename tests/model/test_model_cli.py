"""The convlstm method through the command line, and the model card written from files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from ingest.cf_writer import write_synthetic_feed
from model.checkpoint import save_checkpoint
from model.config import ConvLSTMConfig
from model.convlstm import build_model
from model.methods import get_method

TINY = ConvLSTMConfig(frame_cells=32, hidden_channels=(4, 4))
ENV = {"NOWCAST_CROP_CELLS": "64", "NOWCAST_TARGET_CELLS": "32", "NOWCAST_DISK_RADIUS_CELLS": "3"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_convlstm_method_runs_a_checkpoint_and_the_card_tabulates_it(tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    meta = {
        "training_data": {"events": [], "block_frames": 30, "windows": {"train": 1}, "blocks": []},
        "train_config": {"batch_size": 4, "augment": True, "bf16": False},
        "epoch": 1,
        "samples_seen": 4,
        "validation": {"loss": 0.5},
        "device": "cpu",
    }
    save_checkpoint(checkpoint, build_model(TINY), TINY, meta)
    method = get_method("convlstm", checkpoint=checkpoint)
    out = method(np.zeros((2, 5, 32, 32), np.float32), 15)
    assert out.shape == (2, 15, 32, 32) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0

    feed = tmp_path / "event"
    write_synthetic_feed(feed, 21, site_id="s-1", shape=(96, 96))
    result = _cli(
        "evaluate",
        str(feed),
        "--method",
        "convlstm",
        "--checkpoint",
        str(checkpoint),
        "--json",
        str(tmp_path / "c.json"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["method"] == "convlstm" and report["forecasts"] == 2

    card = tmp_path / "CARD.md"
    result = _cli(
        "model-card",
        str(tmp_path / "c.json"),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(card),
        "--command",
        "nowcast evaluate ...",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = card.read_text()
    assert "| convlstm | 2 |" in text and "nowcast evaluate ..." in text
