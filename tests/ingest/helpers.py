"""Small builders shared by the ingest tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.frame import Frame
from service.settings import Settings

START = datetime(2026, 1, 1, tzinfo=UTC)
SMALL_GRID = (96, 96)


def small_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings with a small crop so tests run fast; everything else at defaults."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "crop_cells": 64,
        "target_cells": 32,
        "disk_radius_cells": 3,
        "window_frames": 20,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def grey_frame(site_id: str, valid_time: datetime, value: float = 0.5, n: int = 32) -> Frame:
    grey = np.full((n, n), value, dtype=np.float32)
    return Frame(site_id=site_id, valid_time=valid_time, grey=grey, norm_version="n1-test")
