"""Lagrangian coordinates of a nowcast window (Ritvanen et al. 2023, L-CNN): pure numpy.

The frame of reference moves with the rain: a field "in Lagrangian coordinates" is placed where
the motion field carries it by the issue time. With the window's motion field ``velocity``
(`model.advection.motion.motion_field` of the inputs, cells per step):

- `lagrangian_inputs`: input j steps before the issue time, moved j steps forward, so all five
  inputs show the rain where it is at the issue time and differ only by growth and decay;
- `lagrangian_targets`: the frame observed k steps after the issue time, moved k steps back
  (advection along ``-velocity``), with a mask of the cells whose trajectory stayed inside the
  grid (the rest came from outside the radar's view and is no target);
- `to_eulerian`: the inverse of the targets' transform as the network is served: lead k's
  Lagrangian field moved k steps forward with the displacements of pysteps' semi-Lagrangian
  scheme, so a network that changes nothing gives exactly the extrapolation nowcast (with
  ``inflow="edge"``: exactly it wherever the trajectory stays in the grid, and the nearest
  boundary cell's value where it comes from outside).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from model.advection.motion import advect_per_lead, lead_displacements, warp_by_displacement

INSIDE = 0.999
"""A cell is inside when its trajectory reads at least this share of in-grid weight."""


def lagrangian_inputs(
    frames_grey: NDArray[np.floating],
    velocity: NDArray[np.floating],
    displacements: NDArray[np.floating] | None = None,
) -> NDArray[np.float32]:
    """(T, H, W) grey inputs (oldest first) moved to the issue time: (T, H, W) float32.

    The last frame is unchanged; frame ``T - 1 - j`` is moved ``j`` steps forward.
    ``displacements``: `lead_displacements` of ``velocity`` for at least T - 1 steps when the
    caller has them already (the served method computes them once for inputs and leads).
    """
    frames = np.nan_to_num(np.asarray(frames_grey, dtype=np.float64), nan=0.0)
    steps = frames.shape[0] - 1
    out = frames.astype(np.float32)
    if steps == 0 or not np.any(velocity):
        return out
    if displacements is None:
        displacements = lead_displacements(velocity, steps)
    for j in range(1, steps + 1):
        out[steps - j] = warp_by_displacement(frames[steps - j], displacements[j - 1])
    return np.clip(out, 0.0, 1.0)


def lagrangian_targets(
    targets_grey: NDArray[np.floating], velocity: NDArray[np.floating]
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """(K, H, W) observed grey at leads 1..K moved back to the issue time, and where defined.

    Returns ``(fields (K, H, W) float32, inside (K, H, W) bool)``: lead k's observation moved k
    steps along ``-velocity``; ``inside`` is False where that trajectory left the grid.
    """
    targets = np.nan_to_num(np.asarray(targets_grey, dtype=np.float64), nan=0.0)
    leads = targets.shape[0]
    inside = np.ones(targets.shape, dtype=bool)
    if not np.any(velocity):
        return targets.astype(np.float32), inside
    displacements = lead_displacements(-np.asarray(velocity, dtype=np.float64), leads)
    ones = np.ones(targets.shape[1:])
    out = np.empty(targets.shape, dtype=np.float32)
    for k in range(leads):
        out[k] = warp_by_displacement(targets[k], displacements[k])
        inside[k] = warp_by_displacement(ones, displacements[k]) >= INSIDE
    return np.clip(out, 0.0, 1.0), inside


def to_eulerian(
    fields_grey: NDArray[np.floating],
    velocity: NDArray[np.floating],
    displacements: NDArray[np.floating] | None = None,
    inflow: str = "zero",
) -> NDArray[np.float32]:
    """Lead k's Lagrangian field (K, H, W) moved k steps along ``velocity``: (K, H, W) grey.

    With every field equal to the last observed frame and ``inflow="zero"``, this is pysteps'
    extrapolation of it. ``displacements``: `lead_displacements` of ``velocity`` for K steps,
    when already known. ``inflow``: what a trajectory from outside the grid reads
    (`model.advection.motion.INFLOWS`).
    """
    fields = np.asarray(fields_grey, dtype=np.float64)
    if not np.any(velocity):
        return np.clip(np.nan_to_num(fields, nan=0.0), 0.0, 1.0).astype(np.float32)
    if displacements is None:
        displacements = lead_displacements(velocity, fields.shape[0])
    return advect_per_lead(fields, displacements[: fields.shape[0]], inflow)
