"""Views of an event: besides the centre crop the service sees, 330 x 330 crops at other
positions of a large grid (FMI 1226 x 760, KNMI 765 x 700, DPC 1400 x 1200, the OPERA composite
2200 x 1900), each normalised by the ingest chain (`ingest.normalize.normalise_dbz`) into a
further 100 x 100 sequence of the same valid times.

Training reads them as further sequences (`model.training.lagrangian_data`); ``nowcast evaluate
--crops`` scores every view of an event it never trained on.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ingest.ingestor import norm_params_for
from ingest.normalize import normalise_dbz
from ingest.settings import IngestSettings
from model.data.events import (
    Event,
    cadence_min,
    collection_of,
    event_folders,
    event_name,
    read_fields,
)

MIN_COVERED = 0.5
"""A crop whose radar coverage (non-NaN share) is below this is not a view."""


def crop_origins(shape: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """Top-left corners of ``size`` squares spread over a grid of ``shape``, about a crop apart.

    Along each axis ``ceil(span / size) + 1`` evenly spaced places from 0 to the far edge (one
    place when the grid is exactly a crop wide). The centre crop is not among them unless a
    place happens to fall there.
    """
    places = []
    for cells in shape:
        span = cells - size
        count = 1 if span <= 0 else math.ceil(span / size) + 1
        places.append(sorted({round(i * span / max(count - 1, 1)) for i in range(count)}))
    return [(r, c) for r in places[0] for c in places[1]]


def load_views(
    folder: Path, settings: IngestSettings, name: str, extra_crops: bool = True
) -> list[Event]:
    """The centre-crop event of ``folder`` (named ``name``) and, with ``extra_crops``, one
    event per off-centre crop with enough coverage (named ``name@r<row>c<col>``).

    Reads each file once; unreadable files are skipped with a warning, as `load_event` does.
    """
    fields = read_fields(folder, settings)
    site_id = fields[0].site_id
    params = norm_params_for(settings, site_id)
    times = tuple(f.valid_time for f in fields)
    cadence = cadence_min(folder, times, settings, site_id)
    shape = fields[0].dbz.shape
    margin = params.disk_radius_cells
    size = params.crop_cells + 2 * margin
    grids = [("", None)] + (
        [(f"@r{r}c{c}", (r, c)) for r, c in crop_origins(shape, size)] if extra_crops else []
    )
    events = []
    centre = ((shape[0] - size) // 2, (shape[1] - size) // 2)
    for suffix, origin in grids:
        if origin == centre or (origin is not None and min(shape) < size):
            continue
        grey, covered = [], []
        for f in fields:
            dbz = f.dbz if origin is None else _crop(f.dbz, origin, size)
            frame, share = normalise_dbz(dbz, params)
            grey.append(frame)
            covered.append(share)
        if origin is not None and float(np.mean(covered)) < MIN_COVERED:
            continue
        events.append(
            Event(
                name + suffix,
                site_id,
                times,
                np.stack(grey),
                cadence,
                params.version,
                collection_of(folder),
            )
        )
    return events


def _crop(dbz: NDArray[np.float32], origin: tuple[int, int], size: int) -> NDArray[np.float32]:
    return dbz[origin[0] : origin[0] + size, origin[1] : origin[1] + size]


def base_event(view_name: str) -> str:
    """The event a view was cropped from (the view's own name for a centre crop)."""
    return view_name.split("@", 1)[0]


def load_all_views(
    roots: list[Path], settings: IngestSettings, extra_crops: bool
) -> tuple[list[Event], list[Event]]:
    """(centre-crop events, every view incl. the centre crops) of the events under ``roots``
    (`event_folders`: folders of frames or multi-time archives), named by `event_name`."""
    centres, views = [], []
    for folder in event_folders(roots):
        name = event_name(folder)
        event_views = load_views(folder, settings, name, extra_crops)
        centres.append(event_views[0])
        views.extend(event_views)
    if not centres:
        raise ValueError(f"no frames under {[str(r) for r in roots]}")
    return centres, views
