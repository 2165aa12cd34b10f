"""Training windows of the Lagrangian ConvLSTM: more views of the radar we have, moved with the
rain once and cached on disk.

- Views (`model.data.views`): besides the centre crop the service sees, 330 x 330 crops at other
  positions of the large grids (FMI 1226 x 760, KNMI 765 x 700, DPC 1400 x 1200; BOM 512 x 512),
  each a further 100 x 100 sequence of the same valid times. A view belongs to its event's time
  blocks: only views of training blocks reach training, so no crop of a validation or test
  frame is ever trained on.
- Windows: for each window of a view, the motion field of its inputs (`model.advection.motion`), the
  inputs and targets in Lagrangian coordinates and the targets' "inside" mask
  (`model.advection.lagrangian`), as float16/bool arrays, one ``.npy`` file each in one folder
  per view under the cache folder, named by a digest of the view, its frames' times and the
  normalisation: computed once, then memory-mapped by every later run or sitting, so that the
  windows of every archive need not fit in memory (a batch reads its windows from the page
  cache; the same arrays would feed a GPU).
- Windows without rain (no cell at or above about 0.5 mm/h in the last input nor in any target)
  are left out of training: the network's zero start already forecasts them right.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from model.advection.lagrangian import lagrangian_inputs, lagrangian_targets
from model.advection.motion import motion_field
from model.data.events import Event
from model.data.split import WET_GREYS, WindowRef
from model.data.views import base_event

log = logging.getLogger(__name__)

VIEW_ARRAYS = ("starts", "inputs", "targets", "inside", "velocity")
"""The arrays of a view's cached windows, one ``.npy`` file each."""
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
    arrays: dict[str, np.ndarray] = {
        "starts": np.asarray(kept, dtype=np.int64),
        "inputs": np.asarray(lag_in, dtype=np.float16).reshape(-1, in_frames, *cells),
        "targets": np.asarray(lag_out, dtype=np.float16).reshape(-1, out_frames, *cells),
        "inside": np.asarray(inside, dtype=bool).reshape(-1, out_frames, *cells),
        "velocity": np.asarray(velocity, dtype=np.float32).reshape(-1, 2, *cells),
    }
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", array)
    tmp.replace(path)  # the view's folder appears whole or not at all
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
        path = cache_dir / f"{key}.windows"
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
        data = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in VIEW_ARRAYS}
        view_starts = np.asarray(data["starts"], dtype=np.int64)
        observed = np.asarray(
            [event.grey[s + in_frames : s + in_frames + out_frames] for s in view_starts],
            dtype=np.float16,
        ).reshape(-1, out_frames, *event.grey.shape[1:])
        out.append(
            LagrangianWindows(
                event.name,
                view_starts,
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
