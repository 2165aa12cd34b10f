"""Fitting, storing and applying the K-Means noise mask through ingest."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from core import keys
from ingest.cf_writer import write_cf_frame
from ingest.ingestor import Ingestor
from ingest.mask_fit import fit_site_mask
from tests.ingest.helpers import START

GRID = (96, 96)


def _clutter_feed(folder, n_frames: int, days_apart: int = 20):
    """Moving rain plus a fixed 45 dBZ clutter blob, spread over several months."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n_frames):
        dbz = np.full(GRID, -32.0, np.float32)
        r, c = rng.integers(10, 70, size=2)
        dbz[r : r + 16, c : c + 16] = 30.0  # a rain cell, somewhere else every frame
        dbz[40:50, 40:50] = 45.0  # clutter: always there
        t = START + timedelta(days=days_apart * (i // 10), minutes=6 * (i % 10))
        path = folder / f"c_{i:03d}.nc"
        write_cf_frame(path, dbz, t, "c-1", "reflectivity")
        paths.append(path)
    return paths


def test_fit_masks_the_clutter_and_ingest_applies_it(ingestor, tmp_path, redis_conn):
    feed = _clutter_feed(tmp_path / "hist", 60)
    mask = fit_site_mask(ingestor, "c-1", [tmp_path / "hist"], min_frames=24)
    assert len(mask.months) >= 2 and mask.n_frames == 60
    # the clutter block, crop 64 of 96 -> offset 16, scaled by 32/64: rows 12..17
    assert mask.mask[13:16, 13:16].all()
    assert mask.mask.sum() < 60  # the moving rain is not masked
    assert redis_conn.hget(keys.noise_mask("c-1"), "version").decode() == mask.version
    assert (ingestor.masks.root / "c-1" / f"{mask.version}.npy").exists()

    ingestor.ingest_bytes(feed[0].read_bytes(), feed[0].name)
    frame = ingestor.window.frames("c-1")[0]
    assert frame.mask_version == mask.version
    assert (frame.grey[mask.mask] == 0).all()


def test_mask_survives_redis_loss_through_its_file(ingestor, tmp_path, redis_conn):
    _clutter_feed(tmp_path / "hist", 30)
    mask = fit_site_mask(ingestor, "c-1", [tmp_path / "hist"], min_frames=24)
    redis_conn.flushall()
    fresh = Ingestor(ingestor.settings, redis_conn)
    version, restored = fresh.masks.current("c-1")
    assert version == mask.version and np.array_equal(restored, mask.mask)
    assert redis_conn.hget(keys.noise_mask("c-1"), "version") is not None


def test_too_few_frames_is_refused(ingestor, tmp_path):
    _clutter_feed(tmp_path / "hist", 5)
    with pytest.raises(ValueError, match="5 usable frames"):
        fit_site_mask(ingestor, "c-1", [tmp_path / "hist"], min_frames=24)
