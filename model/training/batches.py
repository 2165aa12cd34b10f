"""Training batches of the Eulerian networks: windows as arrays, the 8 flips and rotations,
random crops (shapes in the docstrings)."""

from __future__ import annotations

import numpy as np
import torch

from model.data.events import Event
from model.data.split import WindowRef
from model.nets.config import NetworkConfig
from model.nets.network import crop_fits


def window_arrays(
    events: list[Event], ref: WindowRef, in_frames: int, out_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (in, H, W), targets (out, H, W)) grey float32 of one window."""
    grey = events[ref.event_index].grey
    return (
        grey[ref.start : ref.start + in_frames],
        grey[ref.start + in_frames : ref.start + in_frames + out_frames],
    )


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 symmetries of the square on the last two axes (k in 0..7)."""
    out = np.rot90(array, k % 4, axes=(-2, -1))
    return np.flip(out, axis=-1) if k >= 4 else out


def make_batch(
    events: list[Event],
    refs: list[WindowRef],
    config: NetworkConfig,
    rng: np.random.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack windows into (B, in, H, W) and (B, out, H, W) tensors; ``rng`` augments."""
    inputs, targets = [], []
    for ref in refs:
        x, y = window_arrays(events, ref, config.in_frames, config.out_frames)
        if rng is not None:
            k = int(rng.integers(8))
            x, y = dihedral(x, k), dihedral(y, k)
        inputs.append(np.ascontiguousarray(x))
        targets.append(np.ascontiguousarray(y))
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))


def check_crop(crop_cells: int, patch_size: int, frame_cells: int) -> None:
    """ValueError unless a crop of ``crop_cells`` a side fits the frames and the patches."""
    if not crop_fits((crop_cells, crop_cells), (0, 0), patch_size, frame_cells):
        raise ValueError(
            f"a crop of {crop_cells} cells must be a multiple of the patch size {patch_size} "
            f"and at most the frame's {frame_cells}"
        )


def random_crop(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    crop_cells: int,
    patch_size: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """The same random ``crop_cells`` square of a batch's inputs and targets, and its corner.

    Args:
        inputs: ``(B, in, H, W)``; targets: ``(B, out, H, W)`` (square frames).
        crop_cells: side of the crop in frame cells, a multiple of ``patch_size``, at most H.

    Returns:
        ``(inputs (B, in, crop, crop), targets (B, out, crop, crop), (row, column))``, the
        corner a multiple of ``patch_size`` (what `EncoderForecaster.forward` takes).
    """
    cells = inputs.shape[-1]
    check_crop(crop_cells, patch_size, cells)
    places = (cells - crop_cells) // patch_size + 1
    row, col = (int(v) * patch_size for v in rng.integers(places, size=2))
    region = (..., slice(row, row + crop_cells), slice(col, col + crop_cells))
    return inputs[region], targets[region], (row, col)
