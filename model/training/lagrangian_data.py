"""Training windows of the Lagrangian ConvLSTM: more views of the radar we have, moved with the
rain once and cached on disk.

- Views: besides the centre crop the service sees, 330 x 330 crops at other positions of the
  large grids (FMI 1226 x 760, KNMI 765 x 700, DPC 1400 x 1200; BOM 512 x 512), each normalised
  by the ingest chain (`ingest.normalize.normalise_dbz`) into a further 100 x 100 sequence of the
  same valid times. A view belongs to its event's time blocks: only views of training blocks
  reach training, so no crop of a validation or test frame is ever trained on.
- Windows: for each window of a view, the motion field of its inputs (`model.advection.motion`), the
  inputs and targets in Lagrangian coordinates and the targets' "inside" mask
  (`model.advection.lagrangian`), as float16/bool arrays in one ``.npz`` per view under the cache
  folder,
  named by a digest of the view, its frames' times and the normalisation: computed once, read
  back by every later run or sitting.
- Windows without rain (no cell at or above about 0.5 mm/h in the last input nor in any target)
  are left out of training: the network's zero start already forecasts them right.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ingest.ingestor import norm_params_for
from ingest.normalize import normalise_dbz
from ingest.settings import IngestSettings
from model.advection.lagrangian import lagrangian_inputs, lagrangian_targets
from model.advection.motion import motion_field
from model.data.events import Event, cadence_min, read_fields
from model.data.split import WET_GREYS, WindowRef

log = logging.getLogger(__name__)

MIN_COVERED = 0.5
"""A crop whose radar coverage (non-NaN share) is below this is not a view."""

RAIN_GREY = WET_GREYS[-1]
"""About 0.5 mm/h: a training window needs a cell at or above it."""


@dataclass(frozen=True)
class LagrangianWindows:
    """Windows of one view in Lagrangian coordinates (N windows, 100 x 100 cells).

    inputs (N, in, H, W) float16 grey; targets (N, out, H, W) float16 grey; inside
    (N, out, H, W) bool; velocity (N, 2, H, W) float32 cells per step; starts (N,) int;
    observed (N, out, H, W) float16 grey: the targets as observed (Eulerian), from the view.
    """

    view: str
    starts: NDArray[np.int64]
    inputs: NDArray[np.float16]
    targets: NDArray[np.float16]
    inside: NDArray[np.bool_]
    velocity: NDArray[np.float32]
    observed: NDArray[np.float16]


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
        events.append(Event(name + suffix, site_id, times, np.stack(grey), cadence, params.version))
    return events


def _crop(dbz: NDArray[np.float32], origin: tuple[int, int], size: int) -> NDArray[np.float32]:
    return dbz[origin[0] : origin[0] + size, origin[1] : origin[1] + size]


def base_event(view_name: str) -> str:
    """The event a view was cropped from (the view's own name for a centre crop)."""
    return view_name.split("@", 1)[0]


def is_wet(inputs_grey: np.ndarray, targets_grey: np.ndarray) -> bool:
    """Whether the last input or any target has a cell at or above `RAIN_GREY`."""
    return bool((inputs_grey[-1] >= RAIN_GREY).any() or (targets_grey >= RAIN_GREY).any())


def transform_window(
    inputs_grey: np.ndarray, targets_grey: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Lagrangian inputs, Lagrangian targets, inside, velocity) of one window."""
    velocity = motion_field(inputs_grey)
    lag_inputs = lagrangian_inputs(inputs_grey, velocity)
    lag_targets, inside = lagrangian_targets(targets_grey, velocity)
    return lag_inputs, lag_targets, inside, velocity.astype(np.float32)


def _view_key(event: Event, starts: list[int], in_frames: int, out_frames: int) -> str:
    blob = "|".join(
        [event.name, event.norm_version, str(in_frames), str(out_frames), "v1"]
        + [t.isoformat() for t in event.times]
        + [str(s) for s in starts]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _compute_view(
    args: tuple[Event, list[int], int, int, Path, bool],
) -> Path:
    event, starts, in_frames, out_frames, path, wet_only = args
    kept, lag_in, lag_out, inside, velocity = [], [], [], [], []
    for start in starts:
        x = event.grey[start : start + in_frames]
        y = event.grey[start + in_frames : start + in_frames + out_frames]
        if wet_only and not is_wet(x, y):
            continue
        a, b, m, v = transform_window(x, y)
        kept.append(start)
        lag_in.append(a.astype(np.float16))
        lag_out.append(b.astype(np.float16))
        inside.append(m)
        velocity.append(v)
    cells = event.grey.shape[1:]
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        starts=np.asarray(kept, dtype=np.int64),
        inputs=np.asarray(lag_in, dtype=np.float16).reshape(-1, in_frames, *cells),
        targets=np.asarray(lag_out, dtype=np.float16).reshape(-1, out_frames, *cells),
        inside=np.asarray(inside, dtype=bool).reshape(-1, out_frames, *cells),
        velocity=np.asarray(velocity, dtype=np.float32).reshape(-1, 2, *cells),
    )
    tmp.replace(path)
    return path


def lagrangian_windows(
    events: list[Event],
    refs: Iterable[WindowRef],
    in_frames: int,
    out_frames: int,
    cache_dir: Path,
    wet_only: bool,
    workers: int = 2,
) -> list[LagrangianWindows]:
    """The windows ``refs`` of ``events`` in Lagrangian coordinates, one entry per event.

    Computed in ``workers`` processes where the cache has no file for them, else read back.
    """
    by_event: dict[int, list[int]] = {}
    for ref in refs:
        by_event.setdefault(ref.event_index, []).append(ref.start)
    cache_dir.mkdir(parents=True, exist_ok=True)
    jobs, paths = [], []
    for index, starts in sorted(by_event.items()):
        event = events[index]
        key = _view_key(event, starts, in_frames, out_frames) + ("-wet" if wet_only else "")
        path = cache_dir / f"{key}.npz"
        paths.append((event, path))
        if not path.exists():
            jobs.append((event, starts, in_frames, out_frames, path, wet_only))
    if jobs:
        log.info("moving %d views' windows into Lagrangian coordinates (cached)", len(jobs))
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_compute_view, jobs))
        else:
            for job in jobs:
                _compute_view(job)
    out = []
    for event, path in paths:
        with np.load(path) as data:
            observed = np.asarray(
                [event.grey[s + in_frames : s + in_frames + out_frames] for s in data["starts"]],
                dtype=np.float16,
            ).reshape(-1, out_frames, *event.grey.shape[1:])
            out.append(
                LagrangianWindows(
                    event.name,
                    data["starts"],
                    data["inputs"],
                    data["targets"],
                    data["inside"],
                    data["velocity"],
                    observed,
                )
            )
    return out


def training_refs(
    views: list[Event],
    train_blocks: set[tuple[str, int]],
    block_frames: int,
    in_frames: int,
    out_frames: int,
) -> list[WindowRef]:
    """Every window of every view that lies inside one of the training blocks of its event.

    ``train_blocks``: (event name, first frame) of the training blocks of the centre crops.
    """
    refs = []
    for index, view in enumerate(views):
        base = base_event(view.name)
        starts = set(view.window_starts(in_frames, out_frames))
        length = in_frames + out_frames
        for event_name, first in train_blocks:
            if event_name != base:
                continue
            for start in range(first, first + block_frames - length + 1):
                if start in starts:
                    refs.append(WindowRef(index, start))
    return refs
