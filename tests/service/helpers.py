"""Small builders shared by the service tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from model.nets.config import NetworkConfig
from service.settings import Settings

API_KEY = "test-key-7f3a"
FEED_START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SMALL_MODEL = NetworkConfig(frame_cells=32, hidden_channels=(8, 8), architecture="convlstm")


def service_settings(data_dir: Path, checkpoint: Path, **overrides: object) -> Settings:
    """Small grids (96 -> crop 64 -> 32 cells) so tests run fast; paper choices otherwise."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "crop_cells": 64,
        "target_cells": 32,
        "disk_radius_cells": 3,
        "window_frames": 30,
        "checkpoints": {"convlstm": checkpoint},
        "api_keys": (SecretStr(API_KEY),),
        "infer_device": "cpu",
        "poll_interval_s": 0.2,
        "steps_members": 6,  # the ensemble's code path at a third of its default cost
    }
    checkpoints = {"convlstm": checkpoint, **dict(overrides.pop("checkpoints", {}))}  # type: ignore[call-overload]
    values.update(overrides, checkpoints=checkpoints)
    return Settings(**values)  # type: ignore[arg-type]
