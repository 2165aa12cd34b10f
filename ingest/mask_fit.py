"""Fit a site's noise mask from its archive (or given folders) and make it current."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.frame import FrameRejected
from ingest.ingestor import Ingestor, norm_params_for
from ingest.noise_mask import (
    MaskFitParams,
    NoiseMask,
    fit_clutter_mask,
    mask_version,
    monthly_means,
)
from ingest.normalize import normalise_dbz
from ingest.reader import read_radar_file

log = logging.getLogger(__name__)


def _unmasked_frames(
    ingestor: Ingestor, site_id: str, paths: list[Path]
) -> Iterator[tuple[datetime, np.ndarray]]:
    params = norm_params_for(ingestor.settings, site_id)
    zr = (ingestor.settings.zr_a, ingestor.settings.zr_b)
    for path in paths:
        try:
            field = read_radar_file(path, None, zr)
        except FrameRejected as rejected:
            log.warning("skipping %s: %s", path, rejected)
            continue
        if field.site_id != site_id:
            continue
        grey, _covered = normalise_dbz(field.dbz, params, None)
        yield field.valid_time, grey


def fit_site_mask(
    ingestor: Ingestor,
    site_id: str,
    folders: list[Path] | None = None,
    params: MaskFitParams = MaskFitParams(),
    min_frames: int = 24,
) -> NoiseMask:
    """Fit the mask from the site's frames (its archive unless ``folders``) and store it.

    Raises ValueError when fewer than ``min_frames`` usable frames exist: a mask learned from a
    few frames would mistake rain for clutter.
    """
    if folders:
        paths = sorted(p for folder in folders for p in folder.rglob("*.nc"))
    else:
        paths = list(ingestor.archive.frames(site_id))
    count = 0

    def counted() -> Iterator[tuple[datetime, np.ndarray]]:
        nonlocal count
        for item in _unmasked_frames(ingestor, site_id, paths):
            count += 1
            yield item

    monthly = monthly_means(counted())
    if count < min_frames:
        raise ValueError(f"site {site_id}: {count} usable frames, need at least {min_frames}")
    stack = np.stack(list(monthly.values()))
    mask = fit_clutter_mask(stack, params)
    noise_mask = NoiseMask(
        site_id=site_id,
        version=mask_version(datetime.now(UTC), mask),
        mask=mask,
        months=tuple(monthly),
        n_frames=count,
    )
    ingestor.masks.save(noise_mask)
    log.info("site %s: mask %s masks %d cells", site_id, noise_mask.version, int(mask.sum()))
    return noise_mask
